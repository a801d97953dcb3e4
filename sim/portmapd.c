/* miniupnpd in a NAT gateway: its processes, its configuration, its table
 * and the reboot step (see portmapd.h for the why of each). */
#include "portmapd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop.h"
#include "nat-models/natmodel.h"
#include "netns.h"

/* the first byte of a request on port 5351: RFC 6886 3 and RFC 6887 7 */
enum { VERSION_NATPMP = 0, VERSION_PCP = 2 };

static const char *const mupnp_chains[] = { "prerouting_miniupnpd", "postrouting_miniupnpd", "miniupnpd" };
#define NCHAINS (sizeof(mupnp_chains) / sizeof(mupnp_chains[0]))

size_t sim_portmapd_nprocs(const json_t *v)
{
	json_t *nat = json_object_get(v, "nat");
	return json_is_object(nat) && json_object_get(nat, "port_mapping") ? SIM_PORTMAPD_NPROCS : 0;
}

static int model_bits(const struct sim_node *n, unsigned int *bits);

size_t sim_portmapd_nprocs_of(const struct sim_node *n)
{
	unsigned int bits;
	return model_bits(n, &bits) == 0 && bits ? SIM_PORTMAPD_NPROCS : 0;
}

/* Ready when the last start in the log enabled forwarding (STUN passed) and
 * bound the last socket it opens: NAT-PMP/PCP's when declared, else HTTP's. */
static json_t *ready_json(unsigned int bits)
{
	char text[400];
	const char *last = bits & (NATMODEL_PM_PCP | NATMODEL_PM_NATPMP) ? "Listening for NAT-PMP"
									 : "HTTP listening on port";
	snprintf(text, sizeof(text),
		 "awk '/ starting /{e=0; l=0} /Port forwarding is now enabled/{e=1} /Port forwarding is now "
		 "disabled/{e=0} /%s/{l=1} END{exit !(e && l)}' ${run}/logs/${node}-" SIM_PORTMAPD_PROC ".log",
		 last);
	return json_pack("{s:s}", "command", text);
}

int sim_portmapd_add_procs(json_t *v, const char *node, const char *wan_ifname, unsigned int bits)
{
	json_t *procs = json_object_get(v, "processes"), *stun, *mupnp;
	char listen[64], conf[64], after[64];

	if (!procs && json_object_set_new(v, "processes", procs = json_array()) < 0)
		return -ENOMEM;
	snprintf(listen, sizeof(listen), "${ip:%s/%s}:%d", node, wan_ifname, SIM_PORTMAPD_STUN_PORT);
	snprintf(conf, sizeof(conf), "${run}/portmap/%s.conf", node);
	snprintf(after, sizeof(after), "%s/" SIM_PORTMAPD_STUN_PROC, node);
	stun = json_pack("{s:s, s:[s,s,s,s,s,s], s:{s:i}}", "name", SIM_PORTMAPD_STUN_PROC, "argv", "meshstun",
			 "--listen", listen, "--listen", "127.0.0.1:3478", "--rfc5780", "ready", "udp",
			 SIM_PORTMAPD_STUN_PORT);
	mupnp = json_pack("{s:s, s:[s,s,s,s,s,s], s:[s], s:o, s:i}", "name", SIM_PORTMAPD_PROC, "argv",
			  SIM_PORTMAPD_BIN, "-d", "-f", conf, "-P", "${run}/portmap/${node}.pid", "after", after,
			  "ready", ready_json(bits), "ready_timeout_ms", SIM_PORTMAPD_READY_MS);
	if (!stun || !mupnp || json_array_append_new(procs, stun) < 0 || json_array_append_new(procs, mupnp) < 0) {
		json_decref(stun);
		json_decref(mupnp);
		return -ENOMEM;
	}
	return 0;
}

