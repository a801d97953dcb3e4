/* The port mapping core (agent/meshd/portmap.c) on a fake clock: PCP chosen
 * after ANNOUNCE, NAT-PMP when the server answers PCP with version 0, UPnP
 * through the worker's results, renewal at half the lifetime, a gateway
 * reboot seen in the epoch, failure when nothing answers, the release; and
 * portmap candidates ordered first (path_order_candidates). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "agent/meshd/path.h"
#include "agent/meshd/portmap.h"

static const uint8_t nonce[12] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2 };

static void start(struct portmap *pm, unsigned allowed, uint16_t want)
{
	union sockaddr_any gw, me;

	portmap_init(pm, allowed, 51820, want, nonce);
	addr_parse_ip("192.168.1.1", 0, &gw);
	addr_parse_ip("192.168.1.10", 0, &me);
	portmap_start(pm, &gw, &me, 1000);
}

/* every datagram due at now; returns how many, the last in *last */
static int drain(struct portmap *pm, uint64_t now, struct portmap_dgram *last)
{
	struct portmap_dgram d = { 0 };
	int n = 0;

	while (portmap_poll(pm, now, &d) == 1) {
		*last = d;
		n++;
	}
	return n;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* a PCP answer to opcode op: SUCCESS unless result */
static size_t pcp_answer(uint8_t *b, int op, uint8_t result, uint32_t life, uint32_t epoch, uint16_t ext_port)
{
	memset(b, 0, 60);
	b[0] = 2, b[1] = (uint8_t)(0x80 | op), b[3] = result;
	put32(b + 4, life);
	put32(b + 8, epoch);
	if (op == 0)
		return 24;
	memcpy(b + 24, nonce, 12);
	b[36] = 17;
	b[40] = 51820 >> 8, b[41] = 51820 & 0xff;
	b[42] = (uint8_t)(ext_port >> 8), b[43] = (uint8_t)ext_port;
	b[54] = b[55] = 0xff;
	b[56] = 203, b[57] = 0, b[58] = 113, b[59] = 5;
	return 60;
}

static void pcp_mapped(struct portmap *pm, uint64_t *now)
{
	struct portmap_dgram d = { 0 };
	uint8_t b[60];

	cr_assert_eq(drain(pm, *now, &d), 2);	/* ANNOUNCE, NAT-PMP address */
	cr_assert_eq(portmap_receive(pm, b, pcp_answer(b, 0, 0, 0, 100, 0), *now + 3), 0);
	cr_assert_eq(pm->state, PORTMAP_MAPPING);
	cr_assert_eq(pm->proto, PORTMAP_PCP);
	cr_assert_eq(drain(pm, *now + 3, &d), 1);
	cr_assert_eq(d.len, 60);
	cr_expect_eq(d.buf[1], 1);			/* MAP */
	cr_expect_eq(d.buf[42] << 8 | d.buf[43], 40001);	/* last time's port */
	*now += 5;
	cr_assert_eq(portmap_receive(pm, b, pcp_answer(b, 1, 0, 3600, 100, 40001), *now), 0);
	cr_assert_eq(pm->state, PORTMAP_MAPPED);
}

Test(portmap, pcp_maps_renews_and_releases)
{
	struct portmap pm;
	struct portmap_dgram d = { 0 };
	uint64_t now = 1000;
	char a[ADDR_STRLEN];
	uint8_t buf[64];

	start(&pm, PORTMAP_ALL, 40001);
	cr_expect_eq(pm.upnp_job, PORTMAP_UPNP_DISCOVER);
	pcp_mapped(&pm, &now);
	cr_expect_str_eq(addr_format(&pm.external, a, sizeof(a)), "203.0.113.5:40001");
	cr_expect_eq(pm.lifetime, 3600);
	cr_expect_eq(pm.first_ms, 6);
	/* renewal at half the lifetime, not before */
	cr_expect_leq(portmap_deadline(&pm), now + PORTMAP_CHECK_MS);
	uint64_t renew = now + 1800 * 1000;
	for (uint64_t t = now + PORTMAP_CHECK_MS; t < renew; t += PORTMAP_CHECK_MS) {
		uint8_t b[60];
		cr_assert_eq(drain(&pm, t, &d), 1, "t=%llu", (unsigned long long)t);	/* the epoch check */
		cr_assert_eq(d.buf[1], 0);
		/* the server's clock keeps pace */
		portmap_receive(&pm, b, pcp_answer(b, 0, 0, 0, (uint32_t)(100 + (t - now) / 1000), 0), t);
		cr_assert_eq(pm.state, PORTMAP_MAPPED);
	}
	/* the renewal first, then the epoch check due at the same time */
	cr_assert_eq(portmap_poll(&pm, renew, &d), 1);
	cr_expect_eq(d.buf[1], 1);
	cr_expect_eq(d.buf[4] << 24 | d.buf[5] << 16 | d.buf[6] << 8 | d.buf[7], PORTMAP_LIFETIME_S);
	cr_expect_eq(pm.remaps, 0);
	/* the release: the same MAP with lifetime 0 */
	cr_assert_eq(portmap_release(&pm, buf, sizeof(buf)), 60);
	cr_expect_eq(buf[4] | buf[5] | buf[6] | buf[7], 0);
	cr_expect_arr_eq(buf + 24, nonce, 12);
}

Test(portmap, epoch_going_back_maps_again)
{
	struct portmap pm;
	struct portmap_dgram d = { 0 };
	uint64_t now = 1000;
	uint8_t b[60];

	start(&pm, PORTMAP_ALL, 40001);
	pcp_mapped(&pm, &now);
	now += PORTMAP_CHECK_MS;
	cr_assert_eq(drain(&pm, now, &d), 1);
	/* RFC 6887 8.5: the gateway restarted, its epoch is 1 */
	cr_assert_eq(portmap_receive(&pm, b, pcp_answer(b, 0, 0, 0, 1, 0), now), 0);
	cr_expect_eq(pm.state, PORTMAP_MAPPING);
	cr_expect_eq(pm.remaps, 1);
	cr_assert_eq(drain(&pm, now, &d), 1);
	cr_expect_eq(d.buf[1], 1);
	cr_assert_eq(portmap_receive(&pm, b, pcp_answer(b, 1, 0, 7200, 1, 40001), now + 2), 0);
	cr_expect_eq(pm.state, PORTMAP_MAPPED);
	/* a server clock that ran 20 s in 2 s is a new epoch too */
	now += PORTMAP_CHECK_MS + 2;
	cr_assert_eq(drain(&pm, now, &d), 1);
	portmap_receive(&pm, b, pcp_answer(b, 0, 0, 0, 21, 0), now);
	cr_expect_eq(pm.remaps, 2);
}

Test(portmap, natpmp_when_pcp_answers_version_0)
{
	struct portmap pm;
	struct portmap_dgram d = { 0 };
	static const uint8_t unsupp[8] = { 0, 0x80, 0, 1, 0, 0, 0, 50 };
	static const uint8_t addr[12] = { 0, 0x80, 0, 0, 0, 0, 0, 50, 198, 51, 100, 9 };
	static const uint8_t map[16] = { 0, 0x81, 0, 0, 0, 0, 0, 50, 0xca, 0x6c, 0xca, 0x6c, 0, 0, 0x1c, 0x20 };
	char a[ADDR_STRLEN];

	start(&pm, PORTMAP_PCP | PORTMAP_NATPMP, 0);
	cr_assert_eq(drain(&pm, 1000, &d), 2);
	cr_assert_eq(portmap_receive(&pm, unsupp, 8, 1002), 0);
	cr_expect(pm.pcp_dead);
	cr_assert_eq(portmap_receive(&pm, addr, 12, 1003), 0);
	cr_assert_eq(pm.proto, PORTMAP_NATPMP);
	cr_assert_eq(drain(&pm, 1003, &d), 1);
	cr_expect_eq(d.len, 12);
	cr_expect_eq(d.buf[1], 1);
	cr_assert_eq(portmap_receive(&pm, map, 16, 1004), 0);
	cr_assert_eq(pm.state, PORTMAP_MAPPED);
	cr_expect_str_eq(addr_format(&pm.external, a, sizeof(a)), "198.51.100.9:51820");
	/* an address answer with a new epoch: the mapping is made again */
	uint8_t again[12];
	memcpy(again, addr, 12);
	again[7] = 0;
	cr_assert_eq(portmap_receive(&pm, again, 12, 1004 + PORTMAP_CHECK_MS), 0);
	cr_expect_eq(pm.state, PORTMAP_MAPPING);
	cr_expect_eq(pm.remaps, 1);
}

Test(portmap, silence_fails_and_retries)
{
	struct portmap pm;
	struct portmap_dgram d = { 0 };
	int sent = 0;

	start(&pm, PORTMAP_PCP | PORTMAP_NATPMP, 0);
	for (uint64_t t = 1000; t < 1000 + PORTMAP_PROBE_MS; t = portmap_deadline(&pm))
		sent += drain(&pm, t, &d);
	cr_expect_geq(sent, 6);				/* resent within the budget */
	drain(&pm, 1000 + PORTMAP_PROBE_MS, &d);
	cr_expect_eq(pm.state, PORTMAP_FAILED);
	cr_expect_eq(portmap_deadline(&pm), 1000 + PORTMAP_PROBE_MS + PORTMAP_RETRY_MIN_MS, "again in 2 s");
	/* each failure in a row doubles the wait, up to PORTMAP_RETRY_MS */
	for (uint64_t want = 2 * PORTMAP_RETRY_MIN_MS; want <= 2 * PORTMAP_RETRY_MS; want *= 2) {
		uint64_t t = portmap_deadline(&pm);

		drain(&pm, t, &d);
		cr_expect_eq(pm.state, PORTMAP_PROBING);
		drain(&pm, t + PORTMAP_PROBE_MS, &d);
		cr_expect_eq(pm.state, PORTMAP_FAILED);
		cr_expect_eq(portmap_deadline(&pm) - (t + PORTMAP_PROBE_MS),
			     want < PORTMAP_RETRY_MS ? want : PORTMAP_RETRY_MS);
	}
}

Test(portmap, upnp_through_the_worker)
{
	struct portmap pm;
	struct portmap_dgram d = { 0 };
	union sockaddr_any ext;

	start(&pm, PORTMAP_UPNP, 0);
	cr_expect_eq(drain(&pm, 1000, &d), 0);		/* nothing on port 5351 */
	cr_assert_eq(pm.upnp_job, PORTMAP_UPNP_DISCOVER);
	pm.upnp_job = PORTMAP_UPNP_NONE;		/* taken by the I/O layer */
	pm.upnp_busy = true;
	drain(&pm, 1000 + PORTMAP_PROBE_MS, &d);
	cr_expect_eq(pm.state, PORTMAP_PROBING);	/* the worker is still out */
	pm.upnp_busy = false;
	portmap_upnp_discovered(&pm, true, 1300);
	cr_assert_eq(pm.proto, PORTMAP_UPNP);
	cr_assert_eq(pm.upnp_job, PORTMAP_UPNP_MAP);
	pm.upnp_job = PORTMAP_UPNP_NONE;
	addr_parse("198.51.100.9:51820", &ext);
	portmap_upnp_mapped(&pm, true, &ext, 7200, 1310);
	cr_expect_eq(pm.state, PORTMAP_MAPPED);
	cr_expect_eq(pm.first_ms, 311);
	cr_expect_eq(portmap_deadline(&pm), 1310 + PORTMAP_CHECK_MS);
	/* no epoch: the worker is asked whether the IGD still has it */
	drain(&pm, 1310 + PORTMAP_CHECK_MS, &d);
	cr_expect_eq(pm.upnp_job, PORTMAP_UPNP_CHECK);
	pm.upnp_job = PORTMAP_UPNP_NONE;
	portmap_upnp_checked(&pm, true, 3320);
	cr_expect_eq(pm.state, PORTMAP_MAPPED);
	portmap_upnp_checked(&pm, false, 3320);		/* lost: probed again */
	cr_expect_eq(pm.state, PORTMAP_PROBING);
	cr_expect_eq(pm.upnp_job, PORTMAP_UPNP_DISCOVER);
	cr_expect_eq(pm.remaps, 1);
	cr_expect_eq(pm.want_port, 51820);
	/* a failed discovery with nothing else left: failed */
	start(&pm, PORTMAP_UPNP, 0);
	portmap_upnp_discovered(&pm, false, 1100);
	cr_expect_eq(pm.state, PORTMAP_FAILED);
}

Test(portmap, gateway_input_refused)
{
	struct portmap pm;
	struct portmap_dgram d = { 0 };
	uint64_t now = 1000;
	uint8_t b[60];

	start(&pm, PORTMAP_ALL, 40001);
	pcp_mapped(&pm, &now);
	pcp_answer(b, 1, 0, 3600, 200, 5555);
	b[30] ^= 1;				/* another nonce */
	cr_expect_eq(portmap_receive(&pm, b, 60, now), PCP_E_NONCE);
	cr_expect_eq(portmap_receive(&pm, b, 3, now), PCP_E_SHORT);
	cr_expect_eq(portmap_receive(&pm, b, 0, now), PCP_E_SHORT);
	cr_expect_eq(addr_port(&pm.external), 40001);
	/* a refusal of the renewal gives the protocol up */
	cr_assert_eq(portmap_receive(&pm, b, pcp_answer(b, 1, PCP_NOT_AUTHORIZED, 0, 200, 0), now), 0);
	cr_expect_neq(pm.state, PORTMAP_MAPPED);
	cr_expect(pm.pcp_dead);
	(void)d;
}

Test(portmap, protocol_lists)
{
	cr_expect_eq(portmap_parse_protos("pcp"), PORTMAP_PCP);
	cr_expect_eq(portmap_parse_protos("nat-pmp,upnp"), PORTMAP_NATPMP | PORTMAP_UPNP);
	cr_expect_eq(portmap_parse_protos("all"), PORTMAP_ALL);
	cr_expect_lt(portmap_parse_protos(""), 0);
	cr_expect_lt(portmap_parse_protos("pcp,"), 0);
	cr_expect_lt(portmap_parse_protos("upnp2"), 0);
	cr_expect_lt(portmap_parse_protos("pcp,,upnp"), 0);
}

Test(portmap, mapped_candidates_first)
{
	struct path_cand mine[1] = { 0 }, theirs[3] = { 0 };
	union sockaddr_any out[3];
	char a[ADDR_STRLEN];

	addr_parse("192.0.2.50:1000", &mine[0].addr);
	mine[0].reflexive = true;
	addr_parse("10.1.0.2:51820", &theirs[0].addr);
	addr_parse("198.51.100.9:40000", &theirs[1].addr);
	theirs[1].reflexive = true;
	addr_parse("198.51.100.9:51820", &theirs[2].addr);
	theirs[2].reflexive = theirs[2].mapped = true;
	cr_assert_eq(path_order_candidates(mine, 1, theirs, 3, out, 3), 3);
	cr_expect_str_eq(addr_format(&out[0], a, sizeof(a)), "198.51.100.9:51820");
	cr_expect_str_eq(addr_format(&out[1], a, sizeof(a)), "198.51.100.9:40000");
	cr_expect_str_eq(addr_format(&out[2], a, sizeof(a)), "10.1.0.2:51820");
}

#include "agent/meshd/portmap_ssdp.h"

/* UPnP Device Architecture 1.1, 1.3.3: a search answer's LOCATION */
Test(portmap, ssdp_location)
{
	static const struct { const char *in; int want; const char *loc; } cases[] = {
		{ "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:x\r\n"
		  "LOCATION: http://10.1.0.1:41455/rootDesc.xml\r\n\r\n", 0, "http://10.1.0.1:41455/rootDesc.xml" },
		{ "HTTP/1.1 200 OK\nlocation:http://gw/d.xml  \n\n", 0, "http://gw/d.xml" },
		{ "HTTP/1.1 404 Not Found\r\nLOCATION: http://a/b\r\n\r\n", -EBADMSG, NULL },
		{ "NOTIFY * HTTP/1.1\r\nLOCATION: http://a/b\r\n\r\n", -EBADMSG, NULL },
		{ "HTTP/1.1 200", -ENOENT, NULL },
		{ "HTTP/1.1 20", -EBADMSG, NULL },
		{ "HTTP/1.1 200 OK\r\nST: x\r\n\r\n", -ENOENT, NULL },
		{ "HTTP/1.1 200 OK\r\nLOCATION: ftp://a/b\r\n", -EINVAL, NULL },
		{ "HTTP/1.1 200 OK\r\nLOCATION: http://a/b c\r\n", -EINVAL, NULL },
		{ "HTTP/1.1 200 OK\r\nLOCATION: http://a/\x01\r\n", -EINVAL, NULL },
		{ "HTTP/1.1 200 OK\r\nLOCATION: http://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/\r\n",
		  -E2BIG, NULL },
	};
	char out[64], big[SSDP_MAX_LEN + 2];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = ssdp_location(cases[i].in, strlen(cases[i].in), out, sizeof(out));
		cr_expect_eq(rc, cases[i].want, "case %zu: %d", i, rc);
		if (!rc)
			cr_expect_str_eq(out, cases[i].loc);
	}
	memset(big, ' ', sizeof(big));
	memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
	cr_expect_eq(ssdp_location(big, sizeof(big), out, sizeof(out)), -EBADMSG);
	cr_expect_gt(ssdp_search("urn:schemas-upnp-org:device:InternetGatewayDevice:2", big, sizeof(big)), 0);
	cr_expect_eq(ssdp_search("urn:x", big, 20), -ENOBUFS);
}
