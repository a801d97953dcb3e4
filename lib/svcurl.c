/* svcurl: see svcurl.h */
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
