#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "agent/wg/crypto.h"
#include "agent/wg/uapi.h"

#define K1 "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a"
#define K2 "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376"

struct set_case {
	const char *body;
	int rc;
	size_t bad_line;	/* when rc < 0 */
};

/* Bodies as wg(8) writes them (ipc-uapi.h), and ones it must refuse. */
Test(wg_uapi, parse_table)
{
	static const struct set_case cases[] = {
		{ "", 0, 0 },
		{ "private_key=" K1 "\nlisten_port=51820\nfwmark=0\nreplace_peers=true\n", 0, 0 },
		{ "public_key=" K2 "\nremove=true\n", 0, 0 },
		{ "public_key=" K2 "\nupdate_only=true\nendpoint=[2001:db8::1]:51820\n", 0, 0 },
		{ "public_key=" K2 "\nprotocol_version=1\npreshared_key=" K1 "\n"
		  "endpoint=192.0.2.1:51820\npersistent_keepalive_interval=25\n"
		  "replace_allowed_ips=true\nallowed_ip=10.0.0.0/8\nallowed_ip=fd00::1/64\n", 0, 0 },
		{ "private_key=" K1, 0, 0 },	/* no final newline */
		{ "listen_port=65536\n", -EINVAL, 1 },
		{ "listen_port=-1\n", -EINVAL, 1 },
		{ "listen_port=\n", -EINVAL, 1 },
		{ "fwmark=4294967296\n", -EINVAL, 1 },
		{ "private_key=" K1 "0\n", -EINVAL, 1 },
		{ "private_key=zz4b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a\n", -EINVAL, 1 },
		{ "bogus=1\n", -EINVAL, 1 },
		{ "noequals\n", -EINVAL, 1 },
		{ "=x\n", -EINVAL, 1 },
		{ "replace_peers=yes\n", -EINVAL, 1 },
		{ "listen_port=1\n\nfwmark=1\n", -EINVAL, 2 },
		{ "endpoint=1.2.3.4:5\n", -EINVAL, 1 },		/* peer key before any peer */
		{ "public_key=" K2 "\nlisten_port=1\n", -EINVAL, 2 },	/* device key in a peer */
		{ "public_key=" K2 "\nprotocol_version=2\n", -EINVAL, 2 },
		{ "public_key=" K2 "\nendpoint=1.2.3.4\n", -EINVAL, 2 },
		{ "public_key=" K2 "\nendpoint=host.example:51820\n", -EINVAL, 2 },
		{ "public_key=" K2 "\nallowed_ip=10.0.0.0/33\n", -EINVAL, 2 },
		{ "public_key=" K2 "\nallowed_ip=10.0.0.0\n", -EINVAL, 2 },
		{ "public_key=" K2 "\npersistent_keepalive_interval=70000\n", -EINVAL, 2 },
		{ "public_key=short\n", -EINVAL, 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wg_uapi_config c;
		size_t line = 0;
		int rc = wg_uapi_parse_set(cases[i].body, strlen(cases[i].body), &c, &line);
		cr_expect_eq(rc, cases[i].rc, "case %zu: rc %d", i, rc);
		if (rc < 0) {
			cr_expect_eq(line, cases[i].bad_line, "case %zu: line %zu", i, line);
			cr_expect_eq(c.n_peers, 0);
			cr_expect_null(c.peers);
		}
		wg_uapi_config_clear(&c);
	}
}

Test(wg_uapi, parse_values)
{
	static const char body[] =
		"private_key=" K1 "\nlisten_port=51820\nfwmark=7\nreplace_peers=true\n"
		"public_key=" K2 "\npreshared_key=" K1 "\nendpoint=[::ffff:192.0.2.1]:99\n"
		"persistent_keepalive_interval=25\nreplace_allowed_ips=true\n"
		"allowed_ip=10.1.2.3/8\nallowed_ip=fd00::/64\n"
		"public_key=" K1 "\nremove=true\n";
	struct wg_uapi_config c;
	char buf[ADDR_STRLEN], hex[65];

	cr_assert_eq(wg_uapi_parse_set(body, strlen(body), &c, NULL), 0);
	cr_expect_eq(c.flags, WG_UAPI_HAS_PRIVATE_KEY | WG_UAPI_HAS_LISTEN_PORT | WG_UAPI_HAS_FWMARK |
				      WG_UAPI_REPLACE_PEERS);
	wg_key_to_hex(hex, c.private_key);
	cr_expect_str_eq(hex, K1);
	cr_expect_eq(c.listen_port, 51820);
	cr_expect_eq(c.fwmark, 7);
	cr_assert_eq(c.n_peers, 2);
	const struct wg_uapi_peer *p = &c.peers[0];
	cr_expect_eq(p->flags, WG_UAPI_PEER_HAS_PRESHARED_KEY | WG_UAPI_PEER_HAS_ENDPOINT |
				       WG_UAPI_PEER_HAS_KEEPALIVE | WG_UAPI_PEER_REPLACE_ALLOWED_IPS);
	cr_expect_str_eq(addr_format(&p->endpoint, buf, sizeof(buf)), "192.0.2.1:99");	/* unmapped */
	cr_expect_eq(p->persistent_keepalive, 25);
	cr_assert_eq(p->n_allowed_ips, 2);
	cr_expect_str_eq(cidr_format(&p->allowed_ips[0], buf, sizeof(buf)), "10.0.0.0/8");	/* masked */
	cr_expect_str_eq(cidr_format(&p->allowed_ips[1], buf, sizeof(buf)), "fd00::/64");
	cr_expect_eq(c.peers[1].flags, WG_UAPI_PEER_REMOVE);
	wg_uapi_config_clear(&c);
	cr_expect_eq(c.n_peers, 0);
}

Test(wg_uapi, format_get)
{
	struct wg_uapi_config c = { 0 };
	struct wg_uapi_peer *p;
	struct cidr ip;
	char *text;
	size_t len;

	cr_assert_eq(wg_key_from_hex(c.private_key, K1), 0);
	c.has_private_key = true;
	c.listen_port = 51820;
	p = wg_uapi_config_add_peer(&c);
	cr_assert_not_null(p);
	cr_assert_eq(wg_key_from_hex(p->public_key, K2), 0);
	cr_assert_eq(addr_parse("192.0.2.1:51821", &p->endpoint), 0);
	p->last_handshake_sec = 1700000000;
	p->last_handshake_nsec = 5;
	p->rx_bytes = 1234;
	p->tx_bytes = 5678;
	p->persistent_keepalive = 25;
	cr_assert_eq(cidr_parse("10.0.0.0/8", false, &ip), 0);
	cr_assert_eq(wg_uapi_peer_add_allowed_ip(p, &ip), 0);
	p = wg_uapi_config_add_peer(&c);	/* a bare peer: no endpoint, never handshaken */
	cr_assert_not_null(p);

	cr_assert_eq(wg_uapi_format_get(&c, &text, &len), 0);
	cr_expect_eq(strlen(text), len);
	cr_expect_str_eq(text,
			 "private_key=" K1 "\nlisten_port=51820\n"
			 "public_key=" K2 "\npreshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
			 "protocol_version=1\nendpoint=192.0.2.1:51821\n"
			 "last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\n"
			 "tx_bytes=5678\nrx_bytes=1234\npersistent_keepalive_interval=25\nallowed_ip=10.0.0.0/8\n"
			 "public_key=0000000000000000000000000000000000000000000000000000000000000000\n"
			 "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
			 "protocol_version=1\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
			 "tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n");
	free(text);
	wg_uapi_config_clear(&c);
}

struct frame_case {
	const char *stream;
	size_t taken;		/* 0: incomplete */
	enum wg_uapi_op op;
	size_t body_off, body_len;	/* SET */
};

/* The server's framing: a request ends at the first blank line. */
Test(wg_uapi, next_request)
{
	static const struct frame_case cases[] = {
		{ "", 0, 0, 0, 0 },
		{ "get=1\n", 0, 0, 0, 0 },
		{ "get=1\n\n", 7, WG_UAPI_OP_GET, 0, 0 },
		{ "get=1\n\nget=1\n\n", 7, WG_UAPI_OP_GET, 0, 0 },
		{ "set=1\n\n", 7, WG_UAPI_OP_SET, 6, 0 },
		{ "set=1\nlisten_port=1\n\nget=1\n", 21, WG_UAPI_OP_SET, 6, 14 },
		{ "set=1\nlisten_port=1\n", 0, 0, 0, 0 },
		{ "get=1\nx=1\n\n", 11, WG_UAPI_OP_UNKNOWN, 0, 0 },
		{ "get=2\n\n", 7, WG_UAPI_OP_UNKNOWN, 0, 0 },
		{ "set=1\n", 0, 0, 0, 0 },
		{ "\n\n", 2, WG_UAPI_OP_UNKNOWN, 0, 0 },
		{ "set=1", 0, 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct frame_case *c = &cases[i];
		struct wg_uapi_request r;
		size_t n = wg_uapi_next_request(c->stream, strlen(c->stream), &r);

		cr_assert_eq(n, c->taken, "case %zu: took %zu", i, n);
		if (!n)
			continue;
		cr_assert_eq(r.op, c->op, "case %zu", i);
		if (c->op == WG_UAPI_OP_SET) {
			cr_assert_eq(r.body, c->stream + c->body_off, "case %zu", i);
			cr_assert_eq(r.body_len, c->body_len, "case %zu", i);
		}
	}
}
