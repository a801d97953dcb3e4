/* Discovery rounds against in-process STUN servers (lib/stun's server answer)
 * on a fake clock. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/meshd/disco.h"

static union sockaddr_any A(const char *s)
{
	union sockaddr_any a;
	cr_assert_eq(addr_parse(s, &a), 0, "%s", s);
	return a;
}

/* the answer a STUN server at srv gives to req when it sees it from src */
static size_t answer(const char *srv, const char *src, const uint8_t *req, size_t len,
		     uint8_t *out, size_t cap)
{
	struct stun_server_cfg cfg = { 0 };
	struct stun_server_reply r;
	union sockaddr_any from = A(src);

	cfg.addrs[0][0] = A(srv);
	cr_assert_eq(stun_server_answer(&cfg, 0, 0, &from, req, len, out, cap, &r), 0);
	cr_assert_eq(r.verdict, STUN_SRV_REPLY);
	return r.len;
}

/* a pointer to a parsed address that lives for a few calls */
static const union sockaddr_any *P(const char *s)
{
	static union sockaddr_any ring[8];
	static int k;
	union sockaddr_any *a = &ring[k++ % 8];
	*a = A(s);
	return a;
}

static const char *S1 = "203.0.113.1:3478", *S2 = "198.51.100.1:3478";

/* one round where server i sees the agent as seen[i] (NULL: silent) */
static uint64_t round_with(struct disco *d, uint64_t now, const char *seen1, const char *seen2)
{
	struct disco_send out[8];
	int n = disco_poll(d, now, out, 8);
	union sockaddr_any s1 = A(S1);

	cr_assert_eq(d->state, DISCO_PROBING);
	cr_assert_eq(n, 2);
	for (int i = 0; i < n; i++) {
		const char *srv = addr_equal(&out[i].to, &s1) ? S1 : S2;
		const char *seen = srv == S1 ? seen1 : seen2;
		uint8_t resp[512];
		size_t len;
		if (!seen)
			continue;
		len = answer(srv, seen, out[i].buf, out[i].len, resp, sizeof(resp));
		cr_assert_eq(disco_receive(d, resp, len, P(srv), now + 20), 0);
	}
	if (seen1 && seen2)
		cr_assert_eq(d->state, DISCO_IDLE);
	now += 20;
	while (d->state == DISCO_PROBING) {
		now = disco_deadline(d);
		cr_assert_neq(now, UINT64_MAX);
		disco_poll(d, now, out, 8);
	}
	return now;
}

static void setup2(struct disco *d)
{
	disco_init(d, 0, 1000);
	cr_assert_eq(disco_add_server(d, P(S1), "stun:203.0.113.1:3478", false), 0);
	cr_assert_eq(disco_add_server(d, P(S2), "relay", true), 0);
	cr_assert_eq(disco_add_server(d, P(S2), "relay", true), -EEXIST);
	cr_assert_eq(disco_deadline(d), 1000);
}

Test(disco, same_mapping_is_not_symmetric)
{
	struct disco d;
	uint64_t now;

	setup2(&d);
	now = round_with(&d, 1000, "192.0.2.10:40000", "192.0.2.10:40000");
	cr_assert_eq(now, 1020);
	cr_assert_eq(d.state, DISCO_IDLE);
	cr_assert_eq(d.res.generation, 1);
	cr_assert_eq(d.res.nanswered, 2);
	cr_assert_not(d.res.symmetric_nat);
	cr_assert_eq(d.res.nmapped, 1);
	cr_assert(addr_equal(&d.res.mapped[0], P("192.0.2.10:40000")));
	cr_assert_eq(disco_deadline(&d), 1020 + DISCO_INTERVAL_MS);
	/* the same again: no new generation */
	now = round_with(&d, disco_deadline(&d), "192.0.2.10:40000", "192.0.2.10:40000");
	cr_assert_eq(d.res.generation, 1);
	cr_assert_eq(d.rounds, 2);
}

Test(disco, mapping_per_destination_is_symmetric)
{
	struct disco d;
	uint64_t now;

	setup2(&d);
	now = round_with(&d, 1000, "192.0.2.10:40000", "192.0.2.10:40001");
	cr_assert(d.res.symmetric_nat);
	cr_assert_eq(d.res.nmapped, 2);
	cr_assert_eq(d.res.generation, 1);
	/* moving out of the symmetric NAT is noticed too */
	round_with(&d, disco_deadline(&d), "192.0.2.11:5000", "192.0.2.11:5000");
	cr_assert_not(d.res.symmetric_nat);
	cr_assert_eq(d.res.generation, 2);
	(void)now;
}

/* a dual-stack agent asks servers of both families: its IPv4 and IPv6
 * mappings always differ, by family, not by destination; only two
 * mappings of one family make a symmetric NAT */
