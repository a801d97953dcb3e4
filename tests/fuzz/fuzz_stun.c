/* libFuzzer target for the STUN codec: stun_parse on arbitrary bytes, the
 * server's answer to them (whose output must itself parse), the integrity
 * check, and a client transaction fed the input as a response. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stun/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct stun_server_cfg cfg;
	static int ready;
	struct stun_msg m;
	struct stun_server_reply r;
	uint8_t out[2048];
	union sockaddr_any src;
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	/* an exact-size heap copy, so ASan sees any read past the end */
	memcpy(copy, data, size);
	if (!ready) {
		cfg.rfc5780 = true;
		cfg.software = "fuzz";
		cfg.max_padding = 1024;
		addr_parse("192.0.2.1:3478", &cfg.addrs[0][0]);
		addr_parse("192.0.2.1:3479", &cfg.addrs[0][1]);
		addr_parse("192.0.2.2:3478", &cfg.addrs[1][0]);
		addr_parse("192.0.2.2:3479", &cfg.addrs[1][1]);
		ready = 1;
	}

	(void)stun_is_stun(copy, size);
	if (stun_parse(copy, size, &m) == 0) {
		for (int i = 0; i < m.nattrs; i++)
			if (m.attrs[i].value + m.attrs[i].len > copy + size)
				abort();
		if (m.has_software && (const uint8_t *)m.software + m.software_len > copy + size)
			abort();
		if (m.has_integrity)
			(void)stun_check_integrity(copy, size, &m, (const uint8_t *)"key", 3);
	}

	addr_parse(size % 2 ? "[2001:db8::5]:1000" : "198.51.100.5:1000", &src);
	if (stun_server_answer(&cfg, (int)(size % 2), (int)((size / 2) % 2), &src, copy, size,
			       out, sizeof(out), &r) == 0 && r.verdict == STUN_SRV_REPLY) {
		struct stun_msg reply;
		if (stun_parse(out, r.len, &reply) != 0)
			abort();	/* the server must only emit well-formed messages */
		if (r.ip < 0 || r.ip > 1 || r.port < 0 || r.port > 1)
			abort();
	}

	if (size >= STUN_HEADER_LEN) {
		struct stun_txn t;
		uint8_t req[64];
		const uint8_t *o;
		size_t ol;
		int n = stun_build_binding_request(req, sizeof(req), copy + 8, NULL);
		stun_txn_init(&t, NULL);
		if (n > 0 && stun_txn_start(&t, req, (size_t)n, 0) == 0 &&
		    stun_txn_poll(&t, 0, &o, &ol) == 1)
			(void)stun_txn_receive(&t, copy, size, 1, &m);
	}
	free(copy);
	return 0;
}
