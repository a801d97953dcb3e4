/* natdisc: the RFC 5780 discovery as one phase enum. Each phase has an enter
 * function that starts its STUN transactions and a conclude function that
 * reads their outcome into the result and picks the next phase; advance()
 * moves on once every transaction of the phase is answered or timed out (or
 * the phase has its answer early). */
#include "natdisc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stun/stun.h"

enum phase {
	PH_IDLE,
	PH_BIND,	/* 4.2 / 4.3 test I */
	PH_MAP2,	/* 4.3 test II: alternate IP, primary port */
	PH_MAP3,	/* 4.3 test III: alternate IP and port */
	PH_FILT1,	/* 4.4 test I, fresh socket */
	PH_FILT2,	/* 4.4 test II: CHANGE-REQUEST IP and port */
	PH_FILT3,	/* 4.4 test III: CHANGE-REQUEST port */
	PH_HAIR_BIND,	/* hairpin: both sockets learn their mapping */
	PH_HAIR_CROSS,	/* each sends to the other's mapping */
	PH_PORTS,	/* RFC 4787 4.2.1 sample */
	PH_LIFE_BIND,	/* 4.6: X refreshes its mapping */
	PH_LIFE_WAIT,	/* idle for the trial's time */
	PH_LIFE_PROBE,	/* Y asks for an answer to X's mapped port (RESPONSE-PORT) */
	PH_DONE,
};

enum { MAX_PHASE_PROBES = NATDISC_PORT_SAMPLES_MAX, MAX_PROBES = 256, HAIRPIN_RC = 4 };

struct probe {
	int sock;
	union sockaddr_any dst;
	struct stun_txn txn;
	/* the answer */
	int resp_sock;
	union sockaddr_any resp_src;
	bool has_xor, has_other, has_origin;
	union sockaddr_any xor_mapped, other, origin;
	int error_code;		/* 0: success response */
	bool seen_elsewhere;	/* the request itself arrived on another of our sockets */
};

struct natdisc {
	struct natdisc_cfg cfg;
	struct natdisc_result res;
	enum phase ph;
	int nsocks;
	union sockaddr_any local[NATDISC_MAX_SOCKS];
	bool has_local[NATDISC_MAX_SOCKS];
	struct probe *probes;
	int nprobes;
	int cur[MAX_PHASE_PROBES];	/* the phase's probes */
	int ncur;
	uint64_t wait_until;		/* PH_LIFE_WAIT */
	uint32_t life_t;		/* the trial's idle time */
	union sockaddr_any life_x;	/* X's mapping in this trial */
	char step[96];
};

static const char *const test_names[] = { "mapping", "filtering", "hairpin", "ports", "lifetime" };

int natdisc_parse_tests(const char *s, unsigned *mask, const char **bad)
{
	static char word[32];

	*mask = 0;
	while (*s) {
		size_t n = strcspn(s, ",");
		bool found = false;

		for (size_t i = 0; i < sizeof(test_names) / sizeof(test_names[0]); i++)
			if (n == strlen(test_names[i]) && !strncmp(s, test_names[i], n)) {
				*mask |= 1u << i;
				found = true;
			}
		if (!found && !(n == 3 && !strncmp(s, "all", 3))) {
			snprintf(word, sizeof(word), "%.*s", (int)(n < 31 ? n : 31), s);
			if (bad)
				*bad = word;
			return -EINVAL;
		}
		if (!found)
			*mask |= NATDISC_TEST_ALL;
		s += n;
		if (*s == ',')
			s++;
	}
	return *mask ? 0 : -EINVAL;
}

const char *natdisc_dep_name(enum natdisc_dep d)
{
	return wire_dep_name((enum wire_dep)d);
}

const char *natdisc_ports_name(enum natdisc_ports p)
{
	return wire_ports_name((enum wire_ports)p);
}

