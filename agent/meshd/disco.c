/* disco: reflexive endpoint discovery on the WireGuard socket (see disco.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "disco.h"
#include "log.h"
#include "relay.h"

static const char software[] = "natmesh meshd";

void disco_init(struct disco *d, uint32_t interval_ms, uint64_t now)
{
	memset(d, 0, sizeof(*d));
	d->interval_ms = interval_ms ? interval_ms : DISCO_INTERVAL_MS;
	d->next_round = now;
	d->state = DISCO_IDLE;
}

static int find_server(const struct disco *d, const union sockaddr_any *a)
{
	for (int i = 0; i < d->nsrv; i++)
		if (addr_equal(&d->srv[i].addr, a))
			return i;
	return -1;
}

int disco_add_server(struct disco *d, const union sockaddr_any *addr, const char *label, bool relay)
{
	struct disco_server *s;

	if (addr->sa.sa_family != AF_INET && addr->sa.sa_family != AF_INET6)
		return -EINVAL;
	if (find_server(d, addr) >= 0)
		return -EEXIST;
	if (d->nsrv >= DISCO_MAX_SERVERS)
		return -ENOSPC;
	s = &d->srv[d->nsrv];
	memset(s, 0, sizeof(*s));
	s->addr = *addr;
	snprintf(s->label, sizeof(s->label), "%s", label ? label : "");
	s->relay = relay;
	s->probed = relay;
	stun_txn_init(&s->txn, NULL);
	stun_txn_init(&s->probe, NULL);
	d->nsrv++;
	return 0;
}

int disco_set_relays(struct disco *d, const union sockaddr_any *addrs, int n)
{
	int changed = 0, k;

	/* a --stun server at a relay's address is probed as that relay */
	for (int i = 0; i < d->nsrv; i++)
		d->srv[i].probed = d->srv[i].relay;
	for (int j = 0; j < n; j++)
		if ((k = find_server(d, &addrs[j])) >= 0)
			d->srv[k].probed = true;
	/* drop relays no longer listed */
	for (int i = 0; i < d->nsrv;) {
		bool keep = !d->srv[i].relay;
		for (int j = 0; j < n && !keep; j++)
			keep = addr_equal(&d->srv[i].addr, &addrs[j]);
		if (keep) {
			i++;
			continue;
		}
		memmove(&d->srv[i], &d->srv[i + 1], (size_t)(d->nsrv - i - 1) * sizeof(d->srv[0]));
		d->nsrv--;
		changed++;
	}
	for (int j = 0; j < n; j++)
		if (disco_add_server(d, &addrs[j], "relay", true) == 0)
			changed++;
	return changed;
}

void disco_kick(struct disco *d, uint64_t now)
{
	if (d->state == DISCO_PROBING)
		d->kicked = true;
	else
		d->next_round = now;
}

/* a new Binding request with its own transaction id into t */
static int txn_begin(struct stun_txn *t, const struct stun_txn_cfg *cfg, uint64_t now)
{
	const struct stun_request_opts opts = { .software = software, .fingerprint = true };
	uint8_t tid[STUN_TID_LEN], req[256];
	int len, rc;

	stun_txn_init(t, cfg);
	if ((rc = stun_tid_random(tid)) < 0)
		return rc;
	len = stun_build_binding_request(req, sizeof(req), tid, &opts);
	if (len < 0)
		return len;
	return stun_txn_start(t, req, (size_t)len, now);
}

/* IDLE -> PROBING: one Binding request per server */
static void round_start(struct disco *d, uint64_t now)
{
	static const struct stun_txn_cfg cfg = {
		.rto_ms = DISCO_RTO_MS, .rc = DISCO_RC, .rm = DISCO_RM,
	};
	int started = 0;

	if (d->state != DISCO_IDLE)
		return;
	for (int i = 0; i < d->nsrv; i++) {
		d->srv[i].got = false;
		if (txn_begin(&d->srv[i].txn, &cfg, now) == 0)
			started++;
	}
	d->kicked = false;
	d->rounds++;
	if (!started) {
		/* nothing to ask: stay idle until the next interval */
		d->next_round = now + d->interval_ms;
		return;
	}
	d->state = DISCO_PROBING;
}

