/* status: the control socket's commands (ctl.h): status, peers, ping. The
 * JSON here is what `meshctl status`/`peers` print and scripts read. */
#include <string.h>

#include "meshd.h"
#include "natinfo.h"

const char *meshd_fmt_addr(const union sockaddr_any *a, char buf[ADDR_STRLEN])
{
	if (a->sa.sa_family != AF_INET && a->sa.sa_family != AF_INET6)
		return "none";
	return addr_format(a, buf, ADDR_STRLEN);
}

static json_t *endpoints_json(const struct svc_endpoint *ep, int n)
{
	json_t *a = json_array();
	char buf[ADDR_STRLEN];

	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "source", ep[i].source, "address",
						   addr_format(&ep[i].addr, buf, sizeof(buf))));
	return a;
}

/* one family's natdisc findings */
static json_t *natd_json(const struct natd *d)
{
	const struct natdisc_result *r = &d->res;
	struct svc_nat n;
	char line[192], srv[ADDR_STRLEN];
	const char *common;

	natinfo_from_result(r, &n);
	natinfo_describe(r, line, sizeof(line));
	common = natdisc_common_name(r);
	return json_pack("{s:s?, s:s?, s:o, s:s?, s:b, s:s, s:s, s:s?, s:b, s:i}",
			 "mapping", svcjson_nat_dep_name(n.mapping), "filtering", svcjson_nat_dep_name(n.filtering),
			 "hairpinning", n.hairpinning == SVC_NAT_TRI_UNKNOWN ? json_null()
					: json_boolean(n.hairpinning == SVC_NAT_TRI_YES),
			 "type", n.mapping && n.filtering ? common : NULL,
			 "behind_nat", r->nat, "summary", line, "server", meshd_fmt_addr(&d->server, srv),
			 "error", r->error != NATDISC_OK ? natdisc_strerror(r->error) : NULL,
			 "running", d->nd != NULL, "runs", (int)d->runs);
}

/* The first family's findings (IPv4 if any, else IPv6: what the object was
 * before discovery ran per family) with "ipv4" and "ipv6" members, each
 * that family's findings or null; null when no run found anything yet */
static json_t *nat_json(const struct meshd *m)
{
	bool has[SVC_FAMILIES];
	json_t *o;
	int first;

	for (int f = 0; f < SVC_FAMILIES; f++)
		has[f] = m->natd[f].has_res;
	if ((first = natinfo_first(has)) < 0)
		return json_null();
	if (!(o = natd_json(&m->natd[first])))
		return NULL;
	for (int f = 0; f < SVC_FAMILIES; f++)
		json_object_set_new(o, svcjson_family_name((enum svc_family)f),
				    has[f] ? natd_json(&m->natd[f]) : json_null());
	return o;
}

static json_t *status_json(const struct meshd *m)
{
	char key[SVC_KEY_B64LEN], tip[ADDR_STRLEN], vpc[CIDR_STRLEN];
	json_t *o;

	svcjson_key_format(m->st.pub, key);
	o = json_pack("{s:s, s:s, s:s?, s:s?, s:i, s:b, s:b, s:o, s:{s:s, s:b, s:b}, s:s?, s:i, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "device", m->o.ifname, "public_key", key,
			 "tunnel_ip", m->registered || m->st.has_tunnel_ip ? addr_format_ip(&m->tip, tip, sizeof(tip)) : NULL,
			 "vpc_cidr", m->has_vpc ? cidr_format(&m->vpc, vpc, sizeof(vpc)) : NULL,
			 "listen_port", m->port, "symmetric_nat", m->report.symmetric_nat,
			 "relay", m->o.relay, "endpoints", endpoints_json(m->report.ep, m->report.nep),
			 "service", "url", m->o.service, "reachable", m->service_reachable,
			 "registered", m->registered,
			 "relay_in_use", m->relay_in_use ? m->relay_in_use->name : NULL,
			 "peers", (int)meshd_npeers(m), "relay_forwarded", (json_int_t)m->relay_forwarded,
			 "lost_session_handshakes", (json_int_t)m->lost_handshakes,
			 "lost_refused", (json_int_t)m->lost_refused,
			 "initiations_limited", (json_int_t)m->initlimit.limited,
			 "relay_outside_vpc", (json_int_t)m->relay_outside_vpc,
			 "stun_limited", (json_int_t)m->mux.count[STUNMUX_LIMITED]);
	if (o)
		json_object_set_new(o, "nat", nat_json(m));
	if (o)
		json_object_set_new(o, "policy", enforce_status_json(m));
	if (o)
		json_object_set_new(o, "phases", phases_json(&m->phases));
	if (o)
		json_object_set_new(o, "port_mapping", portmap_io_status(m));
	return o;
}

