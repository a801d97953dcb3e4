#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "service/token.h"

static void setup(void)
{
	cr_assert_geq(sodium_init(), 0);
}

TestSuite(token, .init = setup);

Test(token, format_and_scope)
{
	static const struct { enum token_scope scope; const char *prefix; } cases[] = {
		{ TOKEN_ADMIN, "nmadm_" }, { TOKEN_REGKEY, "nmreg_" }, { TOKEN_DEVICE, "nmdev_" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char t[TOKEN_STRLEN];
		enum token_scope s;
		token_generate(cases[i].scope, t);
		cr_expect_eq(strlen(t), TOKEN_STRLEN - 1);
		cr_expect(!strncmp(t, cases[i].prefix, 6), "%s", t);
		cr_expect_eq(token_scope_of(t, &s), 0, "%s", t);
		cr_expect_eq(s, cases[i].scope);
	}
}

Test(token, random_and_distinct)
{
	char a[TOKEN_STRLEN], b[TOKEN_STRLEN];
	token_generate(TOKEN_DEVICE, a);
	token_generate(TOKEN_DEVICE, b);
	cr_expect_str_neq(a, b);
}

Test(token, malformed_tokens_have_no_scope)
{
	static const char *const bad[] = {
		"", "nmadm_", "nmxyz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"nmadm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",	/* one short */
		"nmadm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",	/* one long */
		"nmadm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",	/* not base64url */
		"nmadm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA A",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum token_scope s;
		cr_expect_eq(token_scope_of(bad[i], &s), -EINVAL, "%s", bad[i]);
	}
}

Test(token, hash_is_blake2b_and_verify_compares)
{
	/* BLAKE2b-256 of "abc" (RFC 7693 appendix A uses BLAKE2b-512; this is
	 * the 32-byte output, as b2sum -l 256 prints it) */
	static const uint8_t abc[32] = {
		0xbd, 0xdd, 0x81, 0x3c, 0x63, 0x42, 0x39, 0x72, 0x31, 0x71, 0xef, 0x3f, 0xee, 0x98, 0x57, 0x9b,
		0x94, 0x96, 0x4e, 0x3b, 0xb1, 0xcb, 0x3e, 0x42, 0x72, 0x62, 0xc8, 0xc0, 0x68, 0xd5, 0x23, 0x19,
	};
	uint8_t h[TOKEN_HASH_BYTES], h2[TOKEN_HASH_BYTES];
	char t[TOKEN_STRLEN], other[TOKEN_STRLEN];

	token_hash("abc", h);
	cr_expect_arr_eq(h, abc, 32);
	token_generate(TOKEN_REGKEY, t);
	token_hash(t, h);
	token_hash(t, h2);
	cr_expect_arr_eq(h, h2, 32, "deterministic");
	cr_expect(token_verify(t, h));
	token_generate(TOKEN_REGKEY, other);
	cr_expect(!token_verify(other, h));
	/* one changed character anywhere is a different token */
	for (size_t i = 0; i < strlen(t); i++) {
		char m[TOKEN_STRLEN];
		memcpy(m, t, sizeof(m));
		m[i] = m[i] == 'A' ? 'B' : 'A';
		cr_expect(!token_verify(m, h), "position %zu", i);
	}
}

Test(token, sealed_opens_only_with_the_right_key)
{
	uint8_t pk[32], sk[32], pk2[32], sk2[32];
	char t[TOKEN_STRLEN], sealed[TOKEN_SEALED_B64LEN], out[TOKEN_STRLEN];

	crypto_box_keypair(pk, sk);
	crypto_box_keypair(pk2, sk2);
	token_generate(TOKEN_DEVICE, t);
	cr_assert_eq(token_seal(t, pk, sealed), 0);
	cr_expect_eq(strlen(sealed), TOKEN_SEALED_B64LEN - 1);
	cr_assert_eq(token_open(sealed, pk, sk, out), 0);
	cr_expect_str_eq(out, t);
	cr_expect_eq(token_open(sealed, pk2, sk2, out), -EINVAL, "another key");
	sealed[10] = sealed[10] == 'A' ? 'B' : 'A';
	cr_expect_eq(token_open(sealed, pk, sk, out), -EINVAL, "tampered");
	cr_expect_eq(token_open("!!", pk, sk, out), -EINVAL, "not base64");
}

Test(token, seal_refuses_low_order_keys)
{
	uint8_t zero[32] = { 0 };
	char t[TOKEN_STRLEN], sealed[TOKEN_SEALED_B64LEN];
	token_generate(TOKEN_DEVICE, t);
	cr_expect_eq(token_seal(t, zero, sealed), -EINVAL);
}

Test(token, wireguard_keys)
{
	/* a key pair from `wg genkey | tee k | wg pubkey` */
	static const char priv[] = "CBRRU3zGZ88IEpwpHnBoIsr9CWeg2V4ihYOMxwdpGl4=";
	static const char pub[] = "WorOPF9k79TagGkila8IBvWts2WEqk/p3KfNsFdcAT4=";
	uint8_t sk[32], pk[32], derived[32];
	char back[WG_KEY_B64LEN];

	cr_assert_eq(wgkey_parse(priv, sk), 0);
	cr_assert_eq(wgkey_parse(pub, pk), 0);
	crypto_scalarmult_base(derived, sk);
	cr_expect_arr_eq(derived, pk, 32, "a WireGuard public key is the X25519 public key");
	wgkey_format(pk, back);
	cr_expect_str_eq(back, pub);

	static const char *const bad[] = {
		"", "WorOPF9k79TagGkila8IBvWts2WEqk/p3KfNsFdcAT4",	/* no padding */
		"WorOPF9k79TagGkila8IBvWts2WEqk/p3KfNsFdcAT5=",		/* non-canonical last char */
		"WorOPF9k79TagGkila8IBvWts2WEqk/p3KfNsFdcA==",		/* 31 bytes */
		"WorOPF9k79TagGkila8IBvWts2WEqk_p3KfNsFdcAT4=",		/* base64url alphabet */
		"WorOPF9k79TagGkila8IBvWts2WEqk/p3KfNsFdcAT4=A",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(wgkey_parse(bad[i], pk), -EINVAL, "%s", bad[i]);
}
