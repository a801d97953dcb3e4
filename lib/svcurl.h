/* svcurl: the scheme rule for a service URL that carries secrets (meshd's
 * registration key and device token, meshctl's admin token), shared by meshd
 * and meshctl (issue 15): https:// is taken; http:// only when the user allows
 * cleartext with --insecure-http, and then with a warning; a URL without a
 * scheme is what libcurl sends as http, so it counts as http://; any other
 * scheme is refused (libcurl is limited to http and https anyway). */
#ifndef NATMESH_SVCURL_H
#define NATMESH_SVCURL_H

enum svcurl_scheme {
	SVCURL_HTTPS,
	SVCURL_HTTP,	/* http://, or no scheme */
	SVCURL_OTHER,
};

enum svcurl_scheme svcurl_scheme(const char *url);

#endif