Test(disco, symmetric_within_a_family)
{
	static const struct {
		const char *name;
		const char *srv[4], *seen[4];
		bool symmetric;
		int nmapped;
	} cases[] = {
		{ "one IPv4, one IPv6 server", { "203.0.113.1:3478", "[2001:db8::1]:3478" },
		  { "192.0.2.10:40000", "[2001:db8::15]:51820" }, false, 2 },
		{ "two IPv4 agreeing, one IPv6", { "203.0.113.1:3478", "[2001:db8::1]:3478", "198.51.100.1:3478" },
		  { "192.0.2.10:40000", "[2001:db8::15]:51820", "192.0.2.10:40000" }, false, 2 },
		{ "two IPv4 differing, one IPv6", { "203.0.113.1:3478", "[2001:db8::1]:3478", "198.51.100.1:3478" },
		  { "192.0.2.10:40000", "[2001:db8::15]:51820", "192.0.2.10:40001" }, true, 3 },
		{ "two IPv6 differing, one IPv4", { "[2001:db8::1]:3478", "203.0.113.1:3478", "[2001:db8::2]:3478" },
		  { "[2001:db8::15]:51820", "192.0.2.10:40000", "[2001:db8::15]:51821" }, true, 3 },
		{ "two of each, each family agreeing", { "[2001:db8::1]:3478", "203.0.113.1:3478", "[2001:db8::2]:3478",
							 "198.51.100.1:3478" },
		  { "[2001:db8::15]:51820", "192.0.2.10:40000", "[2001:db8::15]:51820", "192.0.2.10:40000" }, false, 2 },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct disco_send out[8];
		struct disco d;
		int nsrv = 0, n;

		disco_init(&d, 0, 1000);
		while (nsrv < 4 && cases[c].srv[nsrv]) {
			cr_assert_eq(disco_add_server(&d, P(cases[c].srv[nsrv]), cases[c].srv[nsrv], false), 0);
			nsrv++;
		}
		n = disco_poll(&d, 1000, out, 8);
		cr_assert_eq(n, nsrv, "%s", cases[c].name);
		for (int i = 0; i < n; i++) {
			uint8_t resp[512];
			size_t len;
			int k = 0;

			while (!addr_equal(&out[i].to, P(cases[c].srv[k])))
				k++;
			len = answer(cases[c].srv[k], cases[c].seen[k], out[i].buf, out[i].len, resp, sizeof(resp));
			cr_assert_eq(disco_receive(&d, resp, len, P(cases[c].srv[k]), 1020), 0);
		}
		cr_assert_eq(d.state, DISCO_IDLE, "%s", cases[c].name);
		cr_expect_eq(d.res.symmetric_nat, cases[c].symmetric, "%s", cases[c].name);
		cr_expect_eq(d.res.nmapped, cases[c].nmapped, "%s", cases[c].name);
	}
}

/* RFC 8489 retransmissions on DISCO_RTO_MS, then the silent server is skipped */
Test(disco, silent_server_times_out)
{
	static const uint64_t want[] = { 1000, 1250, 1750, 2750 };
	struct disco d;
	struct disco_send out[8];
	uint64_t now = 1000, sends[8];
	int nsends = 0;

	disco_init(&d, 0, 1000);
	disco_add_server(&d, P(S1), "stun:a", false);
	while (now != UINT64_MAX && now < 100000) {
		int n = disco_poll(&d, now, out, 8);
		for (int i = 0; i < n; i++)
			sends[nsends++] = now;
		if (d.state == DISCO_IDLE)
			break;
		now = disco_deadline(&d);
	}
	cr_assert_eq(nsends, 4);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(sends[i], want[i]);
	cr_assert_eq(now, 2750 + DISCO_RM * DISCO_RTO_MS);
	cr_assert_eq(d.state, DISCO_IDLE);
	cr_assert_eq(d.srv[0].timeouts, 1);
	cr_assert_eq(d.res.generation, 0);
	cr_assert_eq(d.res.nanswered, 0);
}

/* a silent server does not hide the other's mapping; nobody answering keeps
 * the last result */
Test(disco, partial_and_no_answers)
{
	struct disco d;
	uint64_t now;

	setup2(&d);
	now = round_with(&d, 1000, "192.0.2.10:40000", NULL);
	cr_assert_eq(d.res.nanswered, 1);
	cr_assert_eq(d.res.nmapped, 1);
	cr_assert_not(d.res.symmetric_nat);
	cr_assert_eq(now, 2750 + DISCO_RM * DISCO_RTO_MS);
	/* during the next round the last answers stay reported */
	{
		struct disco_send o[8];
		cr_assert_eq(disco_poll(&d, disco_deadline(&d), o, 8), 2);
		cr_assert(d.srv[0].answered);
		cr_assert_not(d.srv[0].got);
		/* back to IDLE for round_with below */
		while (d.state == DISCO_PROBING)
			disco_poll(&d, disco_deadline(&d), o, 8);
	}
	now = round_with(&d, disco_deadline(&d), NULL, NULL);
	cr_assert_eq(d.res.nanswered, 0);
	cr_assert(d.srv[0].answered, "nobody answered: the last answers stay");
	cr_assert_eq(d.res.nmapped, 1);
	cr_assert_eq(d.res.generation, 1);
}

