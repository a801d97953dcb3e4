/* natdisc against scripted worlds: the real STUN server answer
 * (stun_server_answer) behind a small NAT written here, on a fake clock. The
 * table covers every mapping x filtering pair, the three port allocations,
 * hairpinning, a mapping timeout, an ALG that rewrites MAPPED-ADDRESS, and the
 * servers that must stop discovery: silent, without RFC 5780, ignoring
 * CHANGE-REQUEST, rejecting RESPONSE-PORT. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "natdisc.h"
#include "stun/stun.h"

enum { MAX_MAPS = 512 };

struct world_cfg {
	bool nat;			/* false: addresses pass untranslated, no filtering */
	enum natdisc_dep mapping, filtering;
	enum natdisc_ports ports;
	bool hairpin;
	uint64_t timeout_ms;		/* 0: mappings never expire */
	bool rfc5780;			/* the server serves OTHER-ADDRESS etc. */
	bool silent;			/* the server never answers */
	bool ignore_change;		/* answers CHANGE-REQUEST from the primary */
	bool reject_response_port;	/* 420 for RESPONSE-PORT */
	bool alg;			/* rewrites MAPPED-ADDRESS in answers */
};

struct mapping {
	union sockaddr_any inner;	/* host socket */
	union sockaddr_any key;		/* destination as far as the mapping depends on it */
	uint16_t port;			/* public */
	union sockaddr_any seen[16];	/* remotes contacted, for filtering */
	int nseen;
	uint64_t last;
};

struct world {
	struct world_cfg c;
	struct stun_server_cfg srv;
	union sockaddr_any pub;		/* the NAT's public IP */
	struct mapping maps[MAX_MAPS];
	int nmaps;
	uint16_t next_port;
	uint32_t rng;
	struct natdisc *nd;
	union sockaddr_any local[NATDISC_MAX_SOCKS];
	int nsocks;
	uint64_t now;
	int sent;
};

static union sockaddr_any A(const char *s)
{
	union sockaddr_any a;
	cr_assert_eq(addr_parse(s, &a), 0, "%s", s);
	return a;
}

static bool dep_match(enum natdisc_dep d, const union sockaddr_any *x, const union sockaddr_any *y)
{
	switch (d) {
	case NATDISC_DEP_EI: return true;
	case NATDISC_DEP_AD: return addr_ip_equal(x, y);
	default: return addr_equal(x, y);
	}
}

static bool alive(const struct world *w, const struct mapping *m)
{
	return !w->c.timeout_ms || w->now - m->last < w->c.timeout_ms;
}

/* the public port for inner -> dst, made on first use */
static struct mapping *map_out(struct world *w, const union sockaddr_any *inner, const union sockaddr_any *dst)
{
	struct mapping *m;

	for (int i = 0; i < w->nmaps; i++) {
		m = &w->maps[i];
		if (addr_equal(&m->inner, inner) && dep_match(w->c.mapping, &m->key, dst) && alive(w, m))
			goto found;
	}
	cr_assert_lt(w->nmaps, MAX_MAPS);
	m = &w->maps[w->nmaps++];
	memset(m, 0, sizeof(*m));
	m->inner = *inner;
	m->key = *dst;
	switch (w->c.ports) {
	case NATDISC_PORTS_PRESERVE:
		m->port = addr_port(inner);
		break;
	case NATDISC_PORTS_SEQUENTIAL:
		m->port = w->next_port++;
		break;
	default:
		w->rng = w->rng * 1103515245u + 12345u;
		m->port = (uint16_t)(1024 + (w->rng >> 8) % 64000);
	}
found:
	m->last = w->now;
	if (m->nseen < 16) {
		bool dup = false;
		for (int i = 0; i < m->nseen; i++)
			dup = dup || addr_equal(&m->seen[i], dst);
		if (!dup)
			m->seen[m->nseen++] = *dst;
	}
	return m;
}

/* the mapping that owns a public port and lets src in, or NULL */
static struct mapping *map_in(struct world *w, uint16_t port, const union sockaddr_any *src)
{
	for (int i = w->nmaps - 1; i >= 0; i--) {
		struct mapping *m = &w->maps[i];

		if (m->port != port || !alive(w, m))
			continue;
		for (int k = 0; k < m->nseen; k++)
			if (dep_match(w->c.filtering, &m->seen[k], src)) {
				m->last = w->now;
				return m;
			}
		return NULL;
	}
	return NULL;
}

