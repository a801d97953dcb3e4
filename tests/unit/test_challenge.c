#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "service/challenge.h"

#define TTL 30000
#define RK "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
#define RK2 "6ba7b810-9dad-11d1-80b4-00c04fd430c8"

static uint8_t dev_pub[32], dev_priv[32];

static void setup(void)
{
	cr_assert_geq(sodium_init(), 0);
	crypto_box_keypair(dev_pub, dev_priv);
}

TestSuite(challenge, .init = setup);

/* a challenge issued at now, and the device's right answer to it */
struct issued {
	uint8_t nonce[32], service_pub[32], mac[32];
};

static void issue(struct challenge_table *t, int64_t now, struct issued *out)
{
	challenge_issue(t, dev_pub, RK, now, out->nonce, out->service_pub);
	cr_assert_eq(keyproof_mac(dev_priv, out->service_pub, dev_pub, out->service_pub, out->nonce, out->mac), 0);
}

static struct challenge_table *table(unsigned max)
{
	struct challenge_table *t;
	cr_assert_eq(challenge_table_new(max, TTL, &t), 0);
	return t;
}

Test(challenge, the_right_answer_is_taken_once)
{
	struct challenge_table *t = table(0);
	struct challenge_stats st;
	struct issued a;

	issue(t, 1000, &a);
	cr_expect_eq(challenge_take(t, a.nonce, dev_pub, RK, a.mac, 2000), 0);
	cr_expect_eq(challenge_take(t, a.nonce, dev_pub, RK, a.mac, 2000), -ENOENT, "a replay");
	challenge_stats(t, &st);
	cr_expect_eq(st.issued, 1);
	cr_expect_eq(st.accepted, 1);
	cr_expect_eq(st.refused, 1);
	cr_expect_eq(st.live, 0);
	challenge_table_free(t);
}

/* each is refused, and uses the challenge up: the right answer after it is refused too */
Test(challenge, refusals_use_the_challenge_up)
{
	uint8_t other_pub[32], other_priv[32], bad[32];
	const struct {
		const char *what;
		int want;
		int64_t at;
		bool other_key, other_regkey, flip_mac;
	} cases[] = {
		{ "a wrong MAC", -EBADMSG, 2000, false, false, true },
		{ "expired", -ETIMEDOUT, 1000 + TTL, false, false, false },
		{ "another public key", -EXDEV, 2000, true, false, false },
		{ "another registration key", -EXDEV, 2000, false, true, false },
	};

	crypto_box_keypair(other_pub, other_priv);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct challenge_table *t = table(0);
		struct issued a;
		issue(t, 1000, &a);
		memcpy(bad, a.mac, 32);
		if (cases[i].flip_mac)
			bad[7] ^= 0x10;
		if (cases[i].other_key)
			keyproof_mac(other_priv, a.service_pub, other_pub, a.service_pub, a.nonce, bad);
		cr_expect_eq(challenge_take(t, a.nonce, cases[i].other_key ? other_pub : dev_pub,
					    cases[i].other_regkey ? RK2 : RK, bad, cases[i].at),
			     cases[i].want, "%s", cases[i].what);
		cr_expect_eq(challenge_take(t, a.nonce, dev_pub, RK, a.mac, 2000), -ENOENT,
			     "after %s, the right answer", cases[i].what);
		challenge_table_free(t);
	}
}

Test(challenge, expiry_is_exact)
{
	struct challenge_table *t = table(0);
	struct issued a, b;

	issue(t, 1000, &a);
	issue(t, 1000, &b);
	cr_expect_eq(challenge_take(t, a.nonce, dev_pub, RK, a.mac, 1000 + TTL - 1), 0);
	cr_expect_eq(challenge_take(t, b.nonce, dev_pub, RK, b.mac, 1000 + TTL), -ETIMEDOUT);
	challenge_table_free(t);
}

Test(challenge, unknown_nonces_are_refused)
{
	struct challenge_table *t = table(0);
	uint8_t nonce[32] = { 0 }, mac[32] = { 0 };
	struct issued a;

	issue(t, 1000, &a);
	cr_expect_eq(challenge_take(t, nonce, dev_pub, RK, mac, 1000), -ENOENT);
	cr_expect_eq(challenge_take(t, a.nonce, dev_pub, RK, a.mac, 1000), 0, "the issued one is untouched");
	challenge_table_free(t);
}

Test(challenge, a_full_table_evicts_the_oldest)
{
	struct challenge_table *t = table(4);
	struct challenge_stats st;
	struct issued a[6];

	for (int i = 0; i < 6; i++)
		issue(t, 1000 + i, &a[i]);
	challenge_stats(t, &st);
	cr_expect_eq(st.live, 4);
	cr_expect_eq(st.evicted, 2);
	cr_expect_eq(challenge_take(t, a[0].nonce, dev_pub, RK, a[0].mac, 2000), -ENOENT, "the oldest went");
	cr_expect_eq(challenge_take(t, a[1].nonce, dev_pub, RK, a[1].mac, 2000), -ENOENT, "the next oldest went");
	for (int i = 2; i < 6; i++)
		cr_expect_eq(challenge_take(t, a[i].nonce, dev_pub, RK, a[i].mac, 2000), 0, "challenge %d", i);
	challenge_table_free(t);
}

/* a used slot in the middle frees no room before the front leaves, but a
 * used front does: the ring never evicts a live one while a used one waits */
Test(challenge, used_and_expired_ones_leave_before_live_ones_are_evicted)
{
	struct challenge_table *t = table(3);
	struct challenge_stats st;
	struct issued a[5];

	issue(t, 1000, &a[0]);
	issue(t, 1001, &a[1]);
	issue(t, 1002, &a[2]);
	cr_expect_eq(challenge_take(t, a[0].nonce, dev_pub, RK, a[0].mac, 1003), 0);
	issue(t, 1004, &a[3]);
	challenge_stats(t, &st);
	cr_expect_eq(st.evicted, 0, "the used front made room");
	/* later than every one's deadline: they all leave as expired */
	issue(t, 1004 + TTL, &a[4]);
	challenge_stats(t, &st);
	cr_expect_eq(st.evicted, 0);
	cr_expect_eq(st.expired, 3);
	cr_expect_eq(st.live, 1);
	cr_expect_eq(challenge_take(t, a[4].nonce, dev_pub, RK, a[4].mac, 1005 + TTL), 0);
	challenge_table_free(t);
}