const char *natdisc_strerror(enum natdisc_error e)
{
	switch (e) {
	case NATDISC_OK: return "ok";
	case NATDISC_E_NO_ANSWER: return "the server did not answer a Binding request";
	case NATDISC_E_NO_RFC5780:
		return "the server does not support RFC 5780 (no OTHER-ADDRESS in its answer)";
	case NATDISC_E_OTHER_SAME_IP:
		return "the server's OTHER-ADDRESS has its primary IP; RFC 5780 tests need two IPs";
	case NATDISC_E_SERVER_ERROR: return "the server answered a Binding request with an error";
	case NATDISC_E_CHANGE_IGNORED:
		return "the server answered CHANGE-REQUEST from an address it was not asked to use";
	case NATDISC_E_NO_RESPONSE_PORT: return "the server does not support RESPONSE-PORT";
	case NATDISC_E_LOST: return "a request was not answered (loss, or the server's other address is unreachable)";
	default: return "unknown error";
	}
}

const char *natdisc_common_name(const struct natdisc_result *r)
{
	if (r->mapping == NATDISC_DEP_UNKNOWN || r->filtering == NATDISC_DEP_UNKNOWN)
		return NULL;
	if (!r->nat)
		return r->filtering == NATDISC_DEP_EI ? "no NAT" : "no NAT, firewall";
	if (r->mapping != NATDISC_DEP_EI)
		return "symmetric";
	switch (r->filtering) {
	case NATDISC_DEP_EI: return "full cone";
	case NATDISC_DEP_AD: return "restricted cone";
	default: return "port-restricted cone";
	}
}

int natdisc_new(const struct natdisc_cfg *cfg, struct natdisc **out)
{
	struct natdisc *d;

	*out = NULL;
	if (cfg->server.sa.sa_family != AF_INET && cfg->server.sa.sa_family != AF_INET6)
		return -EINVAL;
	if (cfg->port_samples < 0 || cfg->port_samples > NATDISC_PORT_SAMPLES_MAX)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->probes = calloc(MAX_PROBES, sizeof(*d->probes));
	if (!d->probes) {
		free(d);
		return -ENOMEM;
	}
	d->cfg = *cfg;
	if (!d->cfg.tests)
		d->cfg.tests = NATDISC_TEST_ALL & ~NATDISC_TEST_LIFETIME;
	if (!d->cfg.rto_ms)
		d->cfg.rto_ms = NATDISC_RTO_DEFAULT_MS;
	if (!d->cfg.rc)
		d->cfg.rc = NATDISC_RC_DEFAULT;
	if (!d->cfg.rm)
		d->cfg.rm = NATDISC_RM_DEFAULT;
	if (!d->cfg.port_samples)
		d->cfg.port_samples = NATDISC_PORT_SAMPLES_DEFAULT;
	if (!d->cfg.lifetime_max_ms)
		d->cfg.lifetime_max_ms = NATDISC_LIFETIME_MAX_DEFAULT_MS;
	if (!d->cfg.lifetime_res_ms)
		d->cfg.lifetime_res_ms = NATDISC_LIFETIME_RES_DEFAULT_MS;
	if (d->cfg.lifetime_first_ms >= d->cfg.lifetime_max_ms)
		d->cfg.lifetime_first_ms = 0;
	/* only the sockets the selected tests use: the mapping test alone needs
	 * one, so meshd can run it from its WireGuard socket */
	if (d->cfg.tests & NATDISC_TEST_PORTS)
		d->nsocks = NATDISC_SOCK_PORTS + d->cfg.port_samples;
	else if (d->cfg.tests & NATDISC_TEST_LIFETIME)
		d->nsocks = NATDISC_SOCK_LIFE_Y + 1;
	else if (d->cfg.tests & NATDISC_TEST_HAIRPIN)
		d->nsocks = NATDISC_SOCK_HAIR_B + 1;
	else if (d->cfg.tests & NATDISC_TEST_FILTERING)
		d->nsocks = NATDISC_SOCK_FILT + 1;
	else
		d->nsocks = NATDISC_SOCK_MAP + 1;
	d->ph = PH_IDLE;
	*out = d;
	return 0;
}

void natdisc_free(struct natdisc *d)
{
	if (!d)
		return;
	free(d->probes);
	free(d);
}

int natdisc_nsocks(const struct natdisc *d)
{
	return d->nsocks;
}

void natdisc_set_local(struct natdisc *d, int sock, const union sockaddr_any *local)
{
	if (sock < 0 || sock >= d->nsocks)
		return;
	d->local[sock] = *local;
	d->has_local[sock] = true;
}

bool natdisc_done(const struct natdisc *d)
{
	return d->ph == PH_DONE;
}

const struct natdisc_result *natdisc_result(const struct natdisc *d)
{
	return &d->res;
}