static int sock_of(const struct world *w, const union sockaddr_any *a)
{
	for (int i = 0; i < w->nsocks; i++)
		if (addr_equal(&w->local[i], a))
			return i;
	return -1;
}

static void deliver_in(struct world *w, const union sockaddr_any *src, const union sockaddr_any *dst,
		       const uint8_t *buf, size_t len)
{
	union sockaddr_any inner = *dst;
	int s;

	if (w->c.nat) {
		struct mapping *m = map_in(w, addr_port(dst), src);

		if (!addr_ip_equal(dst, &w->pub) || !m)
			return;
		inner = m->inner;
	}
	if ((s = sock_of(w, &inner)) >= 0)
		natdisc_receive(w->nd, s, src, buf, len, w->now);
}

/* rewrite an answer's MAPPED-ADDRESS port, as a generic ALG might */
static size_t alg_rewrite(uint8_t *out, size_t len, size_t cap)
{
	struct stun_msg m;
	struct stun_builder b;
	union sockaddr_any fake;
	uint8_t copy[1024];

	memcpy(copy, out, len);
	if (stun_parse(copy, len, &m) || !m.has_mapped)
		return len;
	fake = m.mapped;
	addr_set_port(&fake, (uint16_t)(addr_port(&m.mapped) ^ 0x5555));
	stun_build_init(&b, out, cap, m.cls, m.method, m.tid);
	stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &m.xor_mapped);
	stun_build_addr(&b, STUN_ATTR_MAPPED_ADDRESS, &fake);
	if (m.has_other_address)
		stun_build_addr(&b, STUN_ATTR_OTHER_ADDRESS, &m.other_address);
	return (size_t)stun_build_finish(&b);
}

static void server(struct world *w, const union sockaddr_any *src, const union sockaddr_any *dst,
		   const uint8_t *buf, size_t len)
{
	struct stun_server_reply r;
	struct stun_msg m;
	uint8_t out[1024], req[1024];
	int ip = -1, port = -1;

	if (w->c.silent)
		return;
	for (int i = 0; i < STUN_SRV_IPS; i++)
		for (int p = 0; p < STUN_SRV_PORTS; p++)
			if (addr_equal(&w->srv.addrs[i][p], dst) && (w->c.rfc5780 || (i == 0 && p == 0))) {
				ip = i;
				port = p;
			}
	if (ip < 0)
		return;
	memcpy(req, buf, len);
	if (stun_parse(req, len, &m) == 0 && m.has_response_port && w->c.reject_response_port) {
		struct stun_builder b;
		uint16_t t = STUN_ATTR_RESPONSE_PORT;

		stun_build_init(&b, out, sizeof(out), STUN_CLASS_ERROR, STUN_METHOD_BINDING, m.tid);
		stun_build_error(&b, 420, NULL);
		stun_build_unknown_attributes(&b, &t, 1);
		deliver_in(w, dst, src, out, (size_t)stun_build_finish(&b));
		return;
	}
	if (stun_server_answer(&w->srv, ip, port, src, buf, len, out, sizeof(out), &r) != 0 ||
	    r.verdict != STUN_SRV_REPLY)
		return;
	if (w->c.ignore_change) {
		r.ip = ip;
		r.port = port;
	}
	if (w->c.alg)
		r.len = alg_rewrite(out, r.len, sizeof(out));
	deliver_in(w, &w->srv.addrs[r.ip][r.port], &r.dst, out, r.len);
}

static void send_out(struct world *w, const struct natdisc_send *s)
{
	union sockaddr_any src = w->local[s->sock];

	w->sent++;
	if (w->c.nat) {
		struct mapping *m = map_out(w, &w->local[s->sock], &s->dst);

		src = w->pub;
		addr_set_port(&src, m->port);
		if (addr_ip_equal(&s->dst, &w->pub)) {
			/* to our own public address: hairpin or drop */
			if (w->c.hairpin)
				deliver_in(w, &src, &s->dst, s->buf, s->len);
			return;
		}
	} else if (sock_of(w, &s->dst) >= 0) {
		natdisc_receive(w->nd, sock_of(w, &s->dst), &src, s->buf, s->len, w->now);
		return;
	}
	server(w, &src, &s->dst, s->buf, s->len);
}