/* RFC 4122 4.4: a random UUID, as miniupnpd wants one per device */
static void make_uuid(char out[37])
{
	uint8_t u[16];

	if (getrandom(u, sizeof(u), 0) != sizeof(u))
		for (size_t i = 0; i < sizeof(u); i++)
			u[i] = (uint8_t)(clock_now_ms() >> (i % 8));
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
		 u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* the network of an IPv4 host address: its host bits cleared */
static void cidr_network(struct cidr *c)
{
	for (unsigned int bit = c->prefix; bit < 32; bit++)
		c->addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
}

static int write_conf(struct sim_lab *lab, size_t node, unsigned int bits, const char *path)
{
	const struct sim_scenario *sc = lab->sc;
	const struct sim_node *n = &sc->nodes[node];
	const struct sim_link *wan = sim_scenario_link(sc, node, n->wan);
	char ip[ADDR_STRLEN], cidr[CIDR_STRLEN], uuid[37];
	union sockaddr_any a;
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	sim_link_ip(wan, &a);
	make_uuid(uuid);
	fprintf(f, "# made by meshsim for %s (sim/portmapd.h)\next_ifname=%s\n", n->name, n->wan);
	for (size_t k = 0; k < sc->nlinks; k++)
		if (sc->links[k].node == node && strcmp(sc->links[k].ifname, n->wan))
			fprintf(f, "listening_ip=%s\n", sc->links[k].ifname);
	fprintf(f, "ext_perform_stun=yes\next_stun_host=%s\next_stun_port=%d\n",
		addr_format_ip(&a, ip, sizeof(ip)), SIM_PORTMAPD_STUN_PORT);
	fprintf(f, "http_port=%d\nenable_natpmp=%s\nenable_upnp=%s\nsecure_mode=yes\nsystem_uptime=no\n",
		SIM_PORTMAPD_HTTP_PORT, bits & (NATMODEL_PM_PCP | NATMODEL_PM_NATPMP) ? "yes" : "no",
		bits & NATMODEL_PM_UPNP ? "yes" : "no");
	fprintf(f, "upnp_table_name=%s\nupnp_nat_table_name=%s\n", SIM_PORTMAPD_TABLE, SIM_PORTMAPD_TABLE);
	fprintf(f, "upnp_nat_chain=%s\nupnp_nat_postrouting_chain=%s\nupnp_forward_chain=%s\n", mupnp_chains[0],
		mupnp_chains[1], mupnp_chains[2]);
	fprintf(f, "uuid=%s\n", uuid);
	/* secure_mode: a client maps only to itself; the LANs only, any port */
	for (size_t k = 0; k < sc->nlinks; k++) {
		struct cidr net = sc->links[k].addr;
		if (sc->links[k].node != node || !strcmp(sc->links[k].ifname, n->wan))
			continue;
		cidr_network(&net);
		fprintf(f, "allow 1-65535 %s 1-65535\n", cidr_format(&net, cidr, sizeof(cidr)));
	}
	fprintf(f, "deny 0-65535 0.0.0.0/0 0-65535\n");
	return fclose(f) ? -errno : 0;
}

static int write_nft(const char *path, unsigned int bits)
{
	FILE *f = fopen(path, "w");
	bool pcp = bits & NATMODEL_PM_PCP, pmp = bits & NATMODEL_PM_NATPMP;

	if (!f)
		return -errno;
	fprintf(f, "table inet %s {\n", SIM_PORTMAPD_TABLE);
	fprintf(f, "  chain prerouting { type nat hook prerouting priority -110; policy accept; jump %s; }\n",
		mupnp_chains[0]);
	fprintf(f, "  chain postrouting { type nat hook postrouting priority 90; policy accept; jump %s; }\n",
		mupnp_chains[1]);
	fprintf(f, "  chain forward { type filter hook forward priority -10; policy accept; jump %s; }\n",
		mupnp_chains[2]);
	for (size_t i = 0; i < NCHAINS; i++)
		fprintf(f, "  chain %s { }\n", mupnp_chains[i]);
	/* miniupnpd serves both from one switch: the one not declared goes unanswered */
	if (pcp != pmp)
		fprintf(f, "  chain input { type filter hook input priority -10; policy accept; "
			"udp dport %d @th,64,8 %d drop; }\n", SIM_PORTMAPD_PMP_PORT, pcp ? VERSION_NATPMP : VERSION_PCP);
	fprintf(f, "}\n");
	return fclose(f) ? -errno : 0;
}

static int model_bits(const struct sim_node *n, unsigned int *bits)
{
	struct natmodel m;

	*bits = 0;
	if (n->kind != SIM_NODE_NAT)
		return 0;
	if (natmodel_from_json(n->nat, &m, NULL) < 0)
		return -EINVAL;
	*bits = m.port_mapping;
	return 0;
}

/* runs argv in node; 0 when it exited 0, else lab->err names what and why */
static int run_in(struct sim_lab *lab, size_t node, char *const *argv, const char *what)
{
	char *out = NULL;
	int st = 0, rc = sim_lab_run(lab, node, argv, 10000, &out, &st);

	if (!rc && (!WIFEXITED(st) || WEXITSTATUS(st)))
		rc = -EIO;
	if (rc)
		sim_strf(lab->err, sizeof(lab->err), "%s: %s: %.200s", lab->sc->nodes[node].name, what,
			 out && out[0] ? out : strerror(-rc));
	free(out);
	return rc;
}

int sim_portmapd_setup(struct sim_lab *lab, size_t node)
{
	const char *name = lab->sc->nodes[node].name;
	char dir[PATH_MAX], conf[PATH_MAX + 32], nft[PATH_MAX + 32];
	unsigned int bits;
	int rc = model_bits(&lab->sc->nodes[node], &bits);

	if (rc || !bits)
		return rc;
	sim_strf(dir, sizeof(dir), "%s/portmap", lab->run_dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		rc = -errno;
	sim_strf(conf, sizeof(conf), "%s/%s.conf", dir, name);
	sim_strf(nft, sizeof(nft), "%s/%s.nft", dir, name);
	if (!rc)
		rc = write_conf(lab, node, bits, conf);
	if (!rc)
		rc = write_nft(nft, bits);
	if (rc) {
		sim_strf(lab->err, sizeof(lab->err), "%s: cannot write %s: %s", name, dir, strerror(-rc));
		return rc;
	}
	char *argv[] = { "nft", "-f", nft, NULL };
	rc = run_in(lab, node, argv, "nft -f (miniupnpd's table)");
	if (!rc)
		sim_lab_progress(lab, "portmap %s: miniupnpd configured in %s", name, conf);
	return rc;
}

/* a rebooted NAT has lost its mappings: a fresh model table (empty sets),
 * miniupnpd's chains empty, no conntrack entry */
static int forget_state(struct sim_lab *lab, size_t node)
{
	const struct sim_node *n = &lab->sc->nodes[node];
	struct natmodel_error nerr = { "", "" };
	struct natmodel m;
	char cmd[512];
	size_t len = 0;
	int rc = natmodel_from_json(n->nat, &m, &nerr);

	if (!rc && !(rc = netns_enter(lab->ns_fd[node]))) {
		rc = natmodel_apply(&m, n->wan, NULL, &nerr);
		netns_enter(lab->self_ns);
	}
	if (rc) {
		sim_strf(lab->err, sizeof(lab->err), "%s: NAT model: %s", n->name,
			 nerr.reason[0] ? nerr.reason : strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < NCHAINS; i++)
		len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, "nft flush chain inet %s %s && ",
					SIM_PORTMAPD_TABLE, mupnp_chains[i]);
	snprintf(cmd + len, sizeof(cmd) - len, "conntrack -F");
	char *argv[] = { "sh", "-c", cmd, NULL };
	return run_in(lab, node, argv, "flushing miniupnpd's chains and conntrack");
}

void sim_portmapd_reboot(struct sim_lab *lab, const struct sim_expect *e, struct sim_result *r)
{
	uint64_t t0 = clock_now_ms();
	int rc = sim_lab_proc_stop(lab, e->proc);

	if (rc == -EALREADY)
		rc = 0;
	if (!rc)
		rc = forget_state(lab, e->from);
	if (!rc)
		rc = sim_lab_proc_start(lab, e->proc);
	if (!rc)
		rc = sim_lab_proc_wait(lab, e->proc);
	r->verdict = rc ? SIM_VERDICT_FAIL : SIM_VERDICT_PASS;
	if (rc)
		sim_strf(r->detail, sizeof(r->detail), "%s", lab->err[0] ? lab->err : strerror(-rc));
	else
		sim_strf(r->detail, sizeof(r->detail), "%s: NAT state flushed, miniupnpd pid %d (new epoch)",
			 lab->sc->nodes[e->from].name, (int)lab->procs[e->proc].pid);
	r->time_ms = clock_now_ms() - t0;
}
