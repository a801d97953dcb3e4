/* portmap: the port mapping core (portmap.h): PCP, NAT-PMP and the choice
 * of UPnP, on a clock the caller gives. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "portmap.h"

#define COMPONENT "meshd"

const char *portmap_proto_name(enum portmap_proto p)
{
	switch (p) {
	case PORTMAP_PCP: return "pcp";
	case PORTMAP_NATPMP: return "nat-pmp";
	case PORTMAP_UPNP: return "upnp";
	default: return "none";
	}
}

const char *portmap_state_name(enum portmap_state s)
{
	static const char *const names[] = { "idle", "probing", "mapping", "mapped", "failed" };
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

int portmap_parse_protos(const char *s)
{
	static const struct { const char *name; int bit; } t[] = {
		{ "pcp", PORTMAP_PCP }, { "nat-pmp", PORTMAP_NATPMP }, { "upnp", PORTMAP_UPNP }, { "all", PORTMAP_ALL },
	};
	int mask = 0;

	for (;;) {
		size_t n = strcspn(s, ",");
		int bit = 0;
		for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
			if (strlen(t[i].name) == n && !strncmp(s, t[i].name, n))
				bit = t[i].bit;
		if (!bit)
			return -EINVAL;	/* also an empty item */
		mask |= bit;
		if (!s[n])
			return mask;
		s += n + 1;
	}
}

static void queue(struct portmap *pm, const uint8_t *buf, int len)
{
	if (len <= 0 || pm->nout >= PORTMAP_OUT_MAX || (size_t)len > sizeof(pm->out[0].buf))
		return;
	memcpy(pm->out[pm->nout].buf, buf, (size_t)len);
	pm->out[pm->nout++].len = (size_t)len;
}

static void queue_pcp(struct portmap *pm, const struct pcp_request *q)
{
	uint8_t b[64];
	queue(pm, b, pcp_build(q, b, sizeof(b)));
}

static void queue_pmp(struct portmap *pm, const struct natpmp_request *q)
{
	uint8_t b[64];
	queue(pm, b, natpmp_build(q, b, sizeof(b)));
}

void portmap_init(struct portmap *pm, unsigned allowed, uint16_t internal_port, uint16_t want_port,
		  const uint8_t nonce[PCP_NONCE_LEN])
{
	memset(pm, 0, sizeof(*pm));
	pm->allowed = allowed & PORTMAP_ALL;
	pm->internal_port = internal_port;
	pm->want_port = want_port;
	memcpy(pm->pcp_map.nonce, nonce, PCP_NONCE_LEN);
}

/* the MAP asks for last time's external port (RFC 6887 11.1 "suggested") */
static void fill_requests(struct portmap *pm, uint32_t lifetime)
{
	pm->pcp_map.opcode = PCP_OP_MAP;
	pm->pcp_map.lifetime = lifetime;
	pm->pcp_map.protocol = IPPROTO_UDP;
	pm->pcp_map.internal_port = pm->internal_port;
	memset(&pm->pcp_map.suggested, 0, sizeof(pm->pcp_map.suggested));
	if (pm->external.sa.sa_family != AF_UNSPEC) {
		pm->pcp_map.suggested = pm->external;
	} else if (pm->want_port) {
		/* any address (zeros), this port */
		pm->pcp_map.suggested.in.sin_family = AF_INET;
		addr_set_port(&pm->pcp_map.suggested, pm->want_port);
	}
	pm->pmp_map = (struct natpmp_request){ .opcode = NATPMP_OP_MAP_UDP, .internal_port = pm->internal_port,
					       .suggested_port = pm->want_port, .lifetime = lifetime };
}