const char *natdisc_step(const struct natdisc *d)
{
	return d->step;
}

/* --- probes -------------------------------------------------------------- */

/* starts a Binding request from sock to dst; its index, or -1 when the
 * probe table is full (the phase then concludes as lost) */
static int probe_start(struct natdisc *d, int sock, const union sockaddr_any *dst,
		       const struct stun_request_opts *opts, uint32_t rc, uint64_t now)
{
	struct stun_txn_cfg tc = { .rto_ms = d->cfg.rto_ms, .rc = rc ? rc : d->cfg.rc, .rm = d->cfg.rm };
	uint8_t tid[STUN_TID_LEN], req[128];
	struct probe *p;
	int n;

	if (d->nprobes >= MAX_PROBES || d->ncur >= MAX_PHASE_PROBES || stun_tid_random(tid) < 0)
		return -1;
	n = stun_build_binding_request(req, sizeof(req), tid, opts);
	if (n < 0)
		return -1;
	p = &d->probes[d->nprobes];
	memset(p, 0, sizeof(*p));
	p->sock = sock;
	p->dst = *dst;
	p->resp_sock = -1;
	stun_txn_init(&p->txn, &tc);
	if (stun_txn_start(&p->txn, req, (size_t)n, now) < 0)
		return -1;
	d->cur[d->ncur++] = d->nprobes;
	return d->nprobes++;
}

static bool answered(const struct probe *p)
{
	return p->txn.state == STUN_TXN_DONE;
}

static bool finished(const struct probe *p)
{
	return p->txn.state == STUN_TXN_DONE || p->txn.state == STUN_TXN_TIMEOUT;
}

static struct probe *cur_probe(struct natdisc *d, int i)
{
	return &d->probes[d->cur[i]];
}

/* --- phases -------------------------------------------------------------- */

static void enter(struct natdisc *d, enum phase ph, uint64_t now);

/* the first selected test after `after` (in the order of the header) */
static void next_test(struct natdisc *d, unsigned after, uint64_t now)
{
	static const struct { unsigned test; enum phase ph; } order[] = {
		{ NATDISC_TEST_MAPPING, PH_MAP2 },
		{ NATDISC_TEST_FILTERING, PH_FILT1 },
		{ NATDISC_TEST_HAIRPIN, PH_HAIR_BIND },
		{ NATDISC_TEST_PORTS, PH_PORTS },
		{ NATDISC_TEST_LIFETIME, PH_LIFE_BIND },
	};
	bool passed = after == 0;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!passed) {
			passed = order[i].test == after;
			continue;
		}
		if (!(d->cfg.tests & order[i].test))
			continue;
		if (order[i].test == NATDISC_TEST_LIFETIME) {
			if (!d->res.nat) {
				/* no mapping to time out */
				d->res.lifetime = NATDISC_NOT_APPLICABLE;
				d->res.tests_done |= NATDISC_TEST_LIFETIME;
				continue;
			}
			d->life_t = d->cfg.lifetime_first_ms ? d->cfg.lifetime_first_ms : d->cfg.lifetime_max_ms;
		}
		enter(d, order[i].ph, now);
		return;
	}
	enter(d, PH_DONE, now);
}

static void stop(struct natdisc *d, enum natdisc_error e, uint64_t now)
{
	d->res.error = e;
	enter(d, PH_DONE, now);
}

static void with_port(union sockaddr_any *out, const union sockaddr_any *ip, uint16_t port)
{
	*out = *ip;
	addr_set_port(out, port);
}

