/* The client side of a STUN transaction over UDP (RFC 8489 section 6.2.1):
 * retransmission schedule and matching of the response, on the caller's
 * clock. */
#include "stun/stun.h"

#include <errno.h>
#include <string.h>

void stun_txn_init(struct stun_txn *t, const struct stun_txn_cfg *cfg)
{
	memset(t, 0, sizeof(*t));
	if (cfg)
		t->cfg = *cfg;
	if (!t->cfg.rto_ms)
		t->cfg.rto_ms = STUN_RTO_DEFAULT_MS;
	if (!t->cfg.rc)
		t->cfg.rc = STUN_RC_DEFAULT;
	if (!t->cfg.rm)
		t->cfg.rm = STUN_RM_DEFAULT;
	t->state = STUN_TXN_IDLE;
}

int stun_txn_start(struct stun_txn *t, const uint8_t *req, size_t len, uint64_t now_ms)
{
	enum stun_class cls;
	uint16_t method;

	if (t->state == STUN_TXN_WAITING)
		return -EALREADY;
	if (!stun_is_stun(req, len))
		return -EINVAL;
	stun_type_decode((uint16_t)(req[0] << 8 | req[1]), &cls, &method);
	if (cls != STUN_CLASS_REQUEST)
		return -EINVAL;
	if (len > sizeof(t->req))
		return STUN_E_NOBUFS;
	memcpy(t->req, req, len);
	t->method = method;
	t->req_len = len;
	memcpy(t->tid, req + 8, STUN_TID_LEN);
	t->sent = 0;
	t->rto = t->cfg.rto_ms;
	t->start_ms = now_ms;
	t->deadline = now_ms;
	t->rtt_ms = 0;
	t->state = STUN_TXN_WAITING;
	return 0;
}

int stun_txn_poll(struct stun_txn *t, uint64_t now_ms, const uint8_t **out, size_t *out_len)
{
	if (t->state != STUN_TXN_WAITING || now_ms < t->deadline)
		return 0;
	if (t->sent == t->cfg.rc) {
		/* RFC 8489 6.2.1: Rm * RTO after the last transmission */
		t->state = STUN_TXN_TIMEOUT;
		return 0;
	}
	if (t->sent == 0)
		t->start_ms = now_ms;
	t->sent++;
	if (t->sent < t->cfg.rc) {
		t->deadline = now_ms + t->rto;
		t->rto *= 2;
	} else {
		t->deadline = now_ms + (uint64_t)t->cfg.rm * t->cfg.rto_ms;
	}
	*out = t->req;
	*out_len = t->req_len;
	return 1;
}

uint64_t stun_txn_deadline(const struct stun_txn *t)
{
	return t->state == STUN_TXN_WAITING ? t->deadline : UINT64_MAX;
}

int stun_txn_match(struct stun_txn *t, const struct stun_msg *msg, uint64_t now_ms)
{
	if (t->state != STUN_TXN_WAITING || t->sent == 0 ||
	    memcmp(msg->tid, t->tid, STUN_TID_LEN) ||
	    (msg->cls != STUN_CLASS_SUCCESS && msg->cls != STUN_CLASS_ERROR) ||
	    msg->method != t->method)
		return STUN_E_TXN;
	t->rtt_ms = now_ms - t->start_ms;
	t->state = STUN_TXN_DONE;
	return 0;
}

int stun_txn_receive(struct stun_txn *t, const uint8_t *buf, size_t len, uint64_t now_ms,
		     struct stun_msg *msg)
{
	int rc = stun_parse(buf, len, msg);

	return rc < 0 ? rc : stun_txn_match(t, msg, now_ms);
}