void portmap_start(struct portmap *pm, const union sockaddr_any *gw, const union sockaddr_any *client,
		   uint64_t now)
{
	addr_format_ip(gw, pm->gw_name, sizeof(pm->gw_name));
	pm->state = PORTMAP_PROBING;
	pm->proto = 0;
	pm->pcp_alive = pm->pmp_alive = pm->upnp_igd = false;
	pm->pcp_dead = !(pm->allowed & PORTMAP_PCP);
	pm->pmp_dead = !(pm->allowed & PORTMAP_NATPMP);
	pm->upnp_dead = !(pm->allowed & PORTMAP_UPNP);
	pm->has_epoch = false;
	memset(&pm->external, 0, sizeof(pm->external));
	pm->lifetime = 0;
	pm->pcp_announce = (struct pcp_request){ .opcode = PCP_OP_ANNOUNCE, .client = *client };
	pm->pcp_map.client = *client;
	pm->pmp_addr = (struct natpmp_request){ .opcode = NATPMP_OP_ADDRESS };
	fill_requests(pm, PORTMAP_LIFETIME_S);
	pm->started = now;
	pm->probe_end = now + PORTMAP_PROBE_MS;
	pm->probe_over = false;
	pm->next_tx = now;
	pm->nout = 0;
	if (!pm->upnp_dead && !pm->upnp_busy)
		pm->upnp_job = PORTMAP_UPNP_DISCOVER;
}

static void send_map(struct portmap *pm, uint64_t now)
{
	if (pm->proto == PORTMAP_PCP)
		queue_pcp(pm, &pm->pcp_map);
	else if (pm->proto == PORTMAP_NATPMP)
		queue_pmp(pm, &pm->pmp_map);
	else if (pm->proto == PORTMAP_UPNP && !pm->upnp_busy)
		pm->upnp_job = PORTMAP_UPNP_MAP;
	pm->tries++;
	pm->next_tx = now + PORTMAP_MAP_RETX_MS;
}

static void begin_mapping(struct portmap *pm, enum portmap_proto p, uint64_t now)
{
	pm->proto = p;
	pm->state = PORTMAP_MAPPING;
	pm->tries = 0;
	fill_requests(pm, PORTMAP_LIFETIME_S);
	log_info(COMPONENT, "port mapping: gateway=%s speaks %s, mapping udp port=%u", pm->gw_name,
		 portmap_proto_name(p), pm->internal_port);
	send_map(pm, now);
}

/* PCP first, then NAT-PMP, then UPnP; a protocol still unanswered is
 * waited for until the probe ends */
static void choose(struct portmap *pm, uint64_t now)
{
	bool probing = now < pm->probe_end;

	if (pm->state != PORTMAP_PROBING)
		return;
	if (pm->pcp_alive && !pm->pcp_dead)
		return begin_mapping(pm, PORTMAP_PCP, now);
	if (!pm->pcp_dead && probing)
		return;
	if (pm->pmp_alive && !pm->pmp_dead)
		return begin_mapping(pm, PORTMAP_NATPMP, now);
	if (!pm->pmp_dead && probing)
		return;
	if (pm->upnp_igd && !pm->upnp_dead)
		return begin_mapping(pm, PORTMAP_UPNP, now);
	if (!pm->upnp_dead && (pm->upnp_busy || pm->upnp_job != PORTMAP_UPNP_NONE))
		return;
	uint64_t wait = PORTMAP_RETRY_MIN_MS;

	for (uint32_t i = 0; i < pm->failures && wait < PORTMAP_RETRY_MS; i++)
		wait *= 2;
	if (wait > PORTMAP_RETRY_MS)
		wait = PORTMAP_RETRY_MS;
	pm->failures++;
	pm->state = PORTMAP_FAILED;
	pm->retry_at = now + wait;
	log_warn(COMPONENT, "port mapping: gateway=%s offers no usable protocol (tried%s%s%s); again in %llu s",
		 pm->gw_name, pm->allowed & PORTMAP_PCP ? " pcp" : "", pm->allowed & PORTMAP_NATPMP ? " nat-pmp" : "",
		 pm->allowed & PORTMAP_UPNP ? " upnp" : "", (unsigned long long)(wait / 1000));
}

/* the chosen protocol failed: back to probing what is left */
static void give_up_proto(struct portmap *pm, uint64_t now, const char *why)
{
	log_warn(COMPONENT, "port mapping: gateway=%s %s: %s", pm->gw_name, portmap_proto_name(pm->proto), why);
	if (pm->proto == PORTMAP_PCP)
		pm->pcp_dead = true;
	else if (pm->proto == PORTMAP_NATPMP)
		pm->pmp_dead = true;
	else
		pm->upnp_dead = true;
	pm->proto = 0;
	pm->state = PORTMAP_PROBING;
	if (now >= pm->probe_end) {
		/* the probe is over: what stayed silent is out */
		pm->probe_over = true;
		pm->pcp_dead |= !pm->pcp_alive;
		pm->pmp_dead |= !pm->pmp_alive;
	}
	memset(&pm->external, 0, sizeof(pm->external));
	choose(pm, now);
}