static void enter(struct natdisc *d, enum phase ph, uint64_t now)
{
	struct stun_request_opts o = { 0 };
	union sockaddr_any a;

	d->ph = ph;
	d->ncur = 0;
	switch (ph) {
	case PH_IDLE:
	case PH_DONE:
		snprintf(d->step, sizeof(d->step), "done");
		return;
	case PH_BIND:
		snprintf(d->step, sizeof(d->step), "binding test I");
		probe_start(d, NATDISC_SOCK_MAP, &d->cfg.server, NULL, 0, now);
		return;
	case PH_MAP2:
		snprintf(d->step, sizeof(d->step), "mapping test II");
		with_port(&a, &d->res.other, addr_port(&d->cfg.server));
		probe_start(d, NATDISC_SOCK_MAP, &a, NULL, 0, now);
		return;
	case PH_MAP3:
		snprintf(d->step, sizeof(d->step), "mapping test III");
		probe_start(d, NATDISC_SOCK_MAP, &d->res.other, NULL, 0, now);
		return;
	case PH_FILT1:
		snprintf(d->step, sizeof(d->step), "filtering test I");
		probe_start(d, NATDISC_SOCK_FILT, &d->cfg.server, NULL, 0, now);
		return;
	case PH_FILT2:
		snprintf(d->step, sizeof(d->step), "filtering test II (change IP and port)");
		o.change_flags = STUN_CHANGE_IP | STUN_CHANGE_PORT;
		probe_start(d, NATDISC_SOCK_FILT, &d->cfg.server, &o, 0, now);
		return;
	case PH_FILT3:
		snprintf(d->step, sizeof(d->step), "filtering test III (change port)");
		o.change_flags = STUN_CHANGE_PORT;
		probe_start(d, NATDISC_SOCK_FILT, &d->cfg.server, &o, 0, now);
		return;
	case PH_HAIR_BIND:
		snprintf(d->step, sizeof(d->step), "hairpinning: mappings");
		probe_start(d, NATDISC_SOCK_HAIR_A, &d->cfg.server, NULL, 0, now);
		probe_start(d, NATDISC_SOCK_HAIR_B, &d->cfg.server, NULL, 0, now);
		return;
	case PH_HAIR_CROSS:
		snprintf(d->step, sizeof(d->step), "hairpinning: to each other's mapping");
		probe_start(d, NATDISC_SOCK_HAIR_A, &d->res.hair_b, NULL, HAIRPIN_RC, now);
		probe_start(d, NATDISC_SOCK_HAIR_B, &d->res.hair_a, NULL, HAIRPIN_RC, now);
		return;
	case PH_PORTS:
		snprintf(d->step, sizeof(d->step), "port allocation: %d samples", d->cfg.port_samples);
		for (int i = 0; i < d->cfg.port_samples; i++)
			probe_start(d, NATDISC_SOCK_PORTS + i, &d->cfg.server, NULL, 0, now);
		return;
	case PH_LIFE_BIND:
		snprintf(d->step, sizeof(d->step), "mapping lifetime: trial %d, idle %.1f s",
			 d->res.lifetime_trials + 1, d->life_t / 1000.0);
		probe_start(d, NATDISC_SOCK_LIFE_X, &d->cfg.server, NULL, 0, now);
		return;
	case PH_LIFE_WAIT:
		d->wait_until = now + d->life_t;
		return;
	case PH_LIFE_PROBE:
		o.response_port = addr_port(&d->life_x);
		probe_start(d, NATDISC_SOCK_LIFE_Y, &d->cfg.server, &o, 0, now);
		return;
	}
}

/* RFC 4787 4.2.1: ports kept, else how close together the mapped ports lie:
 * sequential allocation hands out neighbouring ports, random ones spread
 * over the range. The span is taken around the circle of ports, since a
 * sequential counter wraps. */
static void conclude_ports(struct natdisc *d)
{
	struct natdisc_result *r = &d->res;
	uint16_t ports[NATDISC_PORT_SAMPLES_MAX];
	int n = 0;
	uint32_t maxgap = 0;

	r->nsamples = d->ncur;
	r->preserved = 0;
	for (int i = 0; i < d->ncur; i++) {
		struct probe *p = cur_probe(d, i);
		struct natdisc_port_sample *s = &r->samples[i];

		s->local = addr_port(&d->local[p->sock]);
		s->answered = answered(p) && p->has_xor;
		if (!s->answered)
			continue;
		s->mapped = addr_port(&p->xor_mapped);
		r->preserved += s->mapped == s->local;
		/* insertion sort: at most 32 */
		int j = n++;
		while (j > 0 && ports[j - 1] > s->mapped) {
			ports[j] = ports[j - 1];
			j--;
		}
		ports[j] = s->mapped;
	}
	if (n < 2) {
		r->ports = NATDISC_PORTS_UNKNOWN;
		return;
	}
	for (int i = 1; i < n; i++)
		if ((uint32_t)(ports[i] - ports[i - 1]) > maxgap)
			maxgap = ports[i] - ports[i - 1];
	if ((uint32_t)(65536 - ports[n - 1] + ports[0]) > maxgap)
		maxgap = 65536 - ports[n - 1] + ports[0];
	r->port_span = 65536 - maxgap;
	if (r->preserved == n)
		r->ports = NATDISC_PORTS_PRESERVE;
	else if (r->port_span <= (uint32_t)(4 * n))
		r->ports = NATDISC_PORTS_SEQUENTIAL;
	else
		r->ports = NATDISC_PORTS_RANDOM;
	d->res.tests_done |= NATDISC_TEST_PORTS;
}

