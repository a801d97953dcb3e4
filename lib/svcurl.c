/* svcurl: see svcurl.h */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "svcurl.h"

enum svcurl_scheme svcurl_scheme(const char *url)
{
	if (!strncasecmp(url, "https://", 8))
		return SVCURL_HTTPS;
	if (!strncasecmp(url, "http://", 7) || !strstr(url, "://"))
		return SVCURL_HTTP;
	return SVCURL_OTHER;
}

int svcurl_split(const char *list, struct svcurl_list *l, char *why, size_t whylen)
{
	const char *p = list;

	l->n = 0;
	for (;;) {
		size_t len = strcspn(p, ",");

		while (len && p[len - 1] == '/')
			len--;
		if (!len) {
			snprintf(why, whylen, "service URL %zu of \"%s\" is empty", l->n + 1, list);
			return -EINVAL;
		}
		if (l->n == SVCURL_MAX) {
			snprintf(why, whylen, "more than %d service URLs", SVCURL_MAX);
			return -EINVAL;
		}
		if (len >= SVCURL_LEN) {
			snprintf(why, whylen, "service URL %zu is longer than %d bytes", l->n + 1, SVCURL_LEN - 1);
			return -EINVAL;
		}
		memcpy(l->url[l->n], p, len);
		l->url[l->n++][len] = 0;
		p += strcspn(p, ",");
		if (!*p)
			return 0;
		p++;
	}
}

int svcurl_append(char *buf, size_t len, const char *url)
{
	size_t have = strlen(buf), add = strlen(url) + (have ? 1 : 0);

	if (have + add >= len)
		return -ENOSPC;
	snprintf(buf + have, len - have, "%s%s", have ? "," : "", url);
	return 0;
}

enum svcurl_scheme svcurl_list_scheme(const struct svcurl_list *l, size_t *which)
{
	enum svcurl_scheme worst = SVCURL_HTTPS;

	*which = 0;
	for (size_t i = 0; i < l->n; i++) {
		enum svcurl_scheme s = svcurl_scheme(l->url[i]);

		if (s > worst) {
			worst = s;
			*which = i;
		}
	}
	return worst;
}

int svcurl_check(const char *list, bool allow_http, const char *secret, char *http_url, size_t urllen,
		 char *why, size_t whylen)
{
	struct svcurl_list l;
	char e[256];
	size_t bad;

	http_url[0] = 0;
	if (svcurl_split(list, &l, e, sizeof(e)) < 0) {
		snprintf(why, whylen, "bad --service: %s", e);
		return -EINVAL;
	}
	switch (svcurl_list_scheme(&l, &bad)) {
	case SVCURL_HTTPS:
		return 0;
	case SVCURL_HTTP:
		if (allow_http) {
			snprintf(http_url, urllen, "%s", l.url[bad]);
			return 0;
		}
		snprintf(why, whylen, "the service URL %s is not encrypted: %s would travel in clear; "
			 "use https://, or --insecure-http to allow it", l.url[bad], secret);
		return -EINVAL;
	case SVCURL_OTHER:
		break;
	}
	snprintf(why, whylen, "bad --service: %s (https://HOST:PORT)", l.url[bad]);
	return -EINVAL;
}
