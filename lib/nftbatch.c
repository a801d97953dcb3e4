/* nftbatch: nftables objects sent as one batch; see nftbatch.h */
#include "nftbatch.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#define OBJ_MSG_MAX 4096	/* an nftnl object's message: a rule of many expressions fits */
#define RCVBUF (4 << 20)	/* the kernel's refusals, each with its extended ack */

void nftb_init(struct nftb *b, size_t max, const char *what)
{
	memset(b, 0, sizeof(*b));
	vec_init(&b->items, sizeof(struct nftb_item), max, what);
}

static void obj_free(enum nftb_kind kind, void *obj)
{
	switch (kind) {
	case NFTB_TABLE: nftnl_table_free(obj); break;
	case NFTB_CHAIN: nftnl_chain_free(obj); break;
	case NFTB_SET: nftnl_set_free(obj); break;
	case NFTB_OBJ: nftnl_obj_free(obj); break;
	case NFTB_RULE: nftnl_rule_free(obj); break;
	case NFTB_RAW: free(obj); break;
	}
}

void nftb_free(struct nftb *b)
{
	for (size_t i = 0; i < b->items.len; i++)
		obj_free(nftb_item(b, i)->kind, nftb_item(b, i)->obj);
	vec_free(&b->items);
	b->error = 0;
	b->bytes = 0;
}

void nftb_failed(struct nftb *b, int rc)
{
	if (!b->error)
		b->error = rc;
}

static void push_item(struct nftb *b, const struct nftb_item *it)
{
	int rc;

	if (!it->obj) {
		nftb_failed(b, -ENOMEM);
		return;
	}
	if ((rc = vec_append(&b->items, it)) < 0) {
		nftb_failed(b, rc);
		obj_free(it->kind, it->obj);
		return;
	}
	b->bytes += it->size;
}

void nftb_push(struct nftb *b, uint16_t msg, uint16_t flags, uint16_t family, enum nftb_kind kind, void *obj)
{
	const struct nftb_item it = { msg, flags, family, kind, obj, OBJ_MSG_MAX, NULL, NULL };

	push_item(b, &it);
}

void nftb_push_raw(struct nftb *b, uint16_t msg, uint16_t flags, uint16_t family, void *obj, const char *name,
		   size_t size, void (*payload)(struct nlmsghdr *nlh, const void *obj))
{
	const struct nftb_item it = { msg, flags, family, NFTB_RAW, obj, size, payload, name };

	push_item(b, &it);
}

/* ---- text form ---------------------------------------------------------- */

static const char *msg_verb(uint16_t msg)
{
	switch (msg) {
	case NFT_MSG_NEWTABLE: case NFT_MSG_NEWCHAIN: case NFT_MSG_NEWSET:
	case NFT_MSG_NEWOBJ: case NFT_MSG_NEWRULE: case NFT_MSG_NEWSETELEM:
		return "add";
	default:
		return "delete";
	}
}

static const char *kind_name(const struct nftb_item *it)
{
	static const char *const n[] = { "table", "chain", "set", "obj", "rule", "message" };

	if (it->kind == NFTB_RAW && (it->msg == NFT_MSG_NEWSETELEM || it->msg == NFT_MSG_DELSETELEM))
		return "elements";
	return n[it->kind];
}

/* nftnl's text form, except for sets, whose key and data types it leaves out */
static int item_snprintf(char *buf, size_t len, const struct nftb_item *it)
{
	const struct nftnl_set *s = it->obj;

	switch (it->kind) {
	case NFTB_TABLE: return nftnl_table_snprintf(buf, len, it->obj, NFTNL_OUTPUT_DEFAULT, 0);
	case NFTB_CHAIN: return nftnl_chain_snprintf(buf, len, it->obj, NFTNL_OUTPUT_DEFAULT, 0);
	case NFTB_SET:
		return snprintf(buf, len, "%s %s key_type %u key_len %u data_type %u data_len %u "
				"flags 0x%x timeout %llus",
				nftnl_set_get_str(s, NFTNL_SET_NAME), nftnl_set_get_str(s, NFTNL_SET_TABLE),
				nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE), nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN),
				nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE), nftnl_set_get_u32(s, NFTNL_SET_DATA_LEN),
				nftnl_set_get_u32(s, NFTNL_SET_FLAGS),
				(unsigned long long)(nftnl_set_get_u64(s, NFTNL_SET_TIMEOUT) / 1000));
	case NFTB_OBJ: return nftnl_obj_snprintf(buf, len, it->obj, NFTNL_OUTPUT_DEFAULT, 0);
	case NFTB_RULE: return nftnl_rule_snprintf(buf, len, it->obj, NFTNL_OUTPUT_DEFAULT, 0);
	case NFTB_RAW: return snprintf(buf, len, "%s", it->name ? it->name : "");
	}
	return 0;
}