/* 4.6: a binary search between the longest idle time survived and the
 * shortest not survived, starting at the first trial (the bound unless
 * lifetime_first_ms); a survivor below the bound is followed by the bound */
static void conclude_lifetime_trial(struct natdisc *d, bool alive, uint64_t now)
{
	struct natdisc_result *r = &d->res;

	r->lifetime_trials++;
	if (alive)
		r->lifetime_alive_ms = d->life_t;
	else
		r->lifetime_dead_ms = d->life_t;
	if ((!r->lifetime_dead_ms && r->lifetime_alive_ms >= d->cfg.lifetime_max_ms) ||
	    (r->lifetime_dead_ms && r->lifetime_dead_ms - r->lifetime_alive_ms <= d->cfg.lifetime_res_ms)) {
		r->lifetime = NATDISC_YES;
		r->tests_done |= NATDISC_TEST_LIFETIME;
		next_test(d, NATDISC_TEST_LIFETIME, now);
		return;
	}
	if (!r->lifetime_dead_ms)
		d->life_t = d->cfg.lifetime_max_ms;
	else
		d->life_t = r->lifetime_alive_ms + (r->lifetime_dead_ms - r->lifetime_alive_ms) / 2;
	enter(d, PH_LIFE_BIND, now);
}

static void record_origin(struct natdisc *d, const struct probe *p)
{
	d->res.has_origin = p->has_origin;
	if (p->has_origin)
		d->res.origin = p->origin;
}

