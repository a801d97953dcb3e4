#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "keyproof.h"

static void setup(void)
{
	cr_assert_geq(sodium_init(), 0);
}

TestSuite(keyproof, .init = setup);

/* the private keys 1..32 (device) and 101..132 (service), the challenge
 * c0 c1 .. cf c0 .. cf; the public keys and the MAC computed by python's
 * cryptography and hashlib (tests/netns/svc_proof.py), not by this code */
static uint8_t dev_priv[32], svc_priv[32], challenge[32];
static const uint8_t dev_pub[32] = {
	0x07, 0xa3, 0x7c, 0xbc, 0x14, 0x20, 0x93, 0xc8, 0xb7, 0x55, 0xdc, 0x1b, 0x10, 0xe8, 0x6c, 0xb4,
	0x26, 0x37, 0x4a, 0xd1, 0x6a, 0xa8, 0x53, 0xed, 0x0b, 0xdf, 0xc0, 0xb2, 0xb8, 0x6d, 0x1c, 0x7c,
};
static const uint8_t svc_pub[32] = {
	0x57, 0x14, 0x76, 0x9d, 0x11, 0x6b, 0xf7, 0x64, 0x36, 0xae, 0x74, 0xbc, 0x79, 0x3d, 0x2c, 0x30,
	0xad, 0x19, 0x03, 0xc5, 0x9a, 0xc5, 0x27, 0x38, 0x05, 0xc7, 0xe2, 0x69, 0x8b, 0x41, 0x0c, 0x36,
};
static const uint8_t want[32] = {
	0xd7, 0xa6, 0xc6, 0xde, 0x30, 0xa0, 0x1f, 0x5d, 0xeb, 0xf9, 0x1d, 0x9a, 0x0f, 0x0a, 0x71, 0x0f,
	0x5d, 0x38, 0xdf, 0x46, 0x79, 0x82, 0x72, 0x33, 0x66, 0x31, 0x6c, 0x7c, 0xe8, 0xa5, 0xe4, 0xe3,
};

static void vectors(void)
{
	for (int i = 0; i < 32; i++) {
		dev_priv[i] = (uint8_t)(i + 1);
		svc_priv[i] = (uint8_t)(i + 101);
		challenge[i] = (uint8_t)(0xc0 + i % 16);
	}
}

Test(keyproof, both_sides_compute_the_vector)
{
	uint8_t mac[32], pub[32];

	vectors();
	crypto_scalarmult_base(pub, dev_priv);
	cr_assert(!memcmp(pub, dev_pub, 32));
	cr_assert_eq(keyproof_mac(dev_priv, svc_pub, dev_pub, svc_pub, challenge, mac), 0);
	cr_expect(!memcmp(mac, want, 32), "the device's MAC is not python's");
	cr_assert_eq(keyproof_mac(svc_priv, dev_pub, dev_pub, svc_pub, challenge, mac), 0);
	cr_expect(!memcmp(mac, want, 32), "the service's MAC is not python's");
}

/* every input counts: a change in any of them gives another MAC */
Test(keyproof, every_input_changes_the_mac)
{
	uint8_t mac[32], other_priv[32], other_pub[32], c2[32], d2[32], s2[32];

	vectors();
	crypto_box_keypair(other_pub, other_priv);
	memcpy(c2, challenge, 32);
	c2[31] ^= 1;
	memcpy(d2, dev_pub, 32);
	d2[0] ^= 0x40;
	memcpy(s2, svc_pub, 32);
	s2[5] ^= 2;
	const struct {
		const char *what;
		const uint8_t *priv, *their, *dpub, *spub, *ch;
	} cases[] = {
		{ "another private key", other_priv, svc_pub, dev_pub, svc_pub, challenge },
		{ "another challenge", dev_priv, svc_pub, dev_pub, svc_pub, c2 },
		{ "another device key named", dev_priv, svc_pub, d2, svc_pub, challenge },
		{ "another service key named", dev_priv, svc_pub, dev_pub, s2, challenge },
		{ "another service key used", dev_priv, other_pub, dev_pub, svc_pub, challenge },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = keyproof_mac(cases[i].priv, cases[i].their, cases[i].dpub, cases[i].spub, cases[i].ch, mac);
		cr_expect(rc == 0 && memcmp(mac, want, 32), "%s gives the same MAC", cases[i].what);
	}
}

Test(keyproof, low_order_points_are_refused)
{
	uint8_t zero[32] = { 0 }, one[32] = { 1 }, mac[32];

	vectors();
	cr_expect_eq(keyproof_mac(dev_priv, zero, dev_pub, zero, challenge, mac), -EINVAL);
	cr_expect_eq(keyproof_mac(dev_priv, one, dev_pub, one, challenge, mac), -EINVAL);
}