static json_t *peer_json(const struct meshd *m, const struct mpeer *p)
{
	struct wg_peer_state s = { 0 };
	char tip[ADDR_STRLEN], ep[ADDR_STRLEN];
	uint64_t probe_rtt, srtt_us = 0;
	json_t *o;

	if (p->wp)
		wg_peer_get_state(p->wp, &s);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I}", "name", p->name, "id", p->id,
		      "tunnel_ip", addr_format_ip(&p->tunnel_ip, tip, sizeof(tip)), "path", peerpath_name(p),
		      "state", p->use_path ? path_state_name(p->path.state) : "static",
		      "relay", p->relay, "last_handshake", (json_int_t)s.last_handshake.tv_sec,
		      "rx_bytes", (json_int_t)s.rx_bytes, "tx_bytes", (json_int_t)s.tx_bytes);
	json_object_set_new(o, "endpoint", s.endpoint.sa.sa_family == AF_INET || s.endpoint.sa.sa_family == AF_INET6
					   ? json_string(addr_format(&s.endpoint, ep, sizeof(ep)))
					   : json_null());
	if (p->relay && relays_last_answer(m, p, &probe_rtt, &srtt_us))
		json_object_set_new(o, "rtt_ms", json_real((double)probe_rtt));
	else
		json_object_set_new(o, "rtt_ms", p->ping_ms >= 0 ? json_real(p->ping_ms) : json_null());
	/* a relay's probes' smoothed round trip: what relays are chosen by */
	if (p->relay)
		json_object_set_new(o, "srtt_ms", srtt_us ? json_real((double)srtt_us / 1e3) : json_null());
	/* our latest answered initiation's round trip */
	json_object_set_new(o, "handshake_rtt_ms", s.handshake_rtt_ns ? json_real((double)s.handshake_rtt_ns / 1e6)
									: json_null());
	if (p->relay && !m->o.relay)
		json_object_set_new(o, "relay_in_use", json_boolean(m->relay_in_use == p));
	if (p->use_path)
		json_object_set_new(o, "upgrades", json_integer(p->path.upgrades));
	return o;
}

static json_t *peers_json(const struct meshd *m)
{
	json_t *a = json_array();

	for (size_t i = 0; i < meshd_npeers(m); i++)
		json_array_append_new(a, peer_json(m, meshd_peer(m, i)));
	return json_pack("{s:o}", "peers", a);
}

void status_ctl(void *arg, struct ctl_conn *c, const char *cmd, const json_t *req)
{
	struct meshd *m = arg;

	if (!strcmp(cmd, "status")) {
		ctl_reply(c, status_json(m));
	} else if (!strcmp(cmd, "peers")) {
		ctl_reply(c, peers_json(m));
	} else if (!strcmp(cmd, "ping")) {
		const char *name = json_string_value(json_object_get(req, "peer"));
		struct mpeer *p = name ? peers_by_name(m, name) : NULL;
		if (!name)
			ctl_reply_error(c, "ping needs \"peer\": a name, id or tunnel IP");
		else if (!p)
			ctl_reply_error(c, "no such peer");
		else
			ping_start(m, c, p);
		/* the echo went into the data plane, and its timeout is a deadline */
		schedule_run(m);
	} else {
		ctl_reply_error(c, "unknown command (status, peers, ping)");
	}
}
