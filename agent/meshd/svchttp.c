/* svchttp: a request to meshsvc (svchttp.h) */
#include <curl/curl.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "svc.h"
#include "svchttp.h"
#include "vec.h"

enum { BEARER_MAX = 256 };	/* the registration key or the device token */

struct answer {
	struct vec buf;		/* the body and a NUL, at most SVC_MAX_ANSWER + 1 */
	bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct answer *a = arg;
	size_t n = size * nmemb;

	/* one byte more for the NUL that keeps the body a string */
	if (vec_reserve(&a->buf, n + 1) < 0) {
		a->too_big = a->buf.len + n > SVC_MAX_ANSWER;
		return 0;
	}
	memcpy(vec_at(&a->buf, a->buf.len), ptr, n);
	a->buf.len += n;
	*(char *)vec_at(&a->buf, a->buf.len) = 0;
	return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const struct svchttp *h = arg;
	(void)dt, (void)dn, (void)ut, (void)un;
	return h->stopping(h->arg) ? 1 : 0;
}

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	const struct svchttp *h = arg;
	int fd;
	(void)purpose;

	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd < 0)
		return CURL_SOCKET_BAD;
	if (h->track && !h->track(h->arg, fd, true)) {
		close(fd);
		return CURL_SOCKET_BAD;
	}
	return fd;
}

static int close_socket(void *arg, curl_socket_t fd)
{
	const struct svchttp *h = arg;

	if (h->track)
		h->track(h->arg, fd, false);
	return close(fd);
}

static void set_options(CURL *c, const struct svchttp *h, const char *url, const char *method,
			struct curl_slist *hdrs, long timeout_ms, struct answer *ans)
{
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms ? h->connect_timeout_ms : 5000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, ans);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, h);
	curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
	curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, h);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (h->ca_file && h->ca_file[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
}

int svchttp_request(const struct svchttp *h, const char *method, const char *path, const char *bearer,
		    const json_t *body, long timeout_ms, long *status, json_t **out, char *why, size_t whylen)
{
	struct curl_slist *hdrs = NULL;
	struct answer ans = { .buf = VEC_INIT(char, SVC_MAX_ANSWER + 1, "service answer") };
	char url[1024], auth[64 + BEARER_MAX];
	char *text = NULL;
	json_error_t jerr;
	CURLcode cc;
	CURL *c;
	int rc = 0;

	*out = NULL;
	*status = 0;
	if (!(c = curl_easy_init())) {
		snprintf(why, whylen, "curl init failed");
		return -ENOMEM;
	}
	snprintf(url, sizeof(url), "%s%s", h->base, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
	hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		text = json_dumps(body, JSON_COMPACT);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, text ? text : "");
	}
	set_options(c, h, url, method, hdrs, timeout_ms, &ans);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		snprintf(why, whylen, "%s%s", curl_easy_strerror(cc), ans.too_big ? " (answer too large)" : "");
		rc = -EIO;
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	if (ans.buf.len) {
		*out = json_loadb(ans.buf.items, ans.buf.len, 0, &jerr);
		if (!*out) {
			snprintf(why, whylen, "HTTP %ld with a body that is not JSON: %s", *status, jerr.text);
			rc = -EBADMSG;
		}
	}
out:
	if (text) {
		sodium_memzero(text, strlen(text));
		free(text);
	}
	sodium_memzero(auth, sizeof(auth));
	vec_free(&ans.buf);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return rc;
}

const char *svchttp_error_text(const json_t *ans)
{
	const char *e = json_string_value(json_object_get(ans, "error"));
	return e ? e : "";
}

uint32_t svchttp_backoff_ms(unsigned k)
{
	uint64_t d = SVC_BACKOFF_MIN_MS;

	while (k-- > 0 && d < SVC_BACKOFF_MAX_MS)
		d *= 2;
	if (d > SVC_BACKOFF_MAX_MS)
		d = SVC_BACKOFF_MAX_MS;
	/* "equal jitter": half fixed, half random, so agents do not retry in step */
	return (uint32_t)(d / 2 + randombytes_uniform((uint32_t)(d / 2) + 1));
}
