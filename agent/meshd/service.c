/* service: what meshd does with the service client's events (svc.h): the
 * registration gives the tunnel address and the VPC, which configure the
 * interface and are saved for the next start; peer lists go to peers.c. */
#include <sodium.h>
#include <string.h>

#include "log.h"
#include "meshd.h"

static void on_registered(struct meshd *m, struct svc_event *ev)
{
	char why[256], a[CIDR_STRLEN];
	struct svc_err err;
	struct cidr vpc;
	bool changed;

	if (ev->has_cidr)
		vpc = ev->vpc_cidr;
	else if (m->has_vpc)
		vpc = m->vpc;
	else	/* the answer names no CIDR: the service's default VPC CIDR */
		cidr_parse("100.64.0.0/10", false, &vpc);
	/* issue 15 point 6: no route from an answer that fails the bounds */
	if (svcjson_check_vpc(&vpc, &ev->self.tunnel_ip, &err) < 0) {
		log_error(COMPONENT, "registration answer refused field=%s reason=\"%s\"; no route installed",
			  err.field, err.msg);
		return;
	}
	snprintf(m->self_id, sizeof(m->self_id), "%s", ev->self.id);
	changed = !m->iface_ready || !addr_ip_equal(&m->tip, &ev->self.tunnel_ip);
	if (!ev->has_cidr && !m->has_vpc)
		log_warn(COMPONENT, "registration answer has no ipv4_cidr; using vpc=%s",
			 cidr_format(&vpc, a, sizeof(a)));
	changed |= !m->has_vpc || memcmp(&m->vpc, &vpc, sizeof(m->vpc));
	m->vpc = vpc;
	m->has_vpc = true;
	m->tip = ev->self.tunnel_ip;
	m->registered = true;
	log_info(COMPONENT, "registered device=%s tunnel_ip=%s", m->self_id,
		 addr_format_ip(&m->tip, a, sizeof(a)));
	if (changed && iface_configure(m) < 0)
		log_error(COMPONENT, "interface not configured; tunnels will not carry traffic");
	m->st.has_tunnel_ip = true;
	m->st.tunnel_ip = m->tip;
	m->st.has_vpc_cidr = true;
	m->st.vpc_cidr = m->vpc;
	snprintf(m->st.device_id, sizeof(m->st.device_id), "%s", m->self_id);
	if (state_save(m->o.state_dir, &m->st, why, sizeof(why)) < 0)
		log_warn(COMPONENT, "state not saved: %s", why);
	/* the tunnel address is no local endpoint */
	report_check_local(m);
}

static void svc_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct meshd *m = arg;
	struct svc_event *ev;
	(void)loop, (void)fd, (void)events;

	while ((ev = svc_next_event(m->svc))) {
		switch (ev->type) {
		case SVC_EV_REGISTERED:
			phases_mark(&m->phases, PHASE_REGISTERED);
			on_registered(m, ev);
			if (m->registered)
				enforce_update(m, ev->policy);
			break;
		case SVC_EV_PEERS:
			phases_mark(&m->phases, PHASE_PEERS);
			if (m->registered) {
				peers_sync(m, ev->devices);
				enforce_update(m, ev->policy);
			}
			break;
		case SVC_EV_REACHABLE:
			m->service_reachable = true;
			break;
		case SVC_EV_UNREACHABLE:
			m->service_reachable = false;
			break;
		}
		svc_event_free(ev);
	}
	schedule_run(m);
}

int service_start(struct meshd *m)
{
	struct svc_cfg sc = { .url = m->o.service, .ca_file = m->o.ca, .reg_key = m->reg_key, .os = "linux",
			      .no_policy = m->o.no_policy };
	char token_file[sizeof(m->o.state_dir) + 16];
	int rc;

	snprintf(token_file, sizeof(token_file), "%s/device.token", m->o.state_dir);
	sc.token_file = token_file;

	memcpy(sc.pub, m->st.pub, SVC_KEY_LEN);
	memcpy(sc.priv, m->st.priv, SVC_KEY_LEN);
	rc = svc_new(&sc, &m->report, &m->svc);
	sodium_memzero(sc.priv, sizeof(sc.priv));
	if (rc < 0) {
		log_error(COMPONENT, "cannot start the service client err=\"%s\"", strerror(-rc));
		return rc;
	}
	if ((rc = loop_add_fd(m->loop, svc_fd(m->svc), LOOP_READ, svc_readable, m)) < 0)
		goto err_svc;
	return 0;

err_svc:
	svc_free(m->svc);
	m->svc = NULL;
	log_error(COMPONENT, "cannot watch the service client err=\"%s\"", strerror(-rc));
	return rc;
}

void service_stop(struct meshd *m)
{
	if (!m->svc)
		return;
	loop_del_fd(m->loop, svc_fd(m->svc));
	svc_free(m->svc);
	m->svc = NULL;
}