static void world_run(struct world *w, const struct natdisc_cfg *cfg_in)
{
	struct natdisc_cfg cfg = *cfg_in;
	struct natdisc_send s;

	w->pub = A("203.0.113.1:0");
	w->next_port = 20000;
	w->rng = 7;
	w->now = 1000;
	w->srv.rfc5780 = w->c.rfc5780;
	w->srv.addrs[0][0] = A("198.51.100.1:3478");
	w->srv.addrs[0][1] = A("198.51.100.1:3479");
	w->srv.addrs[1][0] = A("198.51.100.2:3478");
	w->srv.addrs[1][1] = A("198.51.100.2:3479");
	w->srv.max_padding = 64;
	cfg.server = w->srv.addrs[0][0];
	cr_assert_eq(natdisc_new(&cfg, &w->nd), 0);
	w->nsocks = natdisc_nsocks(w->nd);
	for (int i = 0; i < w->nsocks; i++) {
		char buf[32];

		snprintf(buf, sizeof(buf), "10.0.0.2:%d", 40000 + 7 * i);
		w->local[i] = A(buf);
		natdisc_set_local(w->nd, i, &w->local[i]);
	}
	cr_assert_eq(natdisc_start(w->nd, w->now), 0);
	for (int guard = 0; guard < 100000 && !natdisc_done(w->nd); guard++) {
		uint64_t dl;

		while (natdisc_poll(w->nd, w->now, &s) == 1)
			send_out(w, &s);
		dl = natdisc_deadline(w->nd);
		if (natdisc_done(w->nd))
			break;
		cr_assert_neq(dl, UINT64_MAX, "not done, but no deadline (step %s)", natdisc_step(w->nd));
		if (dl > w->now)
			w->now = dl;
	}
	cr_assert(natdisc_done(w->nd), "discovery did not finish");
}

#define NAT(m, f, p) .nat = true, .mapping = NATDISC_DEP_##m, .filtering = NATDISC_DEP_##f, \
	.ports = NATDISC_PORTS_##p, .rfc5780 = true

struct kind_case {
	const char *what;
	struct world_cfg w;
	enum natdisc_dep mapping, filtering;
	enum natdisc_ports ports;
	const char *name;
};

