/* svchttp: one request of meshd's service client (svc.h) to meshsvc with
 * libcurl, JSON in and JSON out, and the pacing of its retries. The answer
 * is bounded (SVC_MAX_ANSWER); a request gives up when its owner stops. */
#ifndef NATMESH_MESHD_SVCHTTP_H
#define NATMESH_MESHD_SVCHTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct svchttp {
	const char *base;		/* "https://host:port", no trailing slash */
	const char *ca_file;		/* "" or NULL: the system's CAs */
	long connect_timeout_ms;	/* 0: 5 s */
	bool (*stopping)(void *arg);	/* true: abort the transfer */
	/* every socket the request opens (open true) and closes (false): the
	 * owner may shutdown() one to end a request that waits at once (a long
	 * poll) rather than at libcurl's next progress call, up to 1 s later;
	 * false on open refuses the socket (the owner is stopping). NULL: none */
	bool (*track)(void *arg, int fd, bool open);
	void *arg;
};

/* One request. 0 with *status and *out (parsed JSON, or NULL for an empty
 * body) when an HTTP answer came; a negative errno with why filled when none
 * did (-EIO) or the answer is not JSON (-EBADMSG). */
int svchttp_request(const struct svchttp *h, const char *method, const char *path, const char *bearer,
		    const json_t *body, long timeout_ms, long *status, json_t **out, char *why, size_t whylen);
/* the "error" member of an answer, "" when none */
const char *svchttp_error_text(const json_t *ans);
/* exponential backoff with jitter: the delay of attempt k (0-based) */
uint32_t svchttp_backoff_ms(unsigned k);

#endif
