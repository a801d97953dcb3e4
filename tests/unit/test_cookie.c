#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "addr.h"
#include "agent/wg/cookie.h"
#include "agent/wg/crypto.h"

static const uint64_t T0 = 5000 * WG_NSEC_PER_SEC;
static uint8_t server_priv[32], server_pub[32];
static struct wg_cookie_checker checker;
static struct wg_cookie_maker maker;
static union sockaddr_any src;

static void setup(void)
{
	cr_assert_eq(wg_crypto_init(), 0);
	wg_dh_generate(server_priv, server_pub);
	wg_cookie_checker_init(&checker, server_pub);
	wg_cookie_maker_init(&maker, server_pub);
	cr_assert_eq(addr_parse("192.0.2.7:51820", &src), 0);
}

static void teardown(void)
{
	wg_cookie_checker_deinit(&checker);
	wg_cookie_maker_deinit(&maker);
}

TestSuite(wg_cookie, .init = setup, .fini = teardown);

/* a handshake initiation with random contents, type and sender set */
static void fake_initiation(struct wg_msg_initiation *m, uint32_t sender)
{
	wg_random(m, sizeof(*m));
	memset(&m->header, 0, sizeof(m->header));
	m->header.type = WG_MSG_INITIATION;
	wg_le32_put(&m->sender_index, sender);
}

Test(wg_cookie, mac1_valid_and_invalid)
{
	struct wg_msg_initiation m, bad;
	struct wg_msg_response r;
	struct wg_cookie_checker other;
	uint8_t opriv[32], opub[32];

	fake_initiation(&m, 1);
	wg_cookie_add_macs(&maker, (uint8_t *)&m, sizeof(m), T0);
	cr_expect(wg_is_zero(m.macs.mac2, 16), "no cookie yet: mac2 zero");
	cr_expect_eq(wg_cookie_validate(&checker, (uint8_t *)&m, sizeof(m), &src, false, T0),
		     WG_COOKIE_VALID_MAC_NO_COOKIE);

	/* mac1 covers every byte before it */
	for (size_t off = 0; off < offsetof(struct wg_msg_initiation, macs) + 16; off += 37) {
		bad = m;
		((uint8_t *)&bad)[off] ^= 0x10;
		cr_expect_eq(wg_cookie_validate(&checker, (uint8_t *)&bad, sizeof(bad), &src, false, T0),
			     WG_COOKIE_INVALID_MAC, "flip at %zu", off);
	}
	/* a receiver with another key: mac1 is bound to the receiver's public key */
	wg_dh_generate(opriv, opub);
	wg_cookie_checker_init(&other, opub);
	cr_expect_eq(wg_cookie_validate(&other, (uint8_t *)&m, sizeof(m), &src, false, T0),
		     WG_COOKIE_INVALID_MAC);
	wg_cookie_checker_deinit(&other);
	/* not a handshake message size */
	cr_expect_eq(wg_cookie_validate(&checker, (uint8_t *)&m, sizeof(m) - 1, &src, false, T0),
		     WG_COOKIE_INVALID_MAC);

	/* responses carry the same MACs */
	wg_random(&r, sizeof(r));
	memset(&r.header, 0, sizeof(r.header));
	r.header.type = WG_MSG_RESPONSE;
	wg_cookie_add_macs(&maker, (uint8_t *)&r, sizeof(r), T0);
	cr_expect_eq(wg_cookie_validate(&checker, (uint8_t *)&r, sizeof(r), &src, false, T0),
		     WG_COOKIE_VALID_MAC_NO_COOKIE);
}

Test(wg_cookie, reply_then_mac2)
{
	struct wg_msg_initiation m;
	struct wg_msg_cookie_reply reply, bad;
	union sockaddr_any other_port;

	fake_initiation(&m, 0xa1b2c3d4);
	wg_cookie_add_macs(&maker, (uint8_t *)&m, sizeof(m), T0);
	/* under load, no cookie: the server answers with a cookie reply */
	cr_assert_eq(wg_cookie_validate(&checker, (uint8_t *)&m, sizeof(m), &src, true, T0),
		     WG_COOKIE_VALID_MAC_NO_COOKIE);
	cr_assert_eq(wg_cookie_create_reply(&checker, &reply, (uint8_t *)&m, sizeof(m), &src, T0), 0);
	cr_expect_eq(wg_msg_parse((uint8_t *)&reply, sizeof(reply)), WG_MSG_COOKIE_REPLY);
	cr_expect_eq(wg_le32_get(&reply.receiver_index), 0xa1b2c3d4, "addressed to the sender index");

	bad = reply;
	bad.encrypted_cookie[0] ^= 1;
	cr_expect_eq(wg_cookie_consume_reply(&maker, &bad, T0), -EBADMSG);
	bad = reply;
	bad.nonce[23] ^= 1;
	cr_expect_eq(wg_cookie_consume_reply(&maker, &bad, T0), -EBADMSG);
	cr_assert_eq(wg_cookie_consume_reply(&maker, &reply, T0), 0);
	cr_expect_eq(wg_cookie_consume_reply(&maker, &reply, T0), -ENOENT, "once per mac1");

	/* the retried initiation now carries mac2, valid from the same address */
	fake_initiation(&m, 2);
	wg_cookie_add_macs(&maker, (uint8_t *)&m, sizeof(m), T0 + WG_NSEC_PER_SEC);
	cr_expect_not(wg_is_zero(m.macs.mac2, 16));
	cr_expect_eq(wg_cookie_validate(&checker, (uint8_t *)&m, sizeof(m), &src, true,
					T0 + WG_NSEC_PER_SEC), WG_COOKIE_VALID_MAC_WITH_COOKIE);
	/* the cookie is bound to IP and port */
	other_port = src;
	addr_set_port(&other_port, 51821);
	cr_expect_eq(wg_cookie_validate(&checker, (uint8_t *)&m, sizeof(m), &other_port, true,
					T0 + WG_NSEC_PER_SEC), WG_COOKIE_VALID_MAC_NO_COOKIE);
	/* mac2 is only checked under load */
	cr_expect_eq(wg_cookie_validate(&checker, (uint8_t *)&m, sizeof(m), &src, false,
					T0 + WG_NSEC_PER_SEC), WG_COOKIE_VALID_MAC_NO_COOKIE);
}