/* the phase's outcome, once it has one; true when the phase changed */
static bool advance(struct natdisc *d, uint64_t now)
{
	struct natdisc_result *r = &d->res;
	struct probe *p = d->ncur ? cur_probe(d, 0) : NULL;
	bool all = true;
	union sockaddr_any want;

	for (int i = 0; i < d->ncur; i++)
		all = all && finished(cur_probe(d, i));

	switch (d->ph) {
	case PH_IDLE:
	case PH_DONE:
		return false;
	case PH_BIND:
		if (p && !all)
			return false;
		r->local = d->local[NATDISC_SOCK_MAP];
		if (!p || !answered(p)) {
			stop(d, NATDISC_E_NO_ANSWER, now);
		} else if (p->error_code) {
			stop(d, NATDISC_E_SERVER_ERROR, now);
		} else if (!p->has_other) {
			r->mapped1 = p->xor_mapped;
			stop(d, NATDISC_E_NO_RFC5780, now);
		} else if (addr_ip_equal(&p->other, &d->cfg.server)) {
			r->mapped1 = p->xor_mapped;
			r->other = p->other;
			stop(d, NATDISC_E_OTHER_SAME_IP, now);
		} else {
			r->mapped1 = p->xor_mapped;
			r->other = p->other;
			r->nat = !addr_equal(&r->mapped1, &r->local);
			record_origin(d, p);
			next_test(d, 0, now);
		}
		return true;
	case PH_MAP2:
		if (p && !all)
			return false;
		if (!p || !answered(p) || p->error_code || !p->has_xor) {
			r->mapping_err = NATDISC_E_LOST;
			next_test(d, NATDISC_TEST_MAPPING, now);
			return true;
		}
		r->mapped2 = p->xor_mapped;
		r->has_mapped2 = true;
		if (addr_equal(&r->mapped2, &r->mapped1)) {
			r->mapping = NATDISC_DEP_EI;
			r->tests_done |= NATDISC_TEST_MAPPING;
			next_test(d, NATDISC_TEST_MAPPING, now);
		} else {
			enter(d, PH_MAP3, now);
		}
		return true;
	case PH_MAP3:
		if (p && !all)
			return false;
		if (!p || !answered(p) || p->error_code || !p->has_xor) {
			r->mapping_err = NATDISC_E_LOST;
		} else {
			r->mapped3 = p->xor_mapped;
			r->has_mapped3 = true;
			r->mapping = addr_equal(&r->mapped3, &r->mapped2) ? NATDISC_DEP_AD : NATDISC_DEP_APD;
			r->tests_done |= NATDISC_TEST_MAPPING;
		}
		next_test(d, NATDISC_TEST_MAPPING, now);
		return true;
	case PH_FILT1:
		if (p && !all)
			return false;
		if (!p || !answered(p) || p->error_code) {
			r->filtering_err = NATDISC_E_LOST;
			next_test(d, NATDISC_TEST_FILTERING, now);
		} else {
			enter(d, PH_FILT2, now);
		}
		return true;
	case PH_FILT2:
		if (p && !all)
			return false;
		if (p && answered(p) && !p->error_code) {
			if (!addr_equal(&p->resp_src, &r->other)) {
				r->filtering_err = NATDISC_E_CHANGE_IGNORED;
			} else {
				r->filtering = NATDISC_DEP_EI;
				r->tests_done |= NATDISC_TEST_FILTERING;
			}
			next_test(d, NATDISC_TEST_FILTERING, now);
		} else {
			enter(d, PH_FILT3, now);
		}
		return true;
	case PH_FILT3:
		if (p && !all)
			return false;
		with_port(&want, &d->cfg.server, addr_port(&r->other));
		if (p && answered(p) && !p->error_code) {
			if (!addr_equal(&p->resp_src, &want)) {
				r->filtering_err = NATDISC_E_CHANGE_IGNORED;
			} else {
				r->filtering = NATDISC_DEP_AD;
				r->tests_done |= NATDISC_TEST_FILTERING;
			}
		} else {
			r->filtering = NATDISC_DEP_APD;
			r->tests_done |= NATDISC_TEST_FILTERING;
		}
		next_test(d, NATDISC_TEST_FILTERING, now);
		return true;
	case PH_HAIR_BIND:
		if (d->ncur == 2 && !all)
			return false;
		if (d->ncur != 2 || !answered(cur_probe(d, 0)) || !answered(cur_probe(d, 1)) ||
		    !cur_probe(d, 0)->has_xor || !cur_probe(d, 1)->has_xor) {
			r->hairpin = NATDISC_NOT_TESTED;
			next_test(d, NATDISC_TEST_HAIRPIN, now);
			return true;
		}
		r->hair_a = cur_probe(d, 0)->xor_mapped;
		r->hair_b = cur_probe(d, 1)->xor_mapped;
		if (!r->nat) {
			r->hairpin = NATDISC_NOT_APPLICABLE;
			r->tests_done |= NATDISC_TEST_HAIRPIN;
			next_test(d, NATDISC_TEST_HAIRPIN, now);
		} else {
			enter(d, PH_HAIR_CROSS, now);
		}
		return true;
	case PH_HAIR_CROSS: {
		bool seen = false;

		for (int i = 0; i < d->ncur; i++)
			seen = seen || cur_probe(d, i)->seen_elsewhere;
		if (!seen && !all)
			return false;
		r->hairpin = seen ? NATDISC_YES : NATDISC_NO;
		r->tests_done |= NATDISC_TEST_HAIRPIN;
		next_test(d, NATDISC_TEST_HAIRPIN, now);
		return true;
	}
	case PH_PORTS:
		if (!all)
			return false;
		conclude_ports(d);
		next_test(d, NATDISC_TEST_PORTS, now);
		return true;
	case PH_LIFE_BIND:
		if (p && !all)
			return false;
		if (!p || !answered(p) || p->error_code || !p->has_xor) {
			r->lifetime_err = NATDISC_E_LOST;
			next_test(d, NATDISC_TEST_LIFETIME, now);
			return true;
		}
		d->life_x = p->xor_mapped;
		enter(d, PH_LIFE_WAIT, now);
		return true;
	case PH_LIFE_WAIT:
		if (now < d->wait_until)
			return false;
		enter(d, PH_LIFE_PROBE, now);
		return true;
	case PH_LIFE_PROBE:
		/* X hearing the answer settles it at once; Y hearing it (or an
		 * error) means RESPONSE-PORT was not honoured */
		if (p && answered(p) && (p->error_code || p->resp_sock != NATDISC_SOCK_LIFE_X)) {
			r->lifetime_err = NATDISC_E_NO_RESPONSE_PORT;
			next_test(d, NATDISC_TEST_LIFETIME, now);
			return true;
		}
		if (p && !all)
			return false;
		if (!p) {
			r->lifetime_err = NATDISC_E_LOST;
			next_test(d, NATDISC_TEST_LIFETIME, now);
			return true;
		}
		conclude_lifetime_trial(d, answered(p), now);
		return true;
	}
	return false;
}

