#include <criterion/criterion.h>
#include <blake2.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "agent/wg/crypto.h"

static void unhex(uint8_t *out, size_t len, const char *hex)
{
	size_t n = 0;

	cr_assert_eq(sodium_hex2bin(out, len, hex, strlen(hex), NULL, &n, NULL), 0, "bad hex %s", hex);
	cr_assert_eq(n, len, "hex %s has %zu bytes, want %zu", hex, n, len);
}

static void expect_hex(const uint8_t *got, size_t len, const char *hex)
{
	char buf[2 * 256 + 1];

	cr_assert(len <= 256);
	sodium_bin2hex(buf, sizeof(buf), got, len);
	cr_expect_str_eq(buf, hex);
}

static void setup(void)
{
	cr_assert_eq(wg_crypto_init(), 0);
}

TestSuite(wg_crypto, .init = setup);

/* RFC 7693 appendix B, and the keyed vectors of the BLAKE2 reference
 * blake2s-kat.txt (key 00..1f, input 00..(n-1)) */
Test(wg_crypto, blake2s_vectors)
{
	uint8_t key[32], in[255], out[32];

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 255; i++)
		in[i] = (uint8_t)i;

	wg_hash(out, "abc", 3);
	expect_hex(out, 32, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
	wg_hash2(out, "a", 1, "bc", 2);
	expect_hex(out, 32, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");

	struct { size_t inlen; const char *hex; } kat[] = {
		{ 0, "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49" },
		{ 1, "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1" },
		{ 255, "3fb735061abc519dfe979e54c1ee5bfad0a9d858b3315bad34bde999efd724dd" },
	};
	for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
		blake2s(out, in, key, 32, kat[i].inlen, 32);
		expect_hex(out, 32, kat[i].hex);
	}
}

/* MAC(key, in) is keyed BLAKE2s with a 16-byte output: not a truncation of
 * the 32-byte one, since the output length is a parameter of the hash.
 * Expected values from python3: hashlib.blake2s(msg, key=key, digest_size=16) */
Test(wg_crypto, mac_is_blake2s_128)
{
	uint8_t key[32], out[16];

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	wg_mac(out, key, 32, "abc", 3);
	expect_hex(out, 16, "61ba5f165c194692e09d12520cc4c74a");
}

/* Expected values from python3:
 *   hmac.new(key, msg, hashlib.blake2s).hexdigest()
 * and KDF per whitepaper 5.4 computed with the same module:
 *   t0 = H(key, input); t1 = H(t0, b'\x01'); t2 = H(t0, t1 + b'\x02'); t3 = H(t0, t2 + b'\x03') */
Test(wg_crypto, hmac_and_kdf)
{
	uint8_t key[100], out[32], msg[120], t1[32], t2[32], t3[32];
	const char *fox = "The quick brown fox jumps over the lazy dog";

	for (int i = 0; i < 100; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 40; i++)
		memcpy(msg + 3 * i, "abc", 3);

	wg_hmac(out, (const uint8_t *)"key", 3, fox, strlen(fox));
	expect_hex(out, 32, "f93215bb90d4af4c3061cd932fb169fb8bb8a91d0b4022baea1271e1323cd9a0");
	wg_hmac(out, key, 32, "", 0);
	expect_hex(out, 32, "e2641d24dfa8dd89e8cb77f1cdc77d8c006e5bebdfc4d6a3a3a6f8d5b7586fb0");
	/* a key longer than the 64-byte block is hashed first */
	wg_hmac(out, key, 100, msg, sizeof(msg));
	expect_hex(out, 32, "d9021fd1e5a1a97d115582842a302bc1e628b3b912d94b41b19f1b6c7e319f54");

	wg_kdf(t1, t2, t3, key, "input", 5);
	expect_hex(t1, 32, "87b7f70b24183c6db5dc4f6d9f4c47cdb203321aa2a0bef714896adb3107a040");
	expect_hex(t2, 32, "538a02e1eb2e31b7e4d4b82476d1fe2acf50085d3fb584537279195f5d1f5824");
	expect_hex(t3, 32, "9ad858025593be88de0f9442a589cfe84a88dc19e4753d93684d1c5efc4837f9");
	/* KDF1 and KDF2 are prefixes of KDF3, and the output may alias the key */
	memcpy(out, key, 32);
	wg_kdf(out, NULL, NULL, out, "input", 5);
	expect_hex(out, 32, "87b7f70b24183c6db5dc4f6d9f4c47cdb203321aa2a0bef714896adb3107a040");
}

