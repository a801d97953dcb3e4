/* iface: the interface meshd's TUN becomes (its tunnel address, the route
 * of the VPC) and its UAPI socket, read-only, so `wg show` works on it. */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "meshd.h"

int iface_configure(struct meshd *m)
{
	struct cidr host = { .family = AF_INET, .prefix = 32 };
	char a[CIDR_STRLEN], b[CIDR_STRLEN];
	int rc;

	memcpy(host.addr, &m->tip.in.sin_addr, 4);
	rc = netio_addr_add(m->io, m->o.ifname, &host);
	if (rc < 0 && rc != -EEXIST) {
		log_error(COMPONENT, "cannot set tunnel address ifname=%s addr=%s err=\"%s\"", m->o.ifname,
			  cidr_format(&host, a, sizeof(a)), strerror(-rc));
		return rc;
	}
	rc = netio_link_up(m->io, m->o.ifname, WG_DEFAULT_MTU);
	if (rc < 0) {
		log_error(COMPONENT, "cannot bring up ifname=%s err=\"%s\"", m->o.ifname, strerror(-rc));
		return rc;
	}
	rc = netio_route_add(m->io, m->o.ifname, &m->vpc);
	if (rc < 0 && rc != -EEXIST) {
		log_error(COMPONENT, "cannot route the VPC ifname=%s cidr=%s err=\"%s\"", m->o.ifname,
			  cidr_format(&m->vpc, b, sizeof(b)), strerror(-rc));
		return rc;
	}
	m->iface_ready = true;
	phases_mark(&m->phases, PHASE_TUNNEL);
	log_info(COMPONENT, "interface up ifname=%s tunnel_ip=%s vpc=%s", m->o.ifname,
		 cidr_format(&host, a, sizeof(a)), cidr_format(&m->vpc, b, sizeof(b)));
	return 0;
}

static int uapi_get(void *arg, struct wg_uapi_config *out)
{
	struct meshd *m = arg;
	int rc = wg_device_dump(m->dev, out);
	if (rc == 0)
		out->listen_port = m->port;
	return rc;
}

static int uapi_set(void *arg, const struct wg_uapi_config *cfg)
{
	(void)arg, (void)cfg;
	return -EPERM;	/* meshd owns the configuration */
}

static const struct wg_uapi_ops uapi_ops = { .get = uapi_get, .set = uapi_set };

/* without it only `wg show` is missing: a warning, not a failure */
void iface_uapi_open(struct meshd *m)
{
	if (wg_uapi_socket_path(m->o.ifname, m->uapi_path, sizeof(m->uapi_path)) == 0 &&
	    wg_uapi_server_new(m->loop, m->uapi_path, &uapi_ops, m, &m->uapi) < 0)
		log_warn(COMPONENT, "no UAPI socket: wg show will not see %s", m->o.ifname);
}

void iface_uapi_close(struct meshd *m)
{
	wg_uapi_server_free(m->uapi);
	m->uapi = NULL;
}