static bool mappings_equal(const struct disco_result *a, const union sockaddr_any *m, int n)
{
	if (a->nmapped != n)
		return false;
	for (int i = 0; i < n; i++)
		if (!addr_equal(&a->mapped[i], &m[i]))
			return false;
	return true;
}

/* PROBING -> IDLE: every transaction is over; compare the mappings */
static void round_end(struct disco *d, uint64_t now)
{
	union sockaddr_any m[DISCO_MAX_SERVERS];
	int nm = 0, answered = 0;
	bool symmetric;

	if (d->state != DISCO_PROBING)
		return;
	for (int i = 0; i < d->nsrv; i++) {
		struct disco_server *s = &d->srv[i];
		bool dup = false;

		if (s->txn.state == STUN_TXN_TIMEOUT || !s->got) {
			if (s->txn.state == STUN_TXN_TIMEOUT) {
				s->timeouts++;
				log_warn("disco", "no answer from STUN server server=%s label=%s",
					 addr_format(&s->addr, (char[ADDR_STRLEN]){ 0 }, ADDR_STRLEN),
					 s->label);
			}
			continue;
		}
		answered++;
		for (int j = 0; j < nm && !dup; j++)
			dup = addr_equal(&m[j], &s->got_mapped);
		if (!dup)
			m[nm++] = s->got_mapped;
	}
	d->res.nanswered = answered;
	/* a round where nobody answered keeps what the last one found */
	if (answered) {
		for (int i = 0; i < d->nsrv; i++) {
			d->srv[i].answered = d->srv[i].got;
			d->srv[i].mapped = d->srv[i].got_mapped;
		}
		/* a dual-stack agent's IPv4 and IPv6 mappings differ by family,
		 * not by destination: only two of one family are a symmetric NAT */
		symmetric = false;
		for (int i = 0; i < nm && !symmetric; i++)
			for (int j = i + 1; j < nm && !symmetric; j++)
				symmetric = m[i].sa.sa_family == m[j].sa.sa_family;
		if (symmetric != d->res.symmetric_nat || !mappings_equal(&d->res, m, nm)) {
			d->res.symmetric_nat = symmetric;
			memcpy(d->res.mapped, m, (size_t)nm * sizeof(m[0]));
			d->res.nmapped = nm;
			d->res.generation++;
		}
	}
	d->next_round = d->kicked ? now : now + d->interval_ms;
	d->kicked = false;
	d->state = DISCO_IDLE;
}

int disco_poll(struct disco *d, uint64_t now, struct disco_send *out, int max)
{
	int n = 0;
	bool busy = false;

	if (d->state == DISCO_IDLE && now >= d->next_round)
		round_start(d, now);
	if (d->state != DISCO_PROBING)
		return 0;
	for (int i = 0; i < d->nsrv; i++) {
		struct disco_server *s = &d->srv[i];
		const uint8_t *buf;
		size_t len;

		if (s->txn.state == STUN_TXN_WAITING && n < max &&
		    stun_txn_poll(&s->txn, now, &buf, &len) == 1) {
			out[n].to = s->addr;
			out[n].buf = buf;
			out[n].len = len;
			n++;
		}
		if (s->txn.state == STUN_TXN_WAITING)
			busy = true;
	}
	if (!busy)
		round_end(d, now);
	return n;
}

uint64_t disco_deadline(const struct disco *d)
{
	uint64_t dl = UINT64_MAX;

	if (d->state == DISCO_IDLE)
		return d->next_round;
	for (int i = 0; i < d->nsrv; i++) {
		uint64_t t = stun_txn_deadline(&d->srv[i].txn);
		if (t < dl)
			dl = t;
	}
	/* no transaction waits: the round ends at the next poll, now */
	return dl == UINT64_MAX ? 0 : dl;
}

