/* libFuzzer target for meshsim's scenario parser: sim_scenario_parse on
 * arbitrary text (the files in scenarios/ make a good seed corpus). A
 * refusal must say why, naming the file; an accepted scenario must hold
 * together: every index it keeps (a link's node and network, a process's
 * node and the processes it waits for, an expectation's nodes and process)
 * points inside its arrays, every argv is NULL-terminated, and every node
 * and link is found again by the lookups meshsim runs on them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim/scenario.h"

#define FILE_NAME "fuzz.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_argv(const struct sim_argv *a)
{
	if (a->n && !a->v)
		abort();
	if (a->v && a->v[a->n])
		abort();
}

static void check_node_ref(const struct sim_scenario *s, size_t node)
{
	if (node >= s->nnodes)
		abort();
}

static void check_scenario(const struct sim_scenario *s)
{
	union sockaddr_any ip;

	if (!s->name || strlen(s->name) > SIM_SCENARIO_NAME_MAX || !s->nnodes)
		abort();
	for (size_t i = 0; i < s->nnodes; i++) {
		const struct sim_link *k = sim_scenario_link(s, i, NULL);
		if (strnlen(s->nodes[i].name, sizeof(s->nodes[i].name)) > SIM_NAME_MAX ||
		    sim_scenario_node(s, s->nodes[i].name) != (int)i || (k && k->node != i))
			abort();
	}
	for (size_t i = 0; i < s->nlinks; i++) {
		const struct sim_link *k = &s->links[i];
		check_node_ref(s, k->node);
		if (k->network >= s->nnets || strnlen(k->ifname, sizeof(k->ifname)) == sizeof(k->ifname) ||
		    sim_scenario_link(s, k->node, k->ifname) != k || k->loss_percent < 0 || k->loss_percent > 100)
			abort();
		for (int d = 0; d < IMPAIR_NDIRS; d++)
			if (k->impair[d].jitter_us > k->impair[d].delay_us ||
			    k->impair[d].reorder_ppm > IMPAIR_REORDER_MAX_PERCENT * 10000 ||
			    (k->impair[d].queue_packets && k->impair[d].queue_bytes) ||
			    ((k->impair[d].queue_packets || k->impair[d].queue_bytes) && !k->impair[d].rate_kbit))
				abort();
		sim_link_ip(k, &ip);
	}
	for (size_t i = 0; i < s->nprocs; i++) {
		const struct sim_proc *p = &s->procs[i];
		check_node_ref(s, p->node);
		check_argv(&p->argv);
		check_argv(&p->ready.argv);
		for (size_t a = 0; a < p->nafter; a++)
			if (p->after[a] >= s->nprocs)
				abort();
	}
	for (size_t i = 0; i < s->nexpects; i++) {
		const struct sim_expect *e = &s->expects[i];
		check_argv(&e->argv);
		switch (e->kind) {
		case SIM_EXPECT_PATH:
			check_node_ref(s, e->to_node);
			/* fall through */
		case SIM_EXPECT_PING:
		case SIM_EXPECT_COMMAND:
			check_node_ref(s, e->from);
			break;
		case SIM_EXPECT_STOP:
		case SIM_EXPECT_START:
		case SIM_EXPECT_RESTART:
			if (e->proc >= s->nprocs)
				abort();
			if (e->has_cond)
				check_node_ref(s, e->from);
			break;
		case SIM_EXPECT_SLEEP:
			break;
		case SIM_EXPECT_IMPAIR:
			if (e->link >= s->nlinks || !s->links[e->link].impaired || !e->update)
				abort();
			break;
		case SIM_EXPECT_REBOOT:
			/* the gateway's own miniupnpd */
			check_node_ref(s, e->from);
			if (e->proc >= s->nprocs || s->procs[e->proc].node != e->from ||
			    s->nodes[e->from].kind != SIM_NODE_NAT)
				abort();
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sim_scenario *s;
	char err[SIM_ERR_MAX];
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	/* an exact-size heap copy, so ASan sees any read past the end */
	memcpy(text, data, size);
	text[size] = '\0';
	if (sim_scenario_parse(FILE_NAME, text, &s, err, sizeof(err)) == 0) {
		if (!s)
			abort();
		check_scenario(s);
		sim_scenario_free(s);
	} else if (s || strncmp(err, FILE_NAME ":", strlen(FILE_NAME ":")) != 0 ||
		   strlen(err) <= strlen(FILE_NAME ": ")) {
		abort();	/* every refusal names the file and says why */
	}
	free(text);
	return 0;
}