static void mapped(struct portmap *pm, const union sockaddr_any *ext, uint32_t lifetime, uint64_t now)
{
	char a[ADDR_STRLEN];
	uint32_t life = lifetime < PORTMAP_MIN_LIFETIME_S ? PORTMAP_MIN_LIFETIME_S : lifetime;

	if (pm->state == PORTMAP_MAPPED)
		pm->renewals++;
	else
		pm->maps++;
	if (!pm->first_ms)
		pm->first_ms = (uint32_t)(now - pm->started) + 1;
	pm->state = PORTMAP_MAPPED;
	pm->failures = 0;
	pm->renewing = false;
	pm->external = *ext;
	pm->want_port = addr_port(ext);
	pm->lifetime = lifetime;
	pm->mapped_at = now;
	pm->renew_at = now + (uint64_t)life * 1000 / 2;
	pm->check_at = now + PORTMAP_CHECK_MS;
	log_info(COMPONENT, "port mapping: gateway=%s protocol=%s internal=%u external=%s lifetime=%u ms=%u",
		 pm->gw_name, portmap_proto_name(pm->proto), pm->internal_port, addr_format(ext, a, sizeof(a)),
		 lifetime, (unsigned)(now - pm->started));
}

/* RFC 6887 8.5 (and RFC 6886 3.6): the server's clock must advance about
 * as ours does; if it went back, or lags by more than 1/16 plus 2 s, the
 * gateway lost its state. true: it did, map again. */
static bool epoch_lost(struct portmap *pm, uint32_t epoch, uint64_t now)
{
	bool lost = false;

	if (pm->has_epoch) {
		int64_t client_delta = (int64_t)(now - pm->epoch_at) / 1000;
		int64_t server_delta = (int64_t)epoch - (int64_t)pm->epoch;

		lost = (int64_t)epoch + 1 < (int64_t)pm->epoch ||
		       client_delta + 2 < server_delta - server_delta / 16 ||
		       server_delta + 2 < client_delta - client_delta / 16;
	}
	if (lost)
		log_warn(COMPONENT, "port mapping: gateway=%s epoch went from %u to %u in %llu s: it lost its "
			 "mappings (rebooted?), mapping again", pm->gw_name, pm->epoch, epoch,
			 (unsigned long long)((now - pm->epoch_at) / 1000));
	pm->has_epoch = true;
	pm->epoch = epoch;
	pm->epoch_at = now;
	return lost;
}

static void remap(struct portmap *pm, uint64_t now)
{
	pm->remaps++;
	pm->state = PORTMAP_MAPPING;
	pm->tries = 0;
	pm->has_epoch = false;
	fill_requests(pm, PORTMAP_LIFETIME_S);
	send_map(pm, now);
}

static int pcp_in(struct portmap *pm, const uint8_t *buf, size_t len, uint64_t now)
{
	bool announce = len >= 2 && (buf[1] & 0x7f) == PCP_OP_ANNOUNCE;
	struct pcp_response r;
	int rc = pcp_parse(buf, len, announce ? &pm->pcp_announce : &pm->pcp_map, &r);

	if (rc == PCP_E_NATPMP || (rc == 0 && r.result == PCP_UNSUPP_VERSION)) {
		/* RFC 6887 9: a NAT-PMP server, or one without our version */
		pm->pcp_dead = true;
		choose(pm, now);
		return 0;
	}
	if (rc < 0)
		return rc;
	if (r.result == PCP_SUCCESS && epoch_lost(pm, r.epoch, now) && pm->proto == PORTMAP_PCP &&
	    pm->state == PORTMAP_MAPPED)
		remap(pm, now);
	if (announce) {
		pm->pcp_alive = true;
		choose(pm, now);
		return 0;
	}
	if (pm->proto != PORTMAP_PCP || (pm->state != PORTMAP_MAPPING && pm->state != PORTMAP_MAPPED))
		return 0;
	if (r.result != PCP_SUCCESS) {
		char why[64];
		snprintf(why, sizeof(why), "MAP refused: %s", pcp_result_name(r.result) ? pcp_result_name(r.result)
											 : "unknown result");
		give_up_proto(pm, now, why);
		return 0;
	}
	if (!r.lifetime) {
		give_up_proto(pm, now, "MAP granted a lifetime of 0");
		return 0;
	}
	mapped(pm, &r.external, r.lifetime, now);
	return 0;
}

