/* Client transaction (RFC 8489 6.2.1) on a fake clock: the retransmission
 * schedule for default and short LAN settings, and response matching. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "stun/stun.h"

static const uint8_t tid[12] = { 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144 };

/* Run the clock 1 ms at a time from start until the transaction ends; record
 * when it sent and when it timed out. */
static void run(struct stun_txn *t, uint64_t start, uint64_t *sends, int *nsends, uint64_t *end)
{
	const uint8_t *out;
	size_t len;

	*nsends = 0;
	*end = 0;
	for (uint64_t now = start; now < start + 1000000; now++) {
		if (now < stun_txn_deadline(t)) {
			cr_assert_eq(stun_txn_poll(t, now, &out, &len), 0, "early poll at %lu", (unsigned long)now);
			continue;
		}
		if (stun_txn_poll(t, now, &out, &len)) {
			cr_assert_eq(len, t->req_len);
			cr_assert_eq(memcmp(out + 8, tid, 12), 0);
			sends[(*nsends)++] = now - start;
		}
		if (t->state == STUN_TXN_TIMEOUT) {
			*end = now - start;
			return;
		}
	}
}

struct schedule_case {
	struct stun_txn_cfg cfg;
	int nsends;
	uint64_t sends[8];
	uint64_t timeout;
};

Test(txn, retransmission_schedule)
{
	static const struct schedule_case cases[] = {
		/* RFC 8489 6.2.1 example: 0, 500, 1500, 3500, 7500, 15500, 31500; 39500 */
		{ { 0, 0, 0 }, 7, { 0, 500, 1500, 3500, 7500, 15500, 31500 }, 39500 },
		/* a LAN: RTO 50 ms, 3 transmissions, wait 4 RTO after the last */
		{ { 50, 3, 4 }, 3, { 0, 50, 150 }, 350 },
		{ { 100, 1, 2 }, 1, { 0 }, 200 },
	};
	uint8_t req[64];

	int n = stun_build_binding_request(req, sizeof(req), tid, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stun_txn t;
		uint64_t sends[16], end;
		int nsends;

		stun_txn_init(&t, &cases[i].cfg);
		cr_assert_eq(t.state, STUN_TXN_IDLE);
		cr_assert_eq(stun_txn_deadline(&t), UINT64_MAX);
		cr_assert_eq(stun_txn_start(&t, req, (size_t)n, 1000), 0);
		cr_assert_eq(t.state, STUN_TXN_WAITING);
		cr_assert_eq(stun_txn_start(&t, req, (size_t)n, 1000), -EALREADY);
		run(&t, 1000, sends, &nsends, &end);
		cr_expect_eq(nsends, cases[i].nsends, "case %zu", i);
		for (int k = 0; k < nsends && k < cases[i].nsends; k++)
			cr_expect_eq(sends[k], cases[i].sends[k], "case %zu send %d", i, k);
		cr_expect_eq(end, cases[i].timeout, "case %zu", i);
		cr_expect_eq(t.state, STUN_TXN_TIMEOUT);
		cr_expect_eq(stun_txn_deadline(&t), UINT64_MAX);
	}
}

Test(txn, response_matching)
{
	struct stun_txn t;
	struct stun_msg m;
	uint8_t req[64], resp[128], other[128];
	const uint8_t *out;
	size_t len;
	struct stun_builder b;
	union sockaddr_any a;
	uint8_t wrong_tid[12];

	int n = stun_build_binding_request(req, sizeof(req), tid, NULL);
	stun_txn_init(&t, NULL);
	cr_assert_eq(stun_txn_start(&t, req, (size_t)n, 0), 0);
	cr_assert_eq(stun_txn_poll(&t, 0, &out, &len), 1);

	cr_assert_eq(addr_parse("192.0.2.44:1234", &a), 0);
	memcpy(wrong_tid, tid, 12);
	wrong_tid[11] ^= 1;
	stun_build_init(&b, other, sizeof(other), STUN_CLASS_SUCCESS, STUN_METHOD_BINDING, wrong_tid);
	stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
	int on = stun_build_finish(&b);
	cr_expect_eq(stun_txn_receive(&t, other, (size_t)on, 10, &m), STUN_E_TXN);
	cr_expect_eq(t.state, STUN_TXN_WAITING);

	/* malformed input is reported as such and changes nothing */
	cr_expect_eq(stun_txn_receive(&t, other, 10, 10, &m), STUN_E_SHORT);
	cr_expect_eq(t.state, STUN_TXN_WAITING);

	/* our own request echoed back is not an answer */
	cr_expect_eq(stun_txn_receive(&t, req, (size_t)n, 10, &m), STUN_E_TXN);

	stun_build_init(&b, resp, sizeof(resp), STUN_CLASS_SUCCESS, STUN_METHOD_BINDING, tid);
	stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
	stun_build_fingerprint(&b);
	int rn = stun_build_finish(&b);
	cr_assert_eq(stun_txn_receive(&t, resp, (size_t)rn, 620, &m), 0);
	cr_expect_eq(t.state, STUN_TXN_DONE);
	cr_expect_eq(t.rtt_ms, 620);
	cr_expect(m.has_xor_mapped);
	cr_expect_eq(stun_txn_deadline(&t), UINT64_MAX);
	cr_expect_eq(stun_txn_poll(&t, 100000, &out, &len), 0, "nothing to send when done");
	cr_expect_eq(stun_txn_receive(&t, resp, (size_t)rn, 700, &m), STUN_E_TXN, "duplicate answer");

	/* a finished transaction can be started again */
	cr_expect_eq(stun_txn_start(&t, req, (size_t)n, 1000), 0);
}

Test(txn, error_response_completes)
{
	struct stun_txn t;
	struct stun_msg m;
	uint8_t req[64], resp[128];
	const uint8_t *out;
	size_t len;
	struct stun_builder b;

	int n = stun_build_binding_request(req, sizeof(req), tid, NULL);
	stun_txn_init(&t, NULL);
	cr_assert_eq(stun_txn_start(&t, req, (size_t)n, 0), 0);
	cr_expect_eq(stun_txn_receive(&t, req, (size_t)n, 0, &m), STUN_E_TXN, "not sent yet");
	cr_assert_eq(stun_txn_poll(&t, 0, &out, &len), 1);
	stun_build_init(&b, resp, sizeof(resp), STUN_CLASS_ERROR, STUN_METHOD_BINDING, tid);
	stun_build_error(&b, 420, NULL);
	int rn = stun_build_finish(&b);
	cr_assert_eq(stun_txn_receive(&t, resp, (size_t)rn, 5, &m), 0);
	cr_expect_eq(t.state, STUN_TXN_DONE);
	cr_expect_eq(m.error_code, 420);
}

Test(txn, rejects_non_requests)
{
	struct stun_txn t;
	uint8_t buf[64];
	struct stun_builder b;

	stun_txn_init(&t, NULL);
	stun_build_init(&b, buf, sizeof(buf), STUN_CLASS_SUCCESS, STUN_METHOD_BINDING, tid);
	int n = stun_build_finish(&b);
	cr_expect_eq(stun_txn_start(&t, buf, (size_t)n, 0), -EINVAL);
	cr_expect_eq(stun_txn_start(&t, buf, 10, 0), -EINVAL);
	cr_expect_eq(t.state, STUN_TXN_IDLE);
	uint8_t big[STUN_TXN_BUF + 4] = { 0 };
	stun_build_init(&b, big, sizeof(big), STUN_CLASS_REQUEST, STUN_METHOD_BINDING, tid);
	cr_expect_eq(stun_txn_start(&t, big, sizeof(big), 0), STUN_E_NOBUFS);
}