int disco_poll_relays(struct disco *d, uint64_t now, struct disco_send *out, int max)
{
	/* one transmission; the next probe replaces it */
	static const struct stun_txn_cfg cfg = { .rto_ms = RELAY_PROBE_MS, .rc = 1, .rm = 1 };
	int n = 0;

	for (int i = 0; i < d->nsrv && n < max; i++) {
		struct disco_server *s = &d->srv[i];
		const uint8_t *buf;
		size_t len;

		if (!s->probed || now < s->next_probe)
			continue;
		s->next_probe = now + RELAY_PROBE_MS;
		if (txn_begin(&s->probe, &cfg, now) < 0 || stun_txn_poll(&s->probe, now, &buf, &len) != 1)
			continue;
		out[n].to = s->addr;
		out[n].buf = buf;
		out[n].len = len;
		n++;
	}
	return n;
}

uint64_t disco_relays_deadline(const struct disco *d)
{
	uint64_t dl = UINT64_MAX;

	for (int i = 0; i < d->nsrv; i++)
		if (d->srv[i].probed && d->srv[i].next_probe < dl)
			dl = d->srv[i].next_probe;
	return dl;
}

const struct disco_server *disco_server_find(const struct disco *d, const union sockaddr_any *addr)
{
	int i = find_server(d, addr);

	return i >= 0 ? &d->srv[i] : NULL;
}

static bool txn_waits_for(const struct stun_txn *t, const uint8_t *tid)
{
	return t->state == STUN_TXN_WAITING && !memcmp(t->tid, tid, STUN_TID_LEN);
}

bool disco_owns(const struct disco *d, const uint8_t tid[STUN_TID_LEN])
{
	for (int i = 0; i < d->nsrv; i++)
		if (txn_waits_for(&d->srv[i].txn, tid) || txn_waits_for(&d->srv[i].probe, tid))
			return true;
	return false;
}

/* a round's answer from s */
static void round_answer(struct disco *d, struct disco_server *s, const struct stun_msg *msg, uint64_t now)
{
	if (msg->cls == STUN_CLASS_SUCCESS && (msg->has_xor_mapped || msg->has_mapped)) {
		s->got_mapped = msg->has_xor_mapped ? msg->xor_mapped : msg->mapped;
		addr_unmap_v4(&s->got_mapped);
		s->got = true;
		s->rtt_ms = s->txn.rtt_ms;
		s->timeouts = 0;
	} else {
		log_warn("disco", "STUN answer without a mapping server=%s label=%s error=%d",
			 addr_format(&s->addr, (char[ADDR_STRLEN]){ 0 }, ADDR_STRLEN),
			 s->label, msg->has_error ? msg->error_code : 0);
		s->got = false;
	}
	if (disco_deadline(d) == 0)
		round_end(d, now);
}

int disco_receive_msg(struct disco *d, const struct stun_msg *msg,
		      const union sockaddr_any *from, uint64_t now)
{
	union sockaddr_any src = *from;

	addr_unmap_v4(&src);
	for (int i = 0; i < d->nsrv; i++) {
		struct disco_server *s = &d->srv[i];

		if (!addr_equal(&s->addr, &src))
			continue;
		if (stun_txn_match(&s->probe, msg, now) == 0) {
			s->last_answer = now;
			s->probe_rtt_ms = s->probe.rtt_ms;
			/* a ms count stands for the middle of its ms */
			s->probe_srtt_us = relay_srtt(s->probe_srtt_us, s->probe.rtt_ms * 1000 + 500);
			return 0;
		}
		if (stun_txn_match(&s->txn, msg, now) != 0)
			continue;
		if (s->probed)
			s->last_answer = now;
		round_answer(d, s, msg, now);
		return 0;
	}
	return STUN_E_TXN;
}

int disco_receive(struct disco *d, const uint8_t *buf, size_t len,
		  const union sockaddr_any *from, uint64_t now)
{
	struct stun_msg msg;
	int rc = stun_parse(buf, len, &msg);

	return rc < 0 ? rc : disco_receive_msg(d, &msg, from, now);
}