int natdisc_start(struct natdisc *d, uint64_t now_ms)
{
	if (d->ph != PH_IDLE)
		return -EALREADY;
	for (int i = 0; i < d->nsocks; i++)
		if (!d->has_local[i])
			return -EINVAL;
	enter(d, PH_BIND, now_ms);
	return 0;
}

int natdisc_poll(struct natdisc *d, uint64_t now_ms, struct natdisc_send *out)
{
	/* each round either sends, or moves to a new phase, or stops */
	for (int guard = 0; guard < 1000; guard++) {
		for (int i = 0; i < d->ncur; i++) {
			struct probe *p = cur_probe(d, i);
			const uint8_t *buf;
			size_t len;

			if (stun_txn_poll(&p->txn, now_ms, &buf, &len) == 1) {
				out->sock = p->sock;
				out->dst = p->dst;
				out->buf = buf;
				out->len = len;
				return 1;
			}
		}
		if (!advance(d, now_ms))
			return 0;
	}
	return 0;
}

uint64_t natdisc_deadline(const struct natdisc *d)
{
	uint64_t t = UINT64_MAX;

	if (d->ph == PH_DONE || d->ph == PH_IDLE)
		return UINT64_MAX;
	if (d->ph == PH_LIFE_WAIT)
		return d->wait_until;
	for (int i = 0; i < d->ncur; i++) {
		uint64_t x = stun_txn_deadline(&d->probes[d->cur[i]].txn);

		if (x < t)
			t = x;
	}
	return t;
}

/* the latest probe with that transaction id, or -1 */
static int probe_index(const struct natdisc *d, const uint8_t *tid)
{
	for (int i = d->nprobes - 1; i >= 0; i--)
		if (!memcmp(d->probes[i].txn.tid, tid, STUN_TID_LEN))
			return i;
	return -1;
}

bool natdisc_owns(const struct natdisc *d, const uint8_t tid[STUN_TID_LEN])
{
	return probe_index(d, tid) >= 0;
}

void natdisc_receive(struct natdisc *d, int sock, const union sockaddr_any *src,
		     const uint8_t *buf, size_t len, uint64_t now_ms)
{
	struct stun_msg m;

	if (stun_is_stun(buf, len) && stun_parse(buf, len, &m) == 0)
		natdisc_receive_msg(d, sock, src, &m, now_ms);
}

void natdisc_receive_msg(struct natdisc *d, int sock, const union sockaddr_any *src,
			 const struct stun_msg *m, uint64_t now_ms)
{
	int i = probe_index(d, m->tid);
	struct probe *p;

	if (i < 0)
		return;
	p = &d->probes[i];
	if (m->cls == STUN_CLASS_REQUEST) {
		/* our own request, delivered to another of our sockets: the NAT
		 * hairpinned it */
		if (p->sock != sock)
			p->seen_elsewhere = true;
		return;
	}
	if (stun_txn_match(&p->txn, m, now_ms) != 0)
		return;
	p->resp_sock = sock;
	p->resp_src = *src;
	p->error_code = m->cls == STUN_CLASS_ERROR ? (m->has_error ? m->error_code : 500) : 0;
	p->has_xor = m->has_xor_mapped;
	p->xor_mapped = m->xor_mapped;
	p->has_other = m->has_other_address;
	p->other = m->other_address;
	p->has_origin = m->has_response_origin;
	p->origin = m->response_origin;
	/* a generic ALG rewrote the plain address but not the XORed one */
	if (m->has_mapped && m->has_xor_mapped && !addr_equal(&m->mapped, &m->xor_mapped) && !d->res.alg) {
		d->res.alg = true;
		d->res.alg_mapped = m->mapped;
		d->res.alg_xor_mapped = m->xor_mapped;
	}
}
