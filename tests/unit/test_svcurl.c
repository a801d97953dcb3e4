#include <criterion/criterion.h>

#include "svcurl.h"

Test(svcurl, scheme_decides_whether_secrets_may_be_sent)
{
	static const struct {
		const char *url;
		enum svcurl_scheme want;
	} cases[] = {
		{ "https://svc.example:8080", SVCURL_HTTPS },
		{ "HTTPS://svc.example:8080/", SVCURL_HTTPS },
		{ "https://[2001:db8::1]:8080", SVCURL_HTTPS },
		{ "http://203.0.113.1:8080", SVCURL_HTTP },
		{ "HTTP://svc.example", SVCURL_HTTP },
		{ "http://[2001:db8::1]:8080", SVCURL_HTTP },
		/* libcurl sends a URL without a scheme as http */
		{ "svc.example:8080", SVCURL_HTTP },
		{ "", SVCURL_HTTP },
		{ "httpsx://svc.example", SVCURL_OTHER },
		{ "https:/svc.example", SVCURL_HTTP },
		{ "ftp://svc.example", SVCURL_OTHER },
		{ "file:///etc/passwd", SVCURL_OTHER },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(svcurl_scheme(cases[i].url), cases[i].want, "%s", cases[i].url);
}
