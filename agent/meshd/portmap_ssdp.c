/* portmap_ssdp: M-SEARCH out, LOCATION in (portmap_ssdp.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "portmap_ssdp.h"

int ssdp_search(const char *st, char *buf, size_t size)
{
	int n = snprintf(buf, size,
			 "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nST: %s\r\n"
			 "MAN: \"ssdp:discover\"\r\nMX: 1\r\n\r\n", st);

	return n < 0 || (size_t)n >= size ? -ENOBUFS : n;
}

static int value(const char *v, size_t n, char *out, size_t outlen)
{
	while (n && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n < 8 || strncasecmp(v, "http://", 7))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f)
			return -EINVAL;
	if (n >= outlen)
		return -E2BIG;
	memcpy(out, v, n);
	out[n] = 0;
	return 0;
}

int ssdp_location(const char *buf, size_t len, char *out, size_t outlen)
{
	const char *p = buf, *end = buf + len;

	if (len > SSDP_MAX_LEN || len < 12 || strncasecmp(buf, "HTTP/1.", 7) || memcmp(buf + 8, " 200", 4))
		return -EBADMSG;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl ? nl : end;
		size_t n = (size_t)(eol - p);

		if (n && p[n - 1] == '\r')
			n--;
		if (n > 9 && !strncasecmp(p, "LOCATION:", 9))
			return value(p + 9, n - 9, out, outlen);
		p = nl ? nl + 1 : end;
	}
	return -ENOENT;
}