Test(natdisc, mapping_filtering_ports_table)
{
	static const struct kind_case cases[] = {
		{ "no NAT", { .rfc5780 = true }, NATDISC_DEP_EI, NATDISC_DEP_EI, NATDISC_PORTS_PRESERVE, "no NAT" },
		{ "full cone", { NAT(EI, EI, PRESERVE) }, NATDISC_DEP_EI, NATDISC_DEP_EI, NATDISC_PORTS_PRESERVE, "full cone" },
		{ "restricted cone", { NAT(EI, AD, PRESERVE) }, NATDISC_DEP_EI, NATDISC_DEP_AD, NATDISC_PORTS_PRESERVE, "restricted cone" },
		{ "port-restricted cone", { NAT(EI, APD, PRESERVE) }, NATDISC_DEP_EI, NATDISC_DEP_APD, NATDISC_PORTS_PRESERVE, "port-restricted cone" },
		{ "EIM sequential", { NAT(EI, APD, SEQUENTIAL) }, NATDISC_DEP_EI, NATDISC_DEP_APD, NATDISC_PORTS_SEQUENTIAL, "port-restricted cone" },
		{ "ADM random", { NAT(AD, AD, RANDOM) }, NATDISC_DEP_AD, NATDISC_DEP_AD, NATDISC_PORTS_RANDOM, "symmetric" },
		{ "symmetric", { NAT(APD, APD, RANDOM) }, NATDISC_DEP_APD, NATDISC_DEP_APD, NATDISC_PORTS_RANDOM, "symmetric" },
		{ "symmetric sequential", { NAT(APD, EI, SEQUENTIAL) }, NATDISC_DEP_APD, NATDISC_DEP_EI, NATDISC_PORTS_SEQUENTIAL, "symmetric" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct world *w = calloc(1, sizeof(*w));
		struct natdisc_cfg cfg = { .tests = NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING | NATDISC_TEST_PORTS };
		const struct natdisc_result *r;

		w->c = cases[i].w;
		world_run(w, &cfg);
		r = natdisc_result(w->nd);
		cr_expect_eq(r->error, NATDISC_OK, "%s: error %d", cases[i].what, r->error);
		cr_expect_eq(r->nat, cases[i].w.nat, "%s: nat", cases[i].what);
		cr_expect_eq(r->mapping, cases[i].mapping, "%s: mapping %s", cases[i].what, natdisc_dep_name(r->mapping));
		cr_expect_eq(r->filtering, cases[i].filtering, "%s: filtering %s", cases[i].what,
			     natdisc_dep_name(r->filtering));
		cr_expect_eq(r->ports, cases[i].ports, "%s: ports %s", cases[i].what, natdisc_ports_name(r->ports));
		cr_expect_str_eq(natdisc_common_name(r), cases[i].name, "%s", cases[i].what);
		cr_expect(!r->alg, "%s: no ALG", cases[i].what);
		cr_expect_eq(r->tests_done, cfg.tests, "%s: tests done %#x", cases[i].what, r->tests_done);
		natdisc_free(w->nd);
		free(w);
	}
}

Test(natdisc, hairpinning)
{
	for (int on = 0; on < 2; on++) {
		struct world *w = calloc(1, sizeof(*w));
		struct natdisc_cfg cfg = { .tests = NATDISC_TEST_HAIRPIN };

		w->c = (struct world_cfg){ NAT(EI, APD, PRESERVE), .hairpin = on };
		world_run(w, &cfg);
		cr_expect_eq(natdisc_result(w->nd)->hairpin, on ? NATDISC_YES : NATDISC_NO, "hairpin %d", on);
		natdisc_free(w->nd);
		free(w);
	}
}

Test(natdisc, lifetime_binary_search)
{
	static const uint64_t timeouts[] = { 4000, 30000, 59000 };
	for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
		struct world *w = calloc(1, sizeof(*w));
		struct natdisc_cfg cfg = { .tests = NATDISC_TEST_LIFETIME, .lifetime_max_ms = 60000,
					   .lifetime_res_ms = 500 };
		const struct natdisc_result *r;

		w->c = (struct world_cfg){ NAT(EI, APD, PRESERVE), .timeout_ms = timeouts[i] };
		world_run(w, &cfg);
		r = natdisc_result(w->nd);
		cr_expect_eq(r->lifetime, NATDISC_YES);
		cr_expect_leq(r->lifetime_alive_ms, timeouts[i], "timeout %lu: alive %u", (unsigned long)timeouts[i],
			      r->lifetime_alive_ms);
		cr_expect_geq(r->lifetime_dead_ms, timeouts[i] - 1, "timeout %lu: dead %u", (unsigned long)timeouts[i],
			      r->lifetime_dead_ms);
		cr_expect_leq(r->lifetime_dead_ms - r->lifetime_alive_ms, 500);
		natdisc_free(w->nd);
		free(w);
	}

	/* starting below the bound (meshd: 20 s of 50): a short lifetime is
	 * searched below the first trial, a long one is tried at the bound */
	static const struct { uint64_t timeout; uint32_t alive, dead; int trials; } first[] = {
		{ 15000, 13750, 15000, 5 },	/* 20 dead, 10, 15 dead, 12.5, 13.75 */
		{ 30000, 29375, 31250, 6 },	/* 20, 50 dead, 35 dead, 27.5, 31.25 dead, 29.375 */
		{ 120000, 50000, 0, 2 },	/* 20, 50: the bound */
	};
	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
		struct world *w = calloc(1, sizeof(*w));
		struct natdisc_cfg cfg = { .tests = NATDISC_TEST_LIFETIME, .lifetime_max_ms = 50000,
					   .lifetime_res_ms = 2000, .lifetime_first_ms = 20000 };
		const struct natdisc_result *r;

		w->c = (struct world_cfg){ NAT(EI, APD, PRESERVE), .timeout_ms = first[i].timeout };
		world_run(w, &cfg);
		r = natdisc_result(w->nd);
		cr_expect_eq(r->lifetime, NATDISC_YES);
		cr_expect_eq(r->lifetime_alive_ms, first[i].alive, "timeout %lu: alive %u", (unsigned long)first[i].timeout,
			     r->lifetime_alive_ms);
		cr_expect_eq(r->lifetime_dead_ms, first[i].dead, "timeout %lu: dead %u", (unsigned long)first[i].timeout,
			     r->lifetime_dead_ms);
		cr_expect_eq(r->lifetime_trials, first[i].trials, "timeout %lu: trials %d",
			     (unsigned long)first[i].timeout, r->lifetime_trials);
		natdisc_free(w->nd);
		free(w);
	}

	/* a mapping that outlives the bound */
	struct world *w = calloc(1, sizeof(*w));
	struct natdisc_cfg cfg = { .tests = NATDISC_TEST_LIFETIME, .lifetime_max_ms = 10000 };

	w->c = (struct world_cfg){ NAT(EI, APD, PRESERVE) };
	world_run(w, &cfg);
	cr_expect_eq(natdisc_result(w->nd)->lifetime, NATDISC_YES);
	cr_expect_eq(natdisc_result(w->nd)->lifetime_alive_ms, 10000);
	cr_expect_eq(natdisc_result(w->nd)->lifetime_dead_ms, 0);
	cr_expect_eq(natdisc_result(w->nd)->lifetime_trials, 1);
	natdisc_free(w->nd);
	free(w);
}