char *nftb_describe(const struct nftb *b)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	char line[8192];

	if (!f)
		return NULL;
	for (size_t i = 0; i < b->items.len; i++) {
		const struct nftb_item *it = nftb_item(b, i);
		item_snprintf(line, sizeof(line), it);
		fprintf(f, "%s %s: %s\n", msg_verb(it->msg), kind_name(it), line);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- netlink --------------------------------------------------------------- */

static void item_payload(struct nlmsghdr *nlh, const struct nftb_item *it)
{
	switch (it->kind) {
	case NFTB_TABLE: nftnl_table_nlmsg_build_payload(nlh, it->obj); break;
	case NFTB_CHAIN: nftnl_chain_nlmsg_build_payload(nlh, it->obj); break;
	case NFTB_SET: nftnl_set_nlmsg_build_payload(nlh, it->obj); break;
	case NFTB_OBJ: nftnl_obj_nlmsg_build_payload(nlh, it->obj); break;
	case NFTB_RULE: nftnl_rule_nlmsg_build_payload(nlh, it->obj); break;
	case NFTB_RAW: it->payload(nlh, it->obj); break;
	}
}

static const char *item_name(const struct nftb_item *it)
{
	switch (it->kind) {
	case NFTB_TABLE: return nftnl_table_get_str(it->obj, NFTNL_TABLE_NAME);
	case NFTB_CHAIN: return nftnl_chain_get_str(it->obj, NFTNL_CHAIN_NAME);
	case NFTB_SET: return nftnl_set_get_str(it->obj, NFTNL_SET_NAME);
	case NFTB_OBJ: return nftnl_obj_get_str(it->obj, NFTNL_OBJ_NAME);
	case NFTB_RULE: return nftnl_rule_get_str(it->obj, NFTNL_RULE_CHAIN);
	case NFTB_RAW: return it->name ? it->name : "?";
	}
	return "?";
}

static int fail(char *err, size_t len, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* the kernel's refusal of one message of the batch, with its extack text */
static void batch_error(const struct nftb *b, const struct nlmsghdr *nlh, uint32_t seq0, int *first, char *err,
			size_t errlen)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const char *ext = NULL;
	size_t idx = e->msg.nlmsg_seq - seq0;

	if (e->error == 0 || *first)
		return;
	*first = e->error;
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		size_t off = sizeof(*e) + ((nlh->nlmsg_flags & NLM_F_CAPPED) ? 0 :
			     mnl_nlmsg_get_payload_len(&e->msg) + sizeof(e->msg));
		const struct nlattr *attr;
		mnl_attr_for_each_payload((const void *)((const char *)e + off), mnl_nlmsg_get_payload_len(nlh) - off) {
			if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG)
				ext = mnl_attr_get_str(attr);
		}
	}
	if (idx < b->items.len)
		fail(err, errlen, 0, "netlink: %s %s %s: %s%s%s", msg_verb(nftb_item(b, idx)->msg),
		     kind_name(nftb_item(b, idx)), item_name(nftb_item(b, idx)), strerror(-e->error),
		     ext ? ": " : "", ext ? ext : "");
	else
		fail(err, errlen, 0, "netlink: %s", strerror(-e->error));
}

static struct mnl_socket *nl_open(size_t sndbuf, char *err, size_t errlen, int *rc)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	int one = 1, size = sndbuf > (1u << 30) ? (1 << 30) : (int)sndbuf, fd;

	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		*rc = fail(err, errlen, -errno, "netlink socket: %s", strerror(errno));
		if (nl)
			mnl_socket_close(nl);
		return NULL;
	}
	fd = mnl_socket_get_fd(nl);
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	/* the batch goes in one sendmsg, which the send buffer must hold */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	size = RCVBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	return nl;
}

int nftb_commit(const struct nftb *b, char *err, size_t errlen)
{
	size_t limit = b->bytes + 4096;
	/* a message is written before the batch checks its room: twice the limit */
	char *buf = NULL, *rbuf = NULL;
	struct mnl_socket *nl = NULL;
	struct mnl_nlmsg_batch *mb = NULL;
	uint32_t seq0 = 1, seq = 0, portid;
	int rc = 0, first = 0;
	struct pollfd p;

	if (b->error)
		return fail(err, errlen, b->error, "ruleset: %s", strerror(-b->error));
	buf = malloc(2 * limit);
	rbuf = malloc(MNL_SOCKET_BUFFER_SIZE);
	if (!buf || !rbuf) {
		rc = fail(err, errlen, -ENOMEM, "ruleset: %s", strerror(ENOMEM));
		goto out;
	}
	if (!(nl = nl_open(limit, err, errlen, &rc)))
		goto out;
	portid = mnl_socket_get_portid(nl);
	mb = mnl_nlmsg_batch_start(buf, limit);
	nftnl_batch_begin(mnl_nlmsg_batch_current(mb), 0);
	mnl_nlmsg_batch_next(mb);
	for (size_t i = 0; i < b->items.len; i++) {
		const struct nftb_item *it = nftb_item(b, i);
		struct nlmsghdr *nlh;

		seq = seq0 + (uint32_t)i;
		/* no NLM_F_ACK: the kernel answers only what it refuses (an
		 * answer per message cost 1500 reads for a large group) */
		nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(mb), it->msg, it->family, it->flags, seq);
		item_payload(nlh, it);
		mnl_nlmsg_batch_next(mb);
	}
	nftnl_batch_end(mnl_nlmsg_batch_current(mb), seq + 1);
	mnl_nlmsg_batch_next(mb);
	if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(mb), mnl_nlmsg_batch_size(mb)) < 0) {
		rc = fail(err, errlen, -errno, "netlink send (%zu bytes): %s", mnl_nlmsg_batch_size(mb),
			  strerror(errno));
		goto out;
	}
	/* the kernel handles the batch inside sendmsg: every answer is queued */
	p = (struct pollfd){ .fd = mnl_socket_get_fd(nl), .events = POLLIN };
	while (poll(&p, 1, 0) > 0) {
		ssize_t n = mnl_socket_recvfrom(nl, rbuf, MNL_SOCKET_BUFFER_SIZE);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)rbuf;
		int left = (int)n;

		if (n < 0) {
			rc = fail(err, errlen, -errno, "netlink receive: %s", strerror(errno));
			goto out;
		}
		for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
			if (nlh->nlmsg_pid == portid && nlh->nlmsg_type == NLMSG_ERROR)
				batch_error(b, nlh, seq0, &first, err, errlen);
	}
	rc = first;
out:
	if (mb)
		mnl_nlmsg_batch_stop(mb);
	if (nl)
		mnl_socket_close(nl);
	free(rbuf);
	free(buf);
	return rc;
}
