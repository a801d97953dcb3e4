/* portmap_upnp: libminiupnpc's blocking calls on a thread (portmap_upnp.h). */
#include <errno.h>
#include <fcntl.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portmap_upnp.h"

struct upnp {
	int pipe[2];
	pthread_t th;
	bool running;
	/* the job's inputs and outputs: the thread owns them while it runs */
	enum portmap_upnp_job job;
	uint16_t internal_port, want_port;
	uint32_t lifetime;
	bool ok;
	char why[128];
	union sockaddr_any external;
	/* the IGD */
	bool have_igd;
	struct UPNPUrls urls;
	struct IGDdatas data;
	char lanaddr[64];
	char mapped_port[8];	/* the external port of the last map, "" none */
};

int upnp_new(struct upnp **out)
{
	struct upnp *u = calloc(1, sizeof(*u));

	*out = NULL;
	if (!u)
		return -ENOMEM;
	if (pipe2(u->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(u);
		return -errno;
	}
	*out = u;
	return 0;
}

void upnp_free(struct upnp *u)
{
	if (!u)
		return;
	if (u->running)
		pthread_join(u->th, NULL);
	if (u->have_igd)
		FreeUPNPUrls(&u->urls);
	close(u->pipe[0]);
	close(u->pipe[1]);
	free(u);
}

int upnp_fd(const struct upnp *u)
{
	return u->pipe[0];
}

bool upnp_busy(const struct upnp *u)
{
	return u->running;
}

const char *upnp_igd(const struct upnp *u)
{
	return u->have_igd && u->urls.controlURL ? u->urls.controlURL : "none";
}

static void discover(struct upnp *u)
{
	struct UPNPDev *devs;
	char ext[64] = "";
	int err = 0, r;

	if (u->have_igd) {
		FreeUPNPUrls(&u->urls);
		u->have_igd = false;
	}
	devs = upnpDiscover(UPNP_DISCOVER_MS, NULL, NULL, UPNP_LOCAL_PORT_ANY, 0, 2, &err);
	if (!devs) {
		snprintf(u->why, sizeof(u->why), "no SSDP answer (upnpDiscover error %d)", err);
		return;
	}
	r = UPNP_GetValidIGD(devs, &u->urls, &u->data, u->lanaddr, sizeof(u->lanaddr));
	freeUPNPDevlist(devs);
	if (r == 0) {
		snprintf(u->why, sizeof(u->why), "no IGD among the devices that answered");
		return;
	}
	u->have_igd = true;
	if (r != 1) {
		snprintf(u->why, sizeof(u->why), "the IGD at %s is not connected (UPNP_GetValidIGD %d)",
			 u->urls.controlURL, r);
		return;
	}
	if (UPNP_GetExternalIPAddress(u->urls.controlURL, u->data.first.servicetype, ext) != UPNPCOMMAND_SUCCESS ||
	    addr_parse_ip(ext, 0, &u->external) < 0) {
		snprintf(u->why, sizeof(u->why), "the IGD at %s gave no external address", u->urls.controlURL);
		return;
	}
	u->ok = true;
}

static int add(struct upnp *u, uint16_t ext_port)
{
	char ext[8], in[8], lease[12];

	snprintf(ext, sizeof(ext), "%u", ext_port);
	snprintf(in, sizeof(in), "%u", u->internal_port);
	snprintf(lease, sizeof(lease), "%u", u->lifetime);
	int r = UPNP_AddPortMapping(u->urls.controlURL, u->data.first.servicetype, ext, in, u->lanaddr,
				    "natmesh meshd", "UDP", NULL, lease);
	if (r == UPNPCOMMAND_SUCCESS)
		snprintf(u->mapped_port, sizeof(u->mapped_port), "%s", ext);
	else
		snprintf(u->why, sizeof(u->why), "AddPortMapping external=%s: %s", ext, strupnperror(r));
	return r;
}

/* last time's external port first, then the internal one */
static void map(struct upnp *u)
{
	uint16_t first = u->want_port ? u->want_port : u->internal_port;

	if (!u->have_igd) {
		snprintf(u->why, sizeof(u->why), "no IGD");
		return;
	}
	if (add(u, first) != UPNPCOMMAND_SUCCESS && (first == u->internal_port || add(u, u->internal_port) !=
										  UPNPCOMMAND_SUCCESS))
		return;
	addr_set_port(&u->external, (uint16_t)atoi(u->mapped_port));
	u->ok = true;
}

static void *run(void *arg)
{
	struct upnp *u = arg;
	char c = 1;

	if (u->job == PORTMAP_UPNP_DISCOVER)
		discover(u);
	else
		map(u);
	(void)!write(u->pipe[1], &c, 1);
	return NULL;
}

int upnp_start(struct upnp *u, enum portmap_upnp_job job, uint16_t internal_port, uint16_t want_port,
	       uint32_t lifetime)
{
	int rc;

	if (u->running)
		return -EBUSY;
	u->job = job;
	u->internal_port = internal_port;
	u->want_port = want_port;
	u->lifetime = lifetime;
	u->ok = false;
	u->why[0] = 0;
	if ((rc = pthread_create(&u->th, NULL, run, u)) != 0)
		return -rc;
	u->running = true;
	return 0;
}

enum portmap_upnp_job upnp_finish(struct upnp *u, bool *ok, union sockaddr_any *external, uint32_t *lifetime,
				  char *why, size_t whylen)
{
	char c;

	while (read(u->pipe[0], &c, 1) == 1)
		;
	if (!u->running)
		return PORTMAP_UPNP_NONE;
	pthread_join(u->th, NULL);
	u->running = false;
	*ok = u->ok;
	*external = u->external;
	*lifetime = u->lifetime;
	snprintf(why, whylen, "%s", u->why);
	return u->job;
}

int upnp_delete(struct upnp *u)
{
	if (u->running || !u->have_igd || !u->mapped_port[0])
		return 0;
	int r = UPNP_DeletePortMapping(u->urls.controlURL, u->data.first.servicetype, u->mapped_port, "UDP", NULL);
	u->mapped_port[0] = 0;
	return r == UPNPCOMMAND_SUCCESS ? 0 : -EIO;
}