/* a local address change starts a round now, or right after the current one */
Test(disco, kick)
{
	struct disco d;
	struct disco_send out[8];
	uint64_t now;

	setup2(&d);
	now = round_with(&d, 1000, "192.0.2.10:40000", "192.0.2.10:40000");
	disco_kick(&d, now + 5);
	cr_assert_eq(disco_deadline(&d), now + 5);
	cr_assert_eq(disco_poll(&d, now + 5, out, 8), 2);
	disco_kick(&d, now + 6);
	cr_assert(d.kicked);
	while (d.state == DISCO_PROBING) {
		now = disco_deadline(&d);
		disco_poll(&d, now, out, 8);
	}
	cr_assert_eq(disco_deadline(&d), now);
}

/* garbage, foreign and misdirected datagrams never count as answers */
Test(disco, bad_input)
{
	struct disco d;
	struct disco_send out[8];
	uint8_t buf[600], resp[512], req[128], tid[STUN_TID_LEN] = { 1, 2, 3 };
	union sockaddr_any s1 = A(S1), other = A("192.0.2.99:3478");
	size_t len;
	int n, rl;

	setup2(&d);
	n = disco_poll(&d, 1000, out, 8);
	cr_assert_eq(n, 2);
	/* the right answer from the wrong address */
	len = answer(S1, "192.0.2.10:1", out[0].buf, out[0].len, resp, sizeof(resp));
	cr_assert_eq(disco_receive(&d, resp, len, &other, 1001), STUN_E_TXN);
	/* truncated answer from the right one */
	cr_assert_lt(disco_receive(&d, resp, len - 3, &s1, 1001), 0);
	cr_assert_neq(disco_receive(&d, resp, len - 3, &s1, 1001), STUN_E_TXN);
	/* a request (someone asking us, e.g. as a relay) */
	rl = stun_build_binding_request(req, sizeof(req), tid, &(struct stun_request_opts){ 0 });
	cr_assert_gt(rl, 0);
	cr_assert_eq(disco_receive(&d, req, (size_t)rl, &s1, 1001), STUN_E_TXN);
	/* random bytes */
	srand(7);
	for (int k = 0; k < 2000; k++) {
		size_t l = (size_t)(rand() % (int)sizeof(buf));
		for (size_t i = 0; i < l; i++)
			buf[i] = (uint8_t)rand();
		if (l >= 8 && k % 2) {	/* make half of them look like STUN */
			buf[0] &= 0x3f;
			memcpy(buf + 4, "\x21\x12\xa4\x42", 4);
		}
		cr_assert_neq(disco_receive(&d, buf, l, &s1, 1001), 0);
	}
	cr_assert_not(d.srv[0].got);
	/* the real answer still works */
	cr_assert_eq(disco_receive(&d, resp, len, &s1, 1002), 0);
	cr_assert(d.srv[0].got);
	cr_assert_not(d.srv[0].answered, "reported only once the round is over");
	cr_assert_eq(d.srv[0].rtt_ms, 2);
}

Test(disco, relays_replaced)
{
	struct disco d;
	union sockaddr_any r[2] = { A("198.51.100.7:51820"), A("198.51.100.8:51820") };

	setup2(&d);
	cr_assert_eq(d.nsrv, 2);
	/* S2 (a relay) goes, two new ones come */
	cr_assert_eq(disco_set_relays(&d, r, 2), 3);
	cr_assert_eq(d.nsrv, 3);
	cr_assert_str_eq(d.srv[0].label, "stun:203.0.113.1:3478");
	cr_assert_eq(disco_set_relays(&d, r, 2), 0);
	cr_assert_eq(disco_set_relays(&d, NULL, 0), 2);
	cr_assert_eq(d.nsrv, 1);
	/* no servers: rounds do nothing and wait for the interval */
	disco_init(&d, 5000, 0);
	cr_assert_eq(disco_poll(&d, 0, NULL, 0), 0);
	cr_assert_eq(d.state, DISCO_IDLE);
	cr_assert_eq(disco_deadline(&d), 5000);
	cr_assert_eq(disco_add_server(&d, &(union sockaddr_any){ .sa.sa_family = 0 }, "x", false), -EINVAL);
}