Test(wg_cookie, reply_for_an_older_message_is_refused)
{
	struct wg_msg_initiation m1, m2;
	struct wg_msg_cookie_reply reply;

	fake_initiation(&m1, 1);
	wg_cookie_add_macs(&maker, (uint8_t *)&m1, sizeof(m1), T0);
	cr_assert_eq(wg_cookie_create_reply(&checker, &reply, (uint8_t *)&m1, sizeof(m1), &src, T0), 0);
	fake_initiation(&m2, 2);
	wg_cookie_add_macs(&maker, (uint8_t *)&m2, sizeof(m2), T0);
	cr_expect_eq(wg_cookie_consume_reply(&maker, &reply, T0), -EBADMSG,
		     "the AD is the last mac1 sent");
}

Test(wg_cookie, lifetimes)
{
	struct wg_msg_initiation m;
	struct wg_msg_cookie_reply reply;
	uint64_t t;

	fake_initiation(&m, 1);
	wg_cookie_add_macs(&maker, (uint8_t *)&m, sizeof(m), T0);
	cr_assert_eq(wg_cookie_create_reply(&checker, &reply, (uint8_t *)&m, sizeof(m), &src, T0), 0);
	cr_assert_eq(wg_cookie_consume_reply(&maker, &reply, T0), 0);

	/* the maker uses a cookie for COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY */
	t = T0 + WG_COOKIE_SECRET_MAX_AGE_NS - WG_COOKIE_SECRET_LATENCY_NS - 1;
	wg_cookie_add_macs(&maker, (uint8_t *)&m, sizeof(m), t);
	cr_expect_not(wg_is_zero(m.macs.mac2, 16));
	cr_expect_eq(wg_cookie_validate(&checker, (uint8_t *)&m, sizeof(m), &src, true, t),
		     WG_COOKIE_VALID_MAC_WITH_COOKIE);
	wg_cookie_add_macs(&maker, (uint8_t *)&m, sizeof(m), t + 1);
	cr_expect(wg_is_zero(m.macs.mac2, 16), "expired cookie: no mac2");

	/* the checker's secret changes after COOKIE_SECRET_MAX_AGE: an old
	 * cookie no longer validates */
	fake_initiation(&m, 3);
	wg_cookie_add_macs(&maker, (uint8_t *)&m, sizeof(m), T0);
	cr_assert_eq(wg_cookie_create_reply(&checker, &reply, (uint8_t *)&m, sizeof(m), &src, T0), 0);
	cr_assert_eq(wg_cookie_consume_reply(&maker, &reply, T0), 0);
	wg_cookie_add_macs(&maker, (uint8_t *)&m, sizeof(m), T0 + 1);
	cr_expect_eq(wg_cookie_validate(&checker, (uint8_t *)&m, sizeof(m), &src, true,
					T0 + WG_COOKIE_SECRET_MAX_AGE_NS), WG_COOKIE_VALID_MAC_NO_COOKIE);
}

Test(wg_cookie, checker_without_key)
{
	struct wg_cookie_checker none;
	struct wg_msg_initiation m;
	struct wg_msg_cookie_reply reply;

	wg_cookie_checker_init(&none, NULL);
	fake_initiation(&m, 1);
	wg_cookie_add_macs(&maker, (uint8_t *)&m, sizeof(m), T0);
	cr_expect_eq(wg_cookie_validate(&none, (uint8_t *)&m, sizeof(m), &src, true, T0),
		     WG_COOKIE_INVALID_MAC);
	cr_expect_eq(wg_cookie_create_reply(&none, &reply, (uint8_t *)&m, sizeof(m), &src, T0), -EINVAL);
	wg_cookie_checker_set_key(&none, server_pub);
	cr_expect_eq(wg_cookie_validate(&none, (uint8_t *)&m, sizeof(m), &src, true, T0),
		     WG_COOKIE_VALID_MAC_NO_COOKIE);
	wg_cookie_checker_deinit(&none);
}