Test(natdisc, alg_rewriting_mapped_address)
{
	struct world *w = calloc(1, sizeof(*w));
	struct natdisc_cfg cfg = { .tests = NATDISC_TEST_MAPPING };
	const struct natdisc_result *r;

	w->c = (struct world_cfg){ NAT(EI, APD, PRESERVE), .alg = true };
	world_run(w, &cfg);
	r = natdisc_result(w->nd);
	cr_expect_eq(r->error, NATDISC_OK);
	cr_assert(r->alg);
	cr_expect(addr_equal(&r->alg_xor_mapped, &r->mapped1));
	cr_expect(!addr_equal(&r->alg_mapped, &r->alg_xor_mapped));
	natdisc_free(w->nd);
	free(w);
}

struct fail_case {
	const char *what;
	struct world_cfg w;
	unsigned tests;
	enum natdisc_error error;		/* fatal */
	enum natdisc_error filtering_err, lifetime_err;
};

Test(natdisc, servers_that_stop_discovery)
{
	static const struct fail_case cases[] = {
		{ "silent server", { NAT(EI, APD, PRESERVE), .silent = true }, NATDISC_TEST_ALL, NATDISC_E_NO_ANSWER, 0, 0 },
		{ "no RFC 5780", { .nat = true, .mapping = NATDISC_DEP_EI, .filtering = NATDISC_DEP_EI }, NATDISC_TEST_ALL,
		  NATDISC_E_NO_RFC5780, 0, 0 },
		{ "CHANGE-REQUEST ignored", { NAT(EI, EI, PRESERVE), .ignore_change = true }, NATDISC_TEST_FILTERING,
		  NATDISC_OK, NATDISC_E_CHANGE_IGNORED, 0 },
		{ "RESPONSE-PORT rejected", { NAT(EI, APD, PRESERVE), .reject_response_port = true },
		  NATDISC_TEST_LIFETIME, NATDISC_OK, 0, NATDISC_E_NO_RESPONSE_PORT },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct world *w = calloc(1, sizeof(*w));
		struct natdisc_cfg cfg = { .tests = cases[i].tests, .lifetime_max_ms = 5000 };
		const struct natdisc_result *r;

		w->c = cases[i].w;
		world_run(w, &cfg);
		r = natdisc_result(w->nd);
		cr_expect_eq(r->error, cases[i].error, "%s: error %d (%s)", cases[i].what, r->error,
			     natdisc_strerror(r->error));
		cr_expect_eq(r->filtering_err, cases[i].filtering_err, "%s: filtering_err %d", cases[i].what,
			     r->filtering_err);
		cr_expect_eq(r->lifetime_err, cases[i].lifetime_err, "%s: lifetime_err %d", cases[i].what,
			     r->lifetime_err);
		if (cases[i].filtering_err)
			cr_expect_eq(r->filtering, NATDISC_DEP_UNKNOWN, "%s", cases[i].what);
		natdisc_free(w->nd);
		free(w);
	}
}

