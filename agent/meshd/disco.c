/* disco: reflexive endpoint discovery on the WireGuard socket (see disco.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "disco.h"
#include "log.h"

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
	stun_txn_init(&s->txn, NULL);
	d->nsrv++;
	return 0;
}

int disco_set_relays(struct disco *d, const union sockaddr_any *addrs, int n)
{
	int changed = 0;

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

/* IDLE -> PROBING: one Binding request per server */
static void round_start(struct disco *d, uint64_t now)
{
	static const struct stun_txn_cfg cfg = {
		.rto_ms = DISCO_RTO_MS, .rc = DISCO_RC, .rm = DISCO_RM,
	};
	const struct stun_request_opts opts = { .software = software, .fingerprint = true };
	int started = 0;

	if (d->state != DISCO_IDLE)
		return;
	for (int i = 0; i < d->nsrv; i++) {
		struct disco_server *s = &d->srv[i];
		uint8_t tid[STUN_TID_LEN], req[256];
		int len;

		stun_txn_init(&s->txn, &cfg);
		s->got = false;
		if (stun_tid_random(tid) < 0)
			continue;
		len = stun_build_binding_request(req, sizeof(req), tid, &opts);
		if (len < 0 || stun_txn_start(&s->txn, req, (size_t)len, now) < 0)
			continue;
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

int disco_receive(struct disco *d, const uint8_t *buf, size_t len,
		  const union sockaddr_any *from, uint64_t now)
{
	union sockaddr_any src = *from;
	struct stun_msg msg;
	int rc = STUN_E_TXN;

	addr_unmap_v4(&src);
	for (int i = 0; i < d->nsrv; i++) {
		struct disco_server *s = &d->srv[i];

		if (s->txn.state != STUN_TXN_WAITING || !addr_equal(&s->addr, &src))
			continue;
		rc = stun_txn_receive(&s->txn, buf, len, now, &msg);
		if (rc == STUN_E_TXN)
			continue;
		if (rc < 0)
			return rc;
		if (msg.cls == STUN_CLASS_SUCCESS && (msg.has_xor_mapped || msg.has_mapped)) {
			s->got_mapped = msg.has_xor_mapped ? msg.xor_mapped : msg.mapped;
			addr_unmap_v4(&s->got_mapped);
			s->got = true;
			s->rtt_ms = s->txn.rtt_ms;
			s->timeouts = 0;
		} else {
			log_warn("disco", "STUN answer without a mapping server=%s label=%s error=%d",
				 addr_format(&s->addr, (char[ADDR_STRLEN]){ 0 }, ADDR_STRLEN),
				 s->label, msg.has_error ? msg.error_code : 0);
			s->got = false;
		}
		if (disco_deadline(d) == 0)
			round_end(d, now);
		return 0;
	}
	if (rc == STUN_E_TXN) {
		/* not for a waiting transaction; still tell malformed from foreign */
		rc = stun_parse(buf, len, &msg);
		if (rc == 0)
			rc = STUN_E_TXN;
	}
	return rc;
}
