/* portmap_upnp: libminiupnpc's blocking calls on a thread (portmap_upnp.h). */
#include <errno.h>
#include <fcntl.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "portmap_ssdp.h"
#include "portmap_upnp.h"

struct upnp {
	int pipe[2];
	union sockaddr_any gw;		/* SSDP answers only from here */
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
	uint64_t t_ssdp, t_igd, t_done;	/* ms each step of the last job took */
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

void upnp_set_gateway(struct upnp *u, const union sockaddr_any *gw)
{
	u->gw = *gw;
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

/* our own M-SEARCH to the gateway's SSDP group; the first answer from the
 * gateway itself names the description to read (portmap_ssdp.h) */
static bool search(struct upnp *u)
{
	static const char *const st[] = {
		"urn:schemas-upnp-org:device:InternetGatewayDevice:2",
		"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
	};
	union sockaddr_any grp, from;
	char buf[SSDP_MAX_LEN + 1], loc[512];
	uint64_t end = clock_now_ms() + UPNP_DISCOVER_MS;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), n;
	bool ok = false;

	if (fd < 0)
		return false;
	addr_parse_ip("239.255.255.250", SSDP_PORT, &grp);
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		if ((n = ssdp_search(st[i], buf, sizeof(buf))) > 0)
			(void)!sendto(fd, buf, (size_t)n, 0, &grp.sa, addr_len(&grp));
	while (!ok) {
		uint64_t now = clock_now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		socklen_t fl = sizeof(from);
		ssize_t r;

		if (now >= end || poll(&pfd, 1, (int)(end - now)) != 1)
			break;
		if ((r = recvfrom(fd, buf, sizeof(buf), 0, &from.sa, &fl)) < 0)
			break;
		if (!addr_ip_equal(&from, &u->gw) || ssdp_location(buf, (size_t)r, loc, sizeof(loc)) < 0)
			continue;
		ok = UPNP_GetIGDFromUrl(loc, &u->urls, &u->data, u->lanaddr, sizeof(u->lanaddr)) == 1;
		if (!ok)
			FreeUPNPUrls(&u->urls);
	}
	close(fd);
	return ok;
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
	/* the IGD's own types first: a search for a type nobody answers costs a
	 * whole UPNP_DISCOVER_MS (miniupnpd offers IGD:2 unless told v1) */
	static const char *const types[] = {
		"urn:schemas-upnp-org:device:InternetGatewayDevice:2",
		"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
		"urn:schemas-upnp-org:service:WANIPConnection:2",
		"urn:schemas-upnp-org:service:WANIPConnection:1",
		"urn:schemas-upnp-org:service:WANPPPConnection:1",
		NULL,
	};
	uint64_t t0 = clock_now_ms();
	if (search(u)) {
		u->t_ssdp = clock_now_ms() - t0;
		u->have_igd = true;
		r = 1;
		goto connected;
	}
	/* libminiupnpc's own search (a second at least) finds what ours did not */
	devs = upnpDiscoverDevices(types, UPNP_DISCOVER_MS, NULL, NULL, UPNP_LOCAL_PORT_ANY, 0, 2, &err, 0);
	u->t_ssdp = clock_now_ms() - t0;
	if (!devs) {
		snprintf(u->why, sizeof(u->why), "no SSDP answer (upnpDiscover: %d)", err);
		return;
	}
	r = UPNP_GetValidIGD(devs, &u->urls, &u->data, u->lanaddr, sizeof(u->lanaddr));
	freeUPNPDevlist(devs);
	u->t_igd = clock_now_ms() - t0 - u->t_ssdp;
	if (r == 0) {
		snprintf(u->why, sizeof(u->why), "no IGD among the devices that answered");
		return;
	}
	u->have_igd = true;
connected:
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

/* the last map is still in the IGD's table */
static void check(struct upnp *u)
{
	char client[16], port[6], desc[80], enabled[4], lease[16];
	int r;

	if (!u->have_igd || !u->mapped_port[0]) {
		snprintf(u->why, sizeof(u->why), "nothing mapped");
		return;
	}
	r = UPNP_GetSpecificPortMappingEntry(u->urls.controlURL, u->data.first.servicetype, u->mapped_port, "UDP",
					     NULL, client, port, desc, enabled, lease);
	if (r != UPNPCOMMAND_SUCCESS) {
		snprintf(u->why, sizeof(u->why), "GetSpecificPortMappingEntry external=%s: %s", u->mapped_port,
			 strupnperror(r) ? strupnperror(r) : "failed");
		return;
	}
	u->ok = atoi(port) == u->internal_port && !strcmp(client, u->lanaddr);
	if (!u->ok)
		snprintf(u->why, sizeof(u->why), "external=%s now goes to %s:%s", u->mapped_port, client, port);
}

static void *run(void *arg)
{
	struct upnp *u = arg;
	char c = 1;

	uint64_t t0 = clock_now_ms();

	if (u->job == PORTMAP_UPNP_DISCOVER)
		discover(u);
	else if (u->job == PORTMAP_UPNP_CHECK)
		check(u);
	else
		map(u);
	u->t_done = clock_now_ms() - t0;
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
	log_debug("meshd", "port mapping: upnp job=%s ms=%llu ssdp_ms=%llu igd_ms=%llu", u->job == PORTMAP_UPNP_DISCOVER
		  ? "discover" : u->job == PORTMAP_UPNP_CHECK ? "check" : "map", (unsigned long long)u->t_done, (unsigned long long)u->t_ssdp,
		  (unsigned long long)u->t_igd);
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