static int pmp_in(struct portmap *pm, const uint8_t *buf, size_t len, uint64_t now)
{
	bool addr = len >= 2 && buf[1] == NATPMP_RESPONSE;
	struct natpmp_response r;
	int rc = natpmp_parse(buf, len, addr ? &pm->pmp_addr : &pm->pmp_map, &r);
	union sockaddr_any ext;

	if (rc < 0)
		return rc;
	if (r.result == NATPMP_SUCCESS && epoch_lost(pm, r.epoch, now) && pm->proto == PORTMAP_NATPMP &&
	    pm->state == PORTMAP_MAPPED)
		remap(pm, now);
	if (addr) {
		if (r.result == NATPMP_UNSUPP_VERSION) {
			/* RFC 6887 9: a NAT-PMP server's answer to our PCP request */
			pm->pcp_dead = true;
		} else if (r.result != NATPMP_SUCCESS) {
			pm->pmp_dead = true;
		} else {
			if (pm->proto == PORTMAP_NATPMP && pm->state == PORTMAP_MAPPED &&
			    !addr_ip_equal(&r.external, &pm->pmp_ext))
				remap(pm, now);	/* 3.2: the external address changed */
			pm->pmp_alive = true;
			pm->pmp_ext = r.external;
		}
		choose(pm, now);
		return 0;
	}
	if (pm->proto != PORTMAP_NATPMP || (pm->state != PORTMAP_MAPPING && pm->state != PORTMAP_MAPPED))
		return 0;
	if (r.result != NATPMP_SUCCESS) {
		char why[64];
		snprintf(why, sizeof(why), "map refused: %s", natpmp_result_name(r.result) ? natpmp_result_name(r.result)
											   : "unknown result");
		give_up_proto(pm, now, why);
		return 0;
	}
	if (!r.lifetime || !r.external_port) {
		give_up_proto(pm, now, "map granted a lifetime or port of 0");
		return 0;
	}
	ext = pm->pmp_ext;
	addr_set_port(&ext, r.external_port);
	mapped(pm, &ext, r.lifetime, now);
	return 0;
}

int portmap_receive(struct portmap *pm, const uint8_t *buf, size_t len, uint64_t now)
{
	int rc;

	if (pm->state == PORTMAP_IDLE)
		return 0;
	/* the version byte tells the two apart (RFC 6887 9) */
	rc = len && buf[0] == NATPMP_VERSION ? (pm->allowed & PORTMAP_NATPMP ? pmp_in(pm, buf, len, now) : 0)
					     : pcp_in(pm, buf, len, now);
	if (rc < 0)
		log_warn(COMPONENT, "port mapping: dropped a datagram from gateway=%s len=%zu reason=\"%s\"",
			 pm->gw_name, len, len && buf[0] == NATPMP_VERSION ? natpmp_strerror(rc) : pcp_strerror(rc));
	return rc;
}

void portmap_upnp_discovered(struct portmap *pm, bool igd, uint64_t now)
{
	pm->upnp_igd = igd;
	if (!igd)
		pm->upnp_dead = true;
	choose(pm, now);
}

void portmap_upnp_mapped(struct portmap *pm, bool ok, const union sockaddr_any *external, uint32_t lifetime,
			 uint64_t now)
{
	if (pm->proto != PORTMAP_UPNP)
		return;
	if (!ok) {
		give_up_proto(pm, now, "AddPortMapping failed");
		return;
	}
	mapped(pm, external, lifetime, now);
}

void portmap_upnp_checked(struct portmap *pm, bool present, uint64_t now)
{
	union sockaddr_any gw, client = pm->pcp_announce.client;

	if (present || pm->proto != PORTMAP_UPNP || pm->state != PORTMAP_MAPPED)
		return;
	log_warn(COMPONENT, "port mapping: gateway=%s no longer has the upnp mapping (rebooted?), probing again",
		 pm->gw_name);
	pm->remaps++;
	addr_parse_ip(pm->gw_name, 0, &gw);
	portmap_start(pm, &gw, &client, now);
}

