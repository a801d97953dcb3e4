/* libFuzzer target: a security group as meshd receives it from the service
 * (JSON from the network) through policy_group_parse, both with and without
 * resolved group addresses. A group that parses is used the way meshd uses
 * it: matched against a packet, rendered to nftables (objects and text),
 * written back to JSON and parsed again to the same rules. A refusal must
 * name the field. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent/meshd/policy_nft.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use(const struct policy_group *g)
{
	struct policy_peer p = { .naddr = 1, .group_id = "web" };
	struct policy_nft *r;

	p.addr[0].family = AF_INET;
	memcpy(p.addr[0].a, "\x64\x40\x00\x05", 4);
	(void)policy_rules_match(g->in, g->nin, &p, AF_INET, 6, 80);
	(void)policy_allows(g, &p, g, &p, AF_INET, 17, 53);
	(void)policy_visible(g, &p, g, &p);
	if (policy_nft_render(g, "mesh0", &r) == 0) {
		free(policy_nft_text(r, true));
		policy_nft_free(r);
	}
	for (size_t i = 0; i < g->nin; i++) {
		struct policy_rule back;
		char err[POLICY_ERR_MAX];
		json_t *j = policy_rule_json(&g->in[i], true);

		if (!j)
			continue;
		if (policy_rule_parse(j, POLICY_PARSE_RESOLVED, "again", &back, err, sizeof(err)) != 0)
			abort();	/* what we wrote must read back */
		if (back.proto != g->in[i].proto || back.nranges != g->in[i].nranges ||
		    back.nmembers != g->in[i].nmembers || back.from_port != g->in[i].from_port)
			abort();
		policy_rule_free(&back);
		json_decref(j);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned flags[] = { 0, POLICY_PARSE_RESOLVED };
	json_t *j = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);

	if (!j)
		return 0;
	for (size_t f = 0; f < 2; f++) {
		struct policy_group g;
		char err[POLICY_ERR_MAX] = "";

		if (policy_group_parse(j, flags[f], &g, err, sizeof(err)) == 0) {
			use(&g);
			policy_group_free(&g);
		} else if (!err[0]) {
			abort();	/* a refusal names the field */
		}
	}
	json_decref(j);
	return 0;
}