Test(natdisc, retransmits_then_times_out)
{
	struct world *w = calloc(1, sizeof(*w));
	struct natdisc_cfg cfg = { .tests = NATDISC_TEST_MAPPING, .rto_ms = 100, .rc = 5, .rm = 16 };

	w->c = (struct world_cfg){ NAT(EI, APD, PRESERVE), .silent = true };
	world_run(w, &cfg);
	/* RFC 8489 6.2.1: 5 transmissions at 0, 100, 300, 700, 1500 ms,
	 * then 16 RTO: gives up at 3100 ms */
	cr_expect_eq(w->sent, 5);
	cr_expect_eq(w->now - 1000, 3100);
	natdisc_free(w->nd);
	free(w);
}

Test(natdisc, parse_tests_and_names)
{
	unsigned m;
	const char *bad = NULL;

	cr_expect_eq(natdisc_parse_tests("mapping,filtering", &m, &bad), 0);
	cr_expect_eq(m, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING);
	cr_expect_eq(natdisc_parse_tests("all", &m, &bad), 0);
	cr_expect_eq(m, NATDISC_TEST_ALL);
	cr_expect_eq(natdisc_parse_tests("hairpin,lifetime,ports", &m, &bad), 0);
	cr_expect_eq(m, NATDISC_TEST_HAIRPIN | NATDISC_TEST_LIFETIME | NATDISC_TEST_PORTS);
	cr_expect_eq(natdisc_parse_tests("mapping,nope", &m, &bad), -EINVAL);
	cr_expect_str_eq(bad, "nope");
	cr_expect_eq(natdisc_parse_tests("", &m, &bad), -EINVAL);
	cr_expect_eq(natdisc_parse_tests("map", &m, &bad), -EINVAL);

	struct natdisc_result r = { .nat = true, .mapping = NATDISC_DEP_EI };
	cr_expect_null(natdisc_common_name(&r));
	r.filtering = NATDISC_DEP_AD;
	cr_expect_str_eq(natdisc_common_name(&r), "restricted cone");
	r.nat = false;
	cr_expect_str_eq(natdisc_common_name(&r), "no NAT, firewall");
}

Test(natdisc, sockets_per_test_selection)
{
	static const struct { unsigned tests; int nsocks; } cases[] = {
		{ NATDISC_TEST_MAPPING, 1 },
		{ NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, 2 },
		{ NATDISC_TEST_HAIRPIN, 4 },
		{ NATDISC_TEST_LIFETIME, 6 },
		{ NATDISC_TEST_PORTS, 6 + NATDISC_PORT_SAMPLES_DEFAULT },
		{ 0, 6 + NATDISC_PORT_SAMPLES_DEFAULT },	/* default: all but lifetime */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct natdisc_cfg cfg = { .server = A("198.51.100.1:3478"), .tests = cases[i].tests };
		struct natdisc *d;

		cr_assert_eq(natdisc_new(&cfg, &d), 0);
		cr_expect_eq(natdisc_nsocks(d), cases[i].nsocks, "tests %#x: %d sockets", cases[i].tests,
			     natdisc_nsocks(d));
		natdisc_free(d);
	}

	/* the mapping test from one socket that also sees foreign traffic */
	struct world *w = calloc(1, sizeof(*w));
	struct natdisc_cfg cfg = { .tests = NATDISC_TEST_MAPPING };
	static const uint8_t wg_keepalive[32] = { 4 };

	w->c = (struct world_cfg){ NAT(APD, APD, RANDOM) };
	world_run(w, &cfg);
	natdisc_receive(w->nd, 0, &w->srv.addrs[0][0], wg_keepalive, sizeof(wg_keepalive), w->now);
	cr_expect_eq(w->nsocks, 1);
	cr_expect_eq(natdisc_result(w->nd)->mapping, NATDISC_DEP_APD);
	natdisc_free(w->nd);
	free(w);
}

Test(natdisc, bad_config)
{
	struct natdisc *d;
	struct natdisc_cfg cfg = { 0 };

	cr_expect_eq(natdisc_new(&cfg, &d), -EINVAL);
	cr_expect_null(d);
	cfg.server = A("198.51.100.1:3478");
	cfg.port_samples = NATDISC_PORT_SAMPLES_MAX + 1;
	cr_expect_eq(natdisc_new(&cfg, &d), -EINVAL);
	cfg.port_samples = 0;
	cr_assert_eq(natdisc_new(&cfg, &d), 0);
	/* sockets without their local address */
	cr_expect_eq(natdisc_start(d, 0), -EINVAL);
	natdisc_free(d);
	natdisc_free(NULL);
}