static void probe_timers(struct portmap *pm, uint64_t now)
{
	if (now >= pm->probe_end) {
		pm->probe_over = true;
		/* silence is a no */
		pm->pcp_dead |= !pm->pcp_alive;
		pm->pmp_dead |= !pm->pmp_alive;
		choose(pm, now);
		return;
	}
	if (now < pm->next_tx)
		return;
	if (!pm->pcp_dead && !pm->pcp_alive)
		queue_pcp(pm, &pm->pcp_announce);
	if (!pm->pmp_dead && !pm->pmp_alive)
		queue_pmp(pm, &pm->pmp_addr);
	pm->next_tx = now + PORTMAP_PROBE_RETX_MS;
}

static void mapped_timers(struct portmap *pm, uint64_t now)
{
	if (pm->renewing && now >= pm->next_tx) {
		if (pm->tries >= PORTMAP_MAP_TRIES)
			return give_up_proto(pm, now, "no answer to the renewal");
		send_map(pm, now);
	}
	if (!pm->renewing && now >= pm->renew_at) {
		pm->renewing = true;
		pm->tries = 0;
		fill_requests(pm, PORTMAP_LIFETIME_S);
		send_map(pm, now);
	}
	if (now >= pm->check_at) {
		pm->check_at = now + PORTMAP_CHECK_MS;
		if (pm->proto == PORTMAP_PCP)
			queue_pcp(pm, &pm->pcp_announce);
		else if (pm->proto == PORTMAP_NATPMP)
			queue_pmp(pm, &pm->pmp_addr);
		else if (!pm->upnp_busy && pm->upnp_job == PORTMAP_UPNP_NONE)
			pm->upnp_job = PORTMAP_UPNP_CHECK;
	}
}

static void timers(struct portmap *pm, uint64_t now)
{
	switch (pm->state) {
	case PORTMAP_PROBING:
		probe_timers(pm, now);
		break;
	case PORTMAP_MAPPING:
		if (now < pm->next_tx)
			break;
		if (pm->tries >= PORTMAP_MAP_TRIES && pm->proto != PORTMAP_UPNP)
			give_up_proto(pm, now, "no answer to MAP");
		else if (pm->proto != PORTMAP_UPNP)
			send_map(pm, now);
		break;
	case PORTMAP_MAPPED:
		mapped_timers(pm, now);
		break;
	case PORTMAP_FAILED:
		if (now >= pm->retry_at) {
			union sockaddr_any gw, client = pm->pcp_announce.client;
			addr_parse_ip(pm->gw_name, 0, &gw);
			portmap_start(pm, &gw, &client, now);
		}
		break;
	case PORTMAP_IDLE:
		break;
	}
}

int portmap_poll(struct portmap *pm, uint64_t now, struct portmap_dgram *out)
{
	if (!pm->nout)
		timers(pm, now);
	if (!pm->nout)
		return 0;
	*out = pm->out[0];
	memmove(&pm->out[0], &pm->out[1], (size_t)(pm->nout - 1) * sizeof(pm->out[0]));
	pm->nout--;
	return 1;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t portmap_deadline(const struct portmap *pm)
{
	switch (pm->state) {
	case PORTMAP_PROBING:
		/* past the probe's end only the UPnP worker is awaited */
		return pm->probe_over ? UINT64_MAX : min64(pm->next_tx, pm->probe_end);
	case PORTMAP_MAPPING:
		return pm->proto == PORTMAP_UPNP ? UINT64_MAX : pm->next_tx;
	case PORTMAP_MAPPED:
		return min64(pm->renewing ? pm->next_tx : pm->renew_at, pm->check_at);
	case PORTMAP_FAILED:
		return pm->retry_at;
	default:
		return UINT64_MAX;
	}
}

size_t portmap_release(struct portmap *pm, uint8_t *buf, size_t size)
{
	int n;

	if (pm->state != PORTMAP_MAPPED && pm->state != PORTMAP_MAPPING)
		return 0;
	fill_requests(pm, 0);
	if (pm->proto == PORTMAP_PCP) {
		/* RFC 6887 15: lifetime 0 deletes; the suggested fields as when mapped */
		n = pcp_build(&pm->pcp_map, buf, size);
	} else if (pm->proto == PORTMAP_NATPMP) {
		pm->pmp_map.suggested_port = 0;	/* RFC 6886 3.4 */
		n = natpmp_build(&pm->pmp_map, buf, size);
	} else {
		return 0;
	}
	return n > 0 ? (size_t)n : 0;
}