/* RFC 7748 5.2 (first vector) and 6.1 (Alice and Bob) */
Test(wg_crypto, x25519_rfc7748)
{
	uint8_t scalar[32], u[32], out[32], alice[32], bob[32], apub[32], bpub[32], s1[32], s2[32];

	unhex(scalar, 32, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
	unhex(u, 32, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
	cr_assert_eq(wg_dh(out, scalar, u), 0);
	expect_hex(out, 32, "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");

	unhex(alice, 32, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	unhex(bob, 32, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
	cr_assert_eq(wg_dh_pubkey(apub, alice), 0);
	cr_assert_eq(wg_dh_pubkey(bpub, bob), 0);
	expect_hex(apub, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	expect_hex(bpub, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	cr_assert_eq(wg_dh(s1, alice, bpub), 0);
	cr_assert_eq(wg_dh(s2, bob, apub), 0);
	expect_hex(s1, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	cr_expect_eq(memcmp(s1, s2, 32), 0);

	/* a low-order point yields an all-zero secret, which must be refused */
	memset(u, 0, 32);
	cr_expect_eq(wg_dh(out, alice, u), -EINVAL);
}

/* RFC 8439 2.8.2 through libsodium, the AEAD that wg_aead_* wraps */
Test(wg_crypto, chacha20poly1305_rfc8439)
{
	static const char pt[] = "Ladies and Gentlemen of the class of '99: If I could offer you "
				 "only one tip for the future, sunscreen would be it.";
	uint8_t key[32], nonce[12], aad[12], ct[sizeof(pt) - 1 + 16], back[sizeof(pt) - 1];
	unsigned long long clen, mlen;

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
	unhex(nonce, 12, "070000004041424344454647");
	unhex(aad, 12, "50515253c0c1c2c3c4c5c6c7");
	crypto_aead_chacha20poly1305_ietf_encrypt(ct, &clen, (const uint8_t *)pt, sizeof(pt) - 1,
						  aad, sizeof(aad), NULL, nonce, key);
	cr_assert_eq(clen, sizeof(ct));
	expect_hex(ct, sizeof(pt) - 1,
		   "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
		   "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
		   "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
		   "3ff4def08e4b7a9de576d26586cec64b6116");
	expect_hex(ct + sizeof(pt) - 1, 16, "1ae10b594f09e26a7e902ecbd0600691");
	cr_assert_eq(crypto_aead_chacha20poly1305_ietf_decrypt(back, &mlen, NULL, ct, clen, aad,
							       sizeof(aad), nonce, key), 0);
	cr_expect_eq(memcmp(back, pt, sizeof(back)), 0);
}

/* The WireGuard nonce: 4 zero bytes then the counter little-endian.
 * Expected value from python3 cryptography's ChaCha20Poly1305 with
 * nonce = b'\0'*4 + (0x0102030405060708).to_bytes(8, 'little'). */
Test(wg_crypto, aead_counter_nonce_in_place)
{
	static const char pt[] = "WireGuard transport";
	uint8_t key[32], buf[sizeof(pt) - 1 + 16];

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
	memcpy(buf, pt, sizeof(pt) - 1);
	wg_aead_encrypt(buf, buf, sizeof(pt) - 1, NULL, 0, 0x0102030405060708ULL, key);
	expect_hex(buf, sizeof(buf),
		   "a3d89cde17af3aaf479105f96f1916af9c0120e873a2675243edd0b3adcecacd872353");
	cr_assert_eq(wg_aead_decrypt(buf, buf, sizeof(buf), NULL, 0, 0x0102030405060708ULL, key), 0);
	cr_expect_eq(memcmp(buf, pt, sizeof(pt) - 1), 0);

	wg_aead_encrypt(buf, (const uint8_t *)pt, sizeof(pt) - 1, NULL, 0, 7, key);
	cr_expect_eq(wg_aead_decrypt(buf, buf, sizeof(buf), NULL, 0, 8, key), -EBADMSG);
}

Test(wg_crypto, xaead_roundtrip_and_tamper)
{
	uint8_t key[32], nonce[24], ad[16], buf[16 + 16], plain[16];

	wg_random(key, sizeof(key));
	wg_random(nonce, sizeof(nonce));
	wg_random(ad, sizeof(ad));
	wg_random(plain, sizeof(plain));
	wg_xaead_encrypt(buf, plain, 16, ad, 16, nonce, key);
	cr_assert_eq(wg_xaead_decrypt(buf, buf, sizeof(buf), ad, 16, nonce, key), 0);
	cr_expect_eq(memcmp(buf, plain, 16), 0);
	wg_xaead_encrypt(buf, plain, 16, ad, 16, nonce, key);
	ad[0] ^= 1;
	cr_expect_eq(wg_xaead_decrypt(buf, buf, sizeof(buf), ad, 16, nonce, key), -EBADMSG);
}

/* TAI64N: 2^62 + 10 + seconds big-endian, then nanoseconds rounded down to
 * a multiple of 2^24 (kernel and wireguard-go whitening) */
Test(wg_crypto, tai64n)
{
	uint8_t t[12], t2[12];

	wg_tai64n(t, 1700000000ULL * WG_NSEC_PER_SEC + 123456789);
	/* 0x400000000000000a + 1700000000 = 0x40000000_6553f10a; 123456789 & ~0xffffff = 117440512 */
	expect_hex(t, 12, "400000006553f10a07000000");
	wg_tai64n(t2, 1700000000ULL * WG_NSEC_PER_SEC + 123456789 + 1000);
	cr_expect_eq(memcmp(t, t2, 12), 0, "within one whitening step the timestamp is equal");
	wg_tai64n(t2, 1700000001ULL * WG_NSEC_PER_SEC);
	cr_expect_gt(memcmp(t2, t, 12), 0, "later time, greater bytes");
}

Test(wg_crypto, ct_eq_zero_and_key_codecs)
{
	uint8_t a[32] = { 0 }, b[32] = { 0 }, k[32];
	char b64[WG_KEY_B64_LEN], hex[WG_KEY_HEX_LEN];

	cr_expect(wg_ct_eq(a, b, 32));
	cr_expect(wg_is_zero(a, 32));
	b[31] = 1;
	cr_expect_not(wg_ct_eq(a, b, 32));
	cr_expect_not(wg_is_zero(b, 32));

	/* RFC 7748 6.1 Alice's public key, as `wg pubkey` would print it */
	cr_assert_eq(wg_key_from_hex(k, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"), 0);
	wg_key_to_base64(b64, k);
	cr_expect_str_eq(b64, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
	cr_assert_eq(wg_key_from_base64(a, b64), 0);
	cr_expect_eq(memcmp(a, k, 32), 0);
	wg_key_to_hex(hex, k);
	cr_expect_str_eq(hex, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	cr_expect_eq(wg_key_from_base64(a, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTm="), -EINVAL);
	cr_expect_eq(wg_key_from_base64(a, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo"), -EINVAL);
	cr_expect_eq(wg_key_from_hex(a, "zz20f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"), -EINVAL);
	cr_expect_eq(wg_key_from_hex(a, "8520"), -EINVAL);
}
