/* svcurl: the scheme rule for a service URL that carries secrets (meshd's
 * registration key and device token, meshctl's admin token), shared by meshd
 * and meshctl (issue 15): https:// is taken; http:// only when the user allows
 * cleartext with --insecure-http, and then with a warning; a URL without a
 * scheme is what libcurl sends as http, so it counts as http://; any other
 * scheme is refused (libcurl is limited to http and https anyway).
 *
 * A service may be several replicas on one database (issue 20): --service is
 * given several times or as a comma list, kept in that order; clients stick
 * to one and fail over to the next (svcurl_list). */
#ifndef NATMESH_SVCURL_H
#define NATMESH_SVCURL_H

#include <stdbool.h>
#include <stddef.h>

enum svcurl_scheme {
	SVCURL_HTTPS,
	SVCURL_HTTP,	/* http://, or no scheme */
	SVCURL_OTHER,
};

enum {
	SVCURL_MAX = 8,		/* replicas */
	SVCURL_LEN = 512,	/* one URL, its NUL included */
	SVCURL_LIST_LEN = SVCURL_MAX * SVCURL_LEN,
};

struct svcurl_list {
	char url[SVCURL_MAX][SVCURL_LEN];	/* no trailing slash */
	size_t n;
};

enum svcurl_scheme svcurl_scheme(const char *url);

/* "URL[,URL...]" into l, trailing slashes dropped. 0, or -EINVAL with why
 * naming the item and the reason (empty, too long, more than SVCURL_MAX). */
int svcurl_split(const char *list, struct svcurl_list *l, char *why, size_t whylen);
/* appends ",url" (or url) to buf of len bytes: 0 or -ENOSPC */
int svcurl_append(char *buf, size_t len, const char *url);
/* the least safe scheme of the list (OTHER, then HTTP, then HTTPS) and, in
 * *which, the first URL that has it */
enum svcurl_scheme svcurl_list_scheme(const struct svcurl_list *l, size_t *which);

/* The whole rule for a --service list that carries `secret` ("the admin
 * token"): 0 when every URL may be used (*http_url then names the first
 * http:// one allowed by allow_http, or is "" when all are https://), or
 * -EINVAL with why: a malformed list, another scheme, or http:// not
 * allowed (naming the URL, what would travel in clear and the fix). */
int svcurl_check(const char *list, bool allow_http, const char *secret, char *http_url, size_t urllen,
		 char *why, size_t whylen);

#endif
