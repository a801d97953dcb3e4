/* libFuzzer target: the UAPI server's framing (wg_uapi_next_request), the
 * bytes of a connection cut into requests, each set body then through
 * wg_uapi_parse_set as the server does. The first input byte sets the size
 * of the pieces the bytes arrive in; the rest is the stream. Beyond not
 * crashing: a request ends at the first blank line, and nowhere before it; a
 * get is exactly "get=1\n\n"; a set body follows "set=1\n", holds no blank
 * line and ends with its last line's "\n"; nothing complete is left behind;
 * and the requests found are the same whether the bytes come at once or in
 * pieces (read by read, as conn_cb accumulates them). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/wg/uapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_REQS = 4096 };

struct found {
	enum wg_uapi_op op;
	size_t off, len;	/* of the request in the stream */
};

static bool has_blank(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (p[i] == '\n' && p[i + 1] == '\n')
			return true;
	return false;
}

/* one request of n bytes at p, as the framing must have cut it */
static void check_request(const char *p, size_t n, const struct wg_uapi_request *r)
{
	if (n < 2 || p[n - 2] != '\n' || p[n - 1] != '\n' || has_blank(p, n - 1))
		abort();
	switch (r->op) {
	case WG_UAPI_OP_GET:
		if (n != 7 || memcmp(p, "get=1\n\n", 7) || r->body || r->body_len)
			abort();
		break;
	case WG_UAPI_OP_SET:
		if (n < 7 || memcmp(p, "set=1\n", 6) || r->body != p + 6 || r->body_len != n - 7 ||
		    (r->body_len && r->body[r->body_len - 1] != '\n'))
			abort();
		break;
	case WG_UAPI_OP_UNKNOWN:
		if ((n == 7 && !memcmp(p, "get=1\n\n", 7)) || (n >= 7 && !memcmp(p, "set=1\n", 6)))
			abort();
		break;
	default:
		abort();
	}
}

/* the requests of the whole stream at once; how many */
static size_t frame_all(const char *s, size_t len, struct found *out)
{
	struct wg_uapi_request r;
	size_t off = 0, n, k = 0;

	while (k < MAX_REQS && (n = wg_uapi_next_request(s + off, len - off, &r))) {
		if (n > len - off)
			abort();
		check_request(s + off, n, &r);
		if (r.op == WG_UAPI_OP_SET) {
			struct wg_uapi_config c;
			size_t line = 0;
			if (wg_uapi_parse_set(r.body, r.body_len, &c, &line) < 0 && !line)
				abort();	/* a refusal names its line */
			wg_uapi_config_clear(&c);
		}
		out[k++] = (struct found){ r.op, off, n };
		off += n;
	}
	if (k < MAX_REQS && has_blank(s + off, len - off))
		abort();	/* a complete request was left unframed */
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct found whole[MAX_REQS];
	struct wg_uapi_request r;
	size_t piece, k, got = 0, have = 0, start = 0, n;
	char *s;

	if (size < 1)
		return 0;
	piece = 1 + data[0] % 64;
	size--;
	/* an exact-size heap copy, so ASan sees any read past the end */
	if (!(s = malloc(size ? size : 1)))
		return 0;
	memcpy(s, data + 1, size);
	k = frame_all(s, size, whole);

	/* the same bytes arriving piece by piece */
	while (have < size && got < k) {
		have += piece < size - have ? piece : size - have;
		while (got < k && (n = wg_uapi_next_request(s + start, have - start, &r))) {
			if (whole[got].off != start || whole[got].len != n || whole[got].op != r.op)
				abort();
			start += n;
			got++;
		}
	}
	if (got != k)
		abort();
	free(s);
	return 0;
}
