/* policy_nft's counters: the packets each rule of the group let through
 * and the final drops, read back from the kernel (see policy_nft.h) */
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/udata.h>

#include "policy_nft.h"

struct ctr_walk {
	struct policy_nft_counters *c;
	uint64_t pkts, bytes;
	bool has;
};

static int ctr_expr(struct nftnl_expr *e, void *arg)
{
	struct ctr_walk *w = arg;

	if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter") == 0) {
		w->pkts = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		w->bytes = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
		w->has = true;
	}
	return 0;
}

static int comment_cb(const struct nftnl_udata *attr, void *data)
{
	const char **out = data;

	if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT && nftnl_udata_len(attr) > 0 &&
	    ((const char *)nftnl_udata_get(attr))[nftnl_udata_len(attr) - 1] == '\0')
		*out = nftnl_udata_get(attr);
	return 0;
}

static int rule_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct policy_nft_counters *c = arg;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct ctr_walk w = { c, 0, 0, false };
	const char *chain, *comment = NULL;
	const void *ud;
	uint32_t udlen;
	size_t idx;

	if (!r)
		return MNL_CB_ERROR;
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0)
		goto out;
	nftnl_expr_foreach(r, ctr_expr, &w);
	chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
	if (!w.has || !chain)
		goto out;
	ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &udlen);
	if (ud)
		nftnl_udata_parse(ud, udlen, comment_cb, &comment);
	if (!comment) {	/* the final drop */
		if (!strcmp(chain, "inbound")) {
			c->in_drop_pkts = w.pkts;
			c->in_drop_bytes = w.bytes;
		} else if (!strcmp(chain, "outbound")) {
			c->out_drop_pkts = w.pkts;
			c->out_drop_bytes = w.bytes;
		}
	} else if (sscanf(comment, "inbound_rules[%zu]", &idx) == 1 && idx < c->nin) {
		c->in_pkts[idx] += w.pkts;
	} else if (sscanf(comment, "outbound_rules[%zu]", &idx) == 1 && idx < c->nout) {
		c->out_pkts[idx] += w.pkts;
	}
out:
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

int policy_nft_counters(size_t nin, size_t nout, struct policy_nft_counters *out)
{
	char *buf = malloc(MNL_SOCKET_BUFFER_SIZE);
	struct mnl_socket *nl = NULL;
	struct nftnl_rule *r = NULL;
	struct nlmsghdr *nlh;
	uint32_t seq = 1, portid;
	int rc = 0;
	ssize_t n;

	memset(out, 0, sizeof(*out));
	out->in_pkts = calloc(nin + 1, sizeof(uint64_t));
	out->out_pkts = calloc(nout + 1, sizeof(uint64_t));
	out->nin = nin;
	out->nout = nout;
	if (!buf || !out->in_pkts || !out->out_pkts || !(r = nftnl_rule_alloc())) {
		rc = -ENOMEM;
		goto out;
	}
	if (!(nl = mnl_socket_open(NETLINK_NETFILTER)) || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno ? -errno : -EIO;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, seq);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, POLICY_NFT_TABLE);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		rc = -errno;
		goto out;
	}
	while ((n = mnl_socket_recvfrom(nl, buf, MNL_SOCKET_BUFFER_SIZE)) > 0) {
		rc = mnl_cb_run(buf, (size_t)n, seq, portid, rule_cb, out);
		if (rc <= 0)
			break;
	}
	if (n < 0 || rc < 0)
		rc = -errno ? -errno : -EIO;
out:
	if (nl)
		mnl_socket_close(nl);
	if (r)
		nftnl_rule_free(r);
	free(buf);
	if (rc < 0)
		policy_nft_counters_free(out);
	return rc;
}

void policy_nft_counters_free(struct policy_nft_counters *c)
{
	free(c->in_pkts);
	free(c->out_pkts);
	c->in_pkts = c->out_pkts = NULL;
}
