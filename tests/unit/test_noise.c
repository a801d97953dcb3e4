#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "addr.h"
#include "agent/wg/cookie.h"
#include "agent/wg/crypto.h"
#include "agent/wg/noise.h"

/* Two in-process WireGuard instances, A and B, each with one peer (the
 * other). Fixed static keys: RFC 7748 6.1's Alice and Bob. */
struct side {
	struct wg_static_identity id;
	struct wg_index_table *table;
	struct wg_handshake hs;		/* the one peer's handshake */
	struct wg_keypairs kps;
	int peer_tag;			/* the opaque peer pointer points here */
};

static const char *ALICE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
static const char *BOB = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
static const uint64_t WALL = 1700000000ULL * WG_NSEC_PER_SEC;
static const uint64_t T0 = 1000 * WG_NSEC_PER_SEC;	/* arbitrary monotonic start */

static struct side a, b;

static void unhex(uint8_t *out, size_t len, const char *hex)
{
	size_t n = 0;

	cr_assert_eq(sodium_hex2bin(out, len, hex, strlen(hex), NULL, &n, NULL), 0);
	cr_assert_eq(n, len);
}

static struct wg_handshake *lookup(void *ctx, const uint8_t pub[WG_KEY_LEN])
{
	struct side *s = ctx;

	return memcmp(s->hs.remote_static, pub, WG_KEY_LEN) == 0 ? &s->hs : NULL;
}

static void side_init(struct side *s, const char *priv_hex, const uint8_t remote_pub[32],
		      const uint8_t *psk)
{
	uint8_t priv[32];

	unhex(priv, 32, priv_hex);
	cr_assert_eq(wg_static_identity_set(&s->id, priv), 0);
	s->table = wg_index_table_new();
	cr_assert(s->table);
	cr_assert_eq(wg_handshake_init(&s->hs, &s->id, s->table, remote_pub, psk, &s->peer_tag), 0);
	wg_keypairs_init(&s->kps);
}

static void side_fini(struct side *s)
{
	wg_keypairs_clear(&s->kps);
	wg_handshake_deinit(&s->hs);
	cr_expect_eq(wg_index_table_count(s->table), 0, "index table empty at teardown");
	wg_index_table_free(s->table);
	wg_static_identity_clear(&s->id);
}

static void setup(void)
{
	uint8_t apub[32], bpub[32], priv[32];

	cr_assert_eq(wg_crypto_init(), 0);
	unhex(priv, 32, ALICE);
	wg_dh_pubkey(apub, priv);
	unhex(priv, 32, BOB);
	wg_dh_pubkey(bpub, priv);
	side_init(&a, ALICE, bpub, NULL);
	side_init(&b, BOB, apub, NULL);
}

static void teardown(void)
{
	side_fini(&a);
	side_fini(&b);
}

TestSuite(wg_noise, .init = setup, .fini = teardown);

/* initiator i, responder r: one full handshake at time now; returns 0 or the
 * first error */
static int handshake(struct side *i, struct side *r, uint64_t wall, uint64_t now)
{
	struct wg_msg_initiation init;
	struct wg_msg_response resp;
	struct wg_handshake *hs;
	int rc;

	rc = wg_noise_create_initiation(&i->hs, &init, wall);
	if (rc)
		return rc;
	rc = wg_noise_consume_initiation(&init, &r->id, lookup, r, now, &hs);
	if (rc)
		return rc;
	cr_assert_eq(hs, &r->hs);
	rc = wg_noise_create_response(&r->hs, &resp);
	if (rc)
		return rc;
	rc = wg_noise_begin_session(&r->hs, &r->kps, now, NULL);
	if (rc)
		return rc;
	rc = wg_noise_consume_response(&resp, &i->id, i->table, &hs);
	if (rc)
		return rc;
	cr_assert_eq(hs, &i->hs);
	return wg_noise_begin_session(&i->hs, &i->kps, now, NULL);
}

/* encrypt msg with from's current session, deliver to `to` as the device
 * would (index lookup, decrypt, confirm), return the decrypt status */
static int send_data(struct side *from, struct side *to, const char *msg, uint64_t now)
{
	uint8_t buf[16 + 64 + 16];
	size_t n, len = strlen(msg), plain;
	struct wg_keypair *kp, *rk;
	int rc;

	kp = wg_keypairs_current(&from->kps);
	if (!kp)
		return -ENOKEY;
	memcpy(buf + WG_DATA_HEADROOM, msg, len);
	rc = wg_noise_encrypt(kp, buf, len, sizeof(buf), 1420, now, &n);
	wg_keypair_put(kp);
	if (rc)
		return rc;
	cr_assert_eq(wg_msg_parse(buf, n), WG_MSG_DATA);
	rk = wg_index_lookup_keypair(to->table, wg_le32_get(buf + 4));
	cr_assert(rk, "receiver index maps to a keypair");
	rc = wg_noise_decrypt(rk, buf, n, now, &plain);
	if (rc == 0) {
		wg_keypairs_received_with(&to->kps, rk);
		cr_expect_geq(plain, len);
		cr_expect_eq(plain % 16, 0, "padded to 16");
		cr_expect_eq(memcmp(buf + 16, msg, len), 0);
	}
	wg_keypair_put(rk);
	return rc;
}

Test(wg_noise, handshake_then_data_both_ways)
{
	cr_assert_eq(wg_handshake_get_state(&a.hs), WG_HS_ZEROED);
	cr_assert_eq(handshake(&a, &b, WALL, T0), 0);
	cr_expect_eq(wg_handshake_get_state(&a.hs), WG_HS_ZEROED);
	cr_expect_eq(wg_handshake_get_state(&b.hs), WG_HS_ZEROED);

	/* the responder holds its session in "next" until the initiator uses it */
	cr_expect_null(b.kps.current);
	cr_expect_not_null(b.kps.next);
	cr_expect_eq(send_data(&b, &a, "too early", T0), -ENOKEY);

	cr_expect_eq(send_data(&a, &b, "hello from A", T0), 0);
	cr_expect_not_null(b.kps.current);
	cr_expect_null(b.kps.next);
	cr_expect_eq(send_data(&b, &a, "hello from B", T0), 0);
	cr_expect_eq(send_data(&a, &b, "", T0), 0, "keepalive");

	/* keys match crosswise, indices point at each other */
	cr_expect_eq(memcmp(a.kps.current->send_key, b.kps.current->recv_key, 32), 0);
	cr_expect_eq(memcmp(a.kps.current->recv_key, b.kps.current->send_key, 32), 0);
	cr_expect_eq(a.kps.current->remote_index, b.kps.current->entry.index);
	cr_expect_eq(b.kps.current->remote_index, a.kps.current->entry.index);
	cr_expect(a.kps.current->initiator);
	cr_expect_not(b.kps.current->initiator);
}

Test(wg_noise, handshake_with_psk)
{
	uint8_t psk[32];

	memset(psk, 0x42, sizeof(psk));
	wg_handshake_set_psk(&a.hs, psk);
	wg_handshake_set_psk(&b.hs, psk);
	cr_assert_eq(handshake(&a, &b, WALL, T0), 0);
	cr_expect_eq(send_data(&a, &b, "with psk", T0), 0);
	cr_expect_eq(send_data(&b, &a, "with psk back", T0), 0);
}

Test(wg_noise, psk_mismatch_rejected)
{
	uint8_t psk[32];

	memset(psk, 0x42, sizeof(psk));
	wg_handshake_set_psk(&a.hs, psk);
	cr_expect_eq(handshake(&a, &b, WALL, T0), -EBADMSG,
		     "the initiator cannot open a response made with another PSK");
	cr_expect_eq(wg_handshake_get_state(&a.hs), WG_HS_CREATED_INITIATION,
		     "a bad response leaves the initiation in flight");
}

Test(wg_noise, wrong_keys_and_tampering)
{
	struct wg_msg_initiation init, bad;
	struct wg_handshake *hs;
	struct side c;
	uint8_t cpub[32], priv[32];

	cr_assert_eq(wg_noise_create_initiation(&a.hs, &init, WALL), 0);

	/* a third party with another static key cannot open it */
	memset(priv, 7, 32);
	unhex(cpub, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	side_init(&c, "0707070707070707070707070707070707070707070707070707070707070707", cpub, NULL);
	cr_expect_eq(wg_noise_consume_initiation(&init, &c.id, lookup, &c, T0, &hs), -EBADMSG);
	cr_expect_null(hs);
	side_fini(&c);

	/* each encrypted field and the ephemeral key are authenticated */
	size_t offsets[] = { 8, 8 + 32, 8 + 32 + 47, 8 + 32 + 48, 8 + 32 + 48 + 27 };
	for (size_t k = 0; k < sizeof(offsets) / sizeof(offsets[0]); k++) {
		bad = init;
		((uint8_t *)&bad)[offsets[k]] ^= 0x01;
		cr_expect_eq(wg_noise_consume_initiation(&bad, &b.id, lookup, &b, T0, &hs), -EBADMSG,
			     "flip at offset %zu", offsets[k]);
	}
	/* a known key that is not a configured peer */
	cr_expect_eq(wg_noise_consume_initiation(&init, &b.id, lookup, &a, T0, &hs), -ENOENT);

	cr_expect_eq(wg_noise_consume_initiation(&init, &b.id, lookup, &b, T0, &hs), 0);
	cr_expect_eq(wg_handshake_get_state(&b.hs), WG_HS_CONSUMED_INITIATION);
}

Test(wg_noise, tampered_response_and_unknown_index)
{
	struct wg_msg_initiation init;
	struct wg_msg_response resp, bad;
	struct wg_handshake *hs;

	cr_assert_eq(wg_noise_create_initiation(&a.hs, &init, WALL), 0);
	cr_assert_eq(wg_noise_consume_initiation(&init, &b.id, lookup, &b, T0, &hs), 0);
	cr_assert_eq(wg_noise_create_response(&b.hs, &resp), 0);
	cr_expect_eq(wg_noise_create_response(&b.hs, &bad), -EINVAL, "once per initiation");

	bad = resp;
	bad.encrypted_nothing[3] ^= 0x80;
	cr_expect_eq(wg_noise_consume_response(&bad, &a.id, a.table, &hs), -EBADMSG);
	bad = resp;
	bad.unencrypted_ephemeral[0] ^= 0x80;
	cr_expect_eq(wg_noise_consume_response(&bad, &a.id, a.table, &hs), -EBADMSG);
	bad = resp;
	wg_le32_put(&bad.receiver_index, wg_le32_get(&resp.receiver_index) + 1);
	cr_expect_eq(wg_noise_consume_response(&bad, &a.id, a.table, &hs), -ENOENT);

	cr_expect_eq(wg_noise_consume_response(&resp, &a.id, a.table, &hs), 0);
	cr_expect_eq(wg_noise_consume_response(&resp, &a.id, a.table, &hs), -ENOENT,
		     "a response is consumed once");
	cr_expect_eq(wg_noise_begin_session(&a.hs, &a.kps, T0, NULL), 0);
	cr_expect_eq(wg_noise_begin_session(&a.hs, &a.kps, T0, NULL), -EINVAL);
}

Test(wg_noise, initiation_replay_and_flood)
{
	struct wg_msg_initiation first, second;
	struct wg_handshake *hs;

	cr_assert_eq(wg_noise_create_initiation(&a.hs, &first, WALL), 0);
	cr_assert_eq(wg_noise_consume_initiation(&first, &b.id, lookup, &b, T0, &hs), 0);
	/* the same bytes again, even much later: refused by the TAI64N timestamp */
	cr_expect_eq(wg_noise_consume_initiation(&first, &b.id, lookup, &b,
						 T0 + 10 * WG_NSEC_PER_SEC, &hs), -EALREADY);
	/* a fresh initiation with an older wall clock: also refused */
	cr_assert_eq(wg_noise_create_initiation(&a.hs, &second, WALL - WG_NSEC_PER_SEC), 0);
	cr_expect_eq(wg_noise_consume_initiation(&second, &b.id, lookup, &b,
						 T0 + 10 * WG_NSEC_PER_SEC, &hs), -EALREADY);
	/* newer timestamp but within 1/50 s of the last accepted one: flood */
	cr_assert_eq(wg_noise_create_initiation(&a.hs, &second, WALL + WG_NSEC_PER_SEC), 0);
	cr_expect_eq(wg_noise_consume_initiation(&second, &b.id, lookup, &b,
						 T0 + WG_NSEC_PER_SEC / 100, &hs), -EBUSY);
	cr_expect_eq(wg_noise_consume_initiation(&second, &b.id, lookup, &b,
						 T0 + WG_NSEC_PER_SEC / 10, &hs), 0);
}

Test(wg_noise, data_tamper_replay_and_wrong_session)
{
	uint8_t buf[16 + 32 + 16], copy[sizeof(buf)];
	struct wg_keypair *kp, *rk;
	size_t n, plain;

	cr_assert_eq(handshake(&a, &b, WALL, T0), 0);
	kp = wg_keypairs_current(&a.kps);
	memcpy(buf + 16, "0123456789abcdef0123", 20);
	cr_assert_eq(wg_noise_encrypt(kp, buf, 20, sizeof(buf), 0, T0, &n), 0);
	cr_expect_eq(n, 16 + 32 + 16, "20 bytes padded to 32");
	cr_expect_eq(wg_le64_get(buf + 8), 0, "first counter is 0");
	memcpy(copy, buf, n);
	rk = wg_index_lookup_keypair(b.table, wg_le32_get(buf + 4));
	cr_assert(rk);

	buf[20] ^= 1;
	cr_expect_eq(wg_noise_decrypt(rk, buf, n, T0, &plain), -EBADMSG);
	memcpy(buf, copy, n);
	wg_le64_put(buf + 8, 1);	/* the counter is the nonce: changing it breaks the tag */
	cr_expect_eq(wg_noise_decrypt(rk, buf, n, T0, &plain), -EBADMSG);
	memcpy(buf, copy, n);
	cr_expect_eq(wg_noise_decrypt(rk, buf, n - 1, T0, &plain), -EBADMSG);
	cr_expect_eq(wg_noise_decrypt(rk, buf, 31, T0, &plain), -EINVAL);
	memcpy(buf, copy, n);
	cr_expect_eq(wg_noise_decrypt(rk, buf, n, T0, &plain), 0);
	cr_expect_eq(plain, 32);
	memcpy(buf, copy, n);
	cr_expect_eq(wg_noise_decrypt(rk, buf, n, T0, &plain), -EALREADY, "replayed packet");

	/* the initiator's own receive session does not open its sent packets */
	memcpy(buf, copy, n);
	cr_expect_eq(wg_noise_decrypt(kp, buf, n, T0, &plain), -EBADMSG);
	wg_keypair_put(rk);
	wg_keypair_put(kp);
}

Test(wg_noise, padding_mtu_and_room)
{
	uint8_t buf[16 + 1440 + 16];
	struct wg_keypair *kp;
	size_t n;

	cr_assert_eq(handshake(&a, &b, WALL, T0), 0);
	kp = wg_keypairs_current(&a.kps);
	memset(buf, 0xaa, sizeof(buf));
	cr_expect_eq(wg_noise_encrypt(kp, buf, 0, sizeof(buf), 1420, T0, &n), 0);
	cr_expect_eq(n, 32, "keepalive");
	cr_expect_eq(wg_noise_encrypt(kp, buf, 1, sizeof(buf), 1420, T0, &n), 0);
	cr_expect_eq(n, 48);
	cr_expect_eq(wg_noise_encrypt(kp, buf, 1419, sizeof(buf), 1420, T0, &n), 0);
	cr_expect_eq(n, 16 + 1420 + 16, "padding stops at the MTU");
	cr_expect_eq(wg_noise_encrypt(kp, buf, 1419, sizeof(buf), 0, T0, &n), 0);
	cr_expect_eq(n, 16 + 1424 + 16, "no MTU: plain multiple of 16");
	cr_expect_eq(wg_noise_encrypt(kp, buf, 17, 16 + 17 + 16, 1420, T0, &n), -ENOBUFS,
		     "no tailroom for padding");
	cr_expect_eq(wg_noise_encrypt(kp, buf, 32, 16 + 32 + 16, 1420, T0, &n), 0);
	wg_keypair_put(kp);
}

Test(wg_noise, batch_roundtrip_out_of_order)
{
	enum { N = 8 };
	uint8_t bufs[N][16 + 64 + 16];
	struct wg_pkt tx[N], rx[N];
	struct wg_keypair *kp, *rk;

	cr_assert_eq(handshake(&a, &b, WALL, T0), 0);
	kp = wg_keypairs_current(&a.kps);
	for (int i = 0; i < N; i++) {
		memset(bufs[i] + 16, 'a' + i, 10 + i);
		tx[i] = (struct wg_pkt){ .data = bufs[i], .len = 10 + (size_t)i, .cap = sizeof(bufs[i]) };
	}
	tx[3].cap = 20;		/* too small: only this one fails */
	cr_expect_eq(wg_noise_encrypt_batch(kp, tx, N, 1420, T0), N - 1);
	cr_expect_eq(tx[3].status, -ENOBUFS);

	rk = wg_index_lookup_keypair(b.table, kp->remote_index);
	cr_assert(rk);
	/* deliver in reverse order, with packet 5 twice */
	size_t m = 0;
	for (int i = N - 1; i >= 0; i--) {
		if (i == 3)
			continue;
		rx[m++] = (struct wg_pkt){ .data = bufs[i], .len = tx[i].len, .cap = sizeof(bufs[i]) };
	}
	uint8_t dup[sizeof(bufs[5])];
	memcpy(dup, bufs[5], sizeof(dup));
	rx[m++] = (struct wg_pkt){ .data = dup, .len = tx[5].len, .cap = sizeof(dup) };
	cr_expect_eq(wg_noise_decrypt_batch(rk, rx, m, T0), m - 1);
	cr_expect_eq(rx[m - 1].status, -EALREADY, "the duplicate inside one batch");
	for (size_t i = 0; i + 1 < m; i++) {
		cr_expect_eq(rx[i].status, 0);
		cr_expect_eq(rx[i].len % 16, 0);
	}
	for (int i = 0; i < N; i++) {
		if (i == 3)
			continue;
		for (int j = 0; j < 10 + i; j++)
			cr_expect_eq(bufs[i][16 + j], 'a' + i, "packet %d byte %d", i, j);
		for (size_t j = 10 + (size_t)i; j < ((10 + (size_t)i + 15) & ~(size_t)15); j++)
			cr_expect_eq(bufs[i][16 + j], 0, "packet %d padding", i);
	}
	wg_keypair_put(rk);
	wg_keypair_put(kp);
}

Test(wg_noise, reject_after_messages_and_time)
{
	uint8_t buf[64];
	struct wg_keypair *kp, *rk;
	size_t n, plain;

	cr_assert_eq(handshake(&a, &b, WALL, T0), 0);
	kp = wg_keypairs_current(&a.kps);
	rk = wg_index_lookup_keypair(b.table, kp->remote_index);

	cr_expect_not(wg_keypair_should_rekey_after_send(kp, T0));
	cr_expect(wg_keypair_should_rekey_after_send(kp, T0 + WG_REKEY_AFTER_TIME_NS));
	cr_expect_not(wg_keypair_should_rekey_after_send(rk, T0 + WG_REKEY_AFTER_TIME_NS),
		      "the responder does not rekey on time");
	cr_expect_not(wg_keypair_should_rekey_after_recv(kp, T0 + WG_REKEY_AFTER_TIME_NS));
	cr_expect(wg_keypair_should_rekey_after_recv(kp, T0 + WG_REKEY_ON_RECEIVE_AGE_NS));

	/* the last usable counter, then exhaustion */
	atomic_store(&kp->send_counter, WG_REJECT_AFTER_MESSAGES - 1);
	cr_expect(wg_keypair_should_rekey_after_send(kp, T0));
	cr_expect_eq(wg_noise_encrypt(kp, buf, 0, sizeof(buf), 0, T0, &n), 0);
	cr_expect_eq(wg_le64_get(buf + 8), WG_REJECT_AFTER_MESSAGES - 1);
	cr_expect_eq(wg_noise_decrypt(rk, buf, n, T0, &plain), 0);
	cr_expect_eq(wg_noise_encrypt(kp, buf, 0, sizeof(buf), 0, T0, &n), -EKEYEXPIRED);
	cr_expect_not(wg_keypair_can_send(kp, T0));

	/* REJECT_AFTER_TIME ends the session for both directions */
	struct wg_keypair *bk;
	cr_assert_eq(send_data(&a, &b, "x", T0), -EKEYEXPIRED);
	bk = wg_keypairs_current(&b.kps);
	cr_expect_null(bk, "b never received on the new session: nothing current");
	rk->created_ns = T0;
	atomic_store(&rk->send_valid, true);
	cr_expect_not(wg_keypair_can_send(rk, T0 + WG_REJECT_AFTER_TIME_NS));
	cr_expect_eq(wg_noise_encrypt(rk, buf, 0, sizeof(buf), 0, T0 + WG_REJECT_AFTER_TIME_NS, &n),
		     -EKEYEXPIRED);
	cr_expect_eq(wg_noise_encrypt(rk, buf, 0, sizeof(buf), 0, T0 + WG_REJECT_AFTER_TIME_NS - 1, &n), 0);
	cr_expect_eq(wg_noise_decrypt(kp, buf, n, T0 + WG_REJECT_AFTER_TIME_NS, &plain), -EKEYEXPIRED);
	wg_keypair_put(rk);
	wg_keypair_put(kp);
}

Test(wg_noise, rekey_rotation_and_simultaneous)
{
	struct wg_keypair *first;
	uint32_t first_index;

	cr_assert_eq(handshake(&a, &b, WALL, T0), 0);
	cr_assert_eq(send_data(&a, &b, "1", T0), 0);
	first = wg_keypairs_current(&a.kps);
	first_index = first->entry.index;

	/* B initiates the next handshake: B's new session is current at once,
	 * A's waits in next; old sessions still decrypt in-flight packets */
	cr_assert_eq(handshake(&b, &a, WALL + WG_NSEC_PER_SEC, T0 + WG_NSEC_PER_SEC), 0);
	cr_expect_eq(a.kps.current, first);
	cr_expect_not_null(a.kps.next);
	cr_expect_eq(send_data(&b, &a, "2", T0 + WG_NSEC_PER_SEC), 0);
	cr_expect_neq(a.kps.current, first, "next promoted on first receive");
	cr_expect_eq(a.kps.previous, first);
	cr_expect_eq(send_data(&a, &b, "3", T0 + WG_NSEC_PER_SEC), 0);
	cr_expect_eq(wg_index_lookup_peer(a.table, first_index, 1U << WG_INDEX_KEYPAIR), &a.peer_tag);
	wg_keypair_put(first);

	/* a third handshake drops the oldest session from the table */
	cr_assert_eq(handshake(&a, &b, WALL + 2 * WG_NSEC_PER_SEC, T0 + 2 * WG_NSEC_PER_SEC), 0);
	cr_expect_null(wg_index_lookup_peer(a.table, first_index, ~0U));
	cr_expect_eq(wg_index_table_count(a.table), 2, "current and previous");
	cr_expect_eq(send_data(&a, &b, "3b", T0 + 2 * WG_NSEC_PER_SEC), 0);

	/* both sides initiate at once: each answers the other; both complete */
	struct wg_msg_initiation ia, ib;
	struct wg_msg_response ra, rb;
	struct wg_handshake *hs;
	uint64_t t = T0 + 3 * WG_NSEC_PER_SEC, w = WALL + 3 * WG_NSEC_PER_SEC;
	cr_assert_eq(wg_noise_create_initiation(&a.hs, &ia, w), 0);
	cr_assert_eq(wg_noise_create_initiation(&b.hs, &ib, w), 0);
	cr_assert_eq(wg_noise_consume_initiation(&ib, &a.id, lookup, &a, t, &hs), 0);
	cr_assert_eq(wg_noise_consume_initiation(&ia, &b.id, lookup, &b, t, &hs), 0);
	cr_assert_eq(wg_noise_create_response(&a.hs, &ra), 0);
	cr_assert_eq(wg_noise_begin_session(&a.hs, &a.kps, t, NULL), 0);
	cr_assert_eq(wg_noise_create_response(&b.hs, &rb), 0);
	cr_assert_eq(wg_noise_begin_session(&b.hs, &b.kps, t, NULL), 0);
	/* the initiations were superseded, so the responses find no handshake */
	cr_expect_eq(wg_noise_consume_response(&ra, &b.id, b.table, &hs), -ENOENT);
	cr_expect_eq(wg_noise_consume_response(&rb, &a.id, a.table, &hs), -ENOENT);
	/* the confirmed sessions keep working; the new ones wait in next */
	cr_expect_not_null(a.kps.next);
	cr_expect_not_null(b.kps.next);
	cr_expect_eq(send_data(&a, &b, "4", t), 0);
	cr_expect_eq(send_data(&b, &a, "5", t), 0);
}

Test(wg_noise, no_identity_and_zero_dh)
{
	struct wg_msg_initiation init;
	struct wg_handshake hs;
	struct wg_static_identity none = { 0 };
	uint8_t zero[32] = { 0 };

	cr_expect_eq(wg_static_identity_set(&none, zero), 0);
	cr_expect_not(none.has_identity);
	cr_assert_eq(wg_handshake_init(&hs, &none, a.table, b.id.pub, NULL, NULL), 0);
	cr_expect_eq(wg_noise_create_initiation(&hs, &init, WALL), -ENOKEY);
	wg_handshake_deinit(&hs);
	/* a peer whose key is a low-order point gives an all-zero static DH */
	cr_assert_eq(wg_handshake_init(&hs, &a.id, a.table, zero, NULL, NULL), 0);
	cr_expect_eq(wg_noise_create_initiation(&hs, &init, WALL), -ENOKEY);
	wg_handshake_deinit(&hs);
	cr_expect_eq(wg_noise_create_initiation(&a.hs, &init, WALL), 0);
	wg_handshake_clear(&a.hs);
	cr_expect_eq(wg_handshake_get_state(&a.hs), WG_HS_ZEROED);
	cr_expect_eq(wg_index_table_count(a.table), 0);
}

/* A handshake initiation made by wireguard-go v0.0.20220316 (Debian 12),
 * captured on a loopback socket in a private network namespace: wireguard-go
 * had private key 0x42 * 32 (clamped: `wg pubkey` gives
 * EyxEK+AQ+9V+cmAzKKp25x/MwVA6riGTJ9FNnJmT9HI=) and one peer, the public key
 * of private key 0x21 * 32 (fTSkgV+muYJTXmCvO9m0lVaBYIDxZB/4HSt8iugmikQ=);
 * a ping into the tunnel made it initiate. Our responder must accept it. */
static const char *WGGO_INITIATION =
	"01000000cc7f5f4b6350bcd2fb5f6d7b5221c6766d21ac4b31e0e48e83b7b06b"
	"6bd55f282bf21e730c046d45938d03ccc49cc0abe4a5bedeae002f48925d89d0"
	"021de18e8bf52292f4d02c559b30595f997bb878079db4cfd1cb6e0a609075bb"
	"b5505d96bf5bb17e2f20d7fc353eed5b0518de070602fd924f97f4c67719d400"
	"cb229ccc00000000000000000000000000000000";

Test(wg_noise, consume_wireguard_go_initiation)
{
	struct wg_msg_initiation init, bad;
	struct wg_msg_response resp;
	struct wg_cookie_checker checker;
	struct wg_handshake *hs;
	union sockaddr_any src;
	struct side c;
	uint8_t go_priv[32], go_pub[32];
	char b64[WG_KEY_B64_LEN];

	memset(go_priv, 0x42, 32);
	wg_key_clamp(go_priv);
	wg_dh_pubkey(go_pub, go_priv);
	wg_key_to_base64(b64, go_pub);
	cr_assert_str_eq(b64, "EyxEK+AQ+9V+cmAzKKp25x/MwVA6riGTJ9FNnJmT9HI=");
	side_init(&c, "2121212121212121212121212121212121212121212121212121212121212121", go_pub, NULL);
	wg_key_to_base64(b64, c.id.pub);
	cr_assert_str_eq(b64, "fTSkgV+muYJTXmCvO9m0lVaBYIDxZB/4HSt8iugmikQ=");

	unhex((uint8_t *)&init, sizeof(init), WGGO_INITIATION);
	cr_assert_eq(wg_msg_parse((uint8_t *)&init, sizeof(init)), WG_MSG_INITIATION);
	wg_cookie_checker_init(&checker, c.id.pub);
	addr_parse("127.0.0.1:51820", &src);
	cr_expect_eq(wg_cookie_validate(&checker, (uint8_t *)&init, sizeof(init), &src, false, T0),
		     WG_COOKIE_VALID_MAC_NO_COOKIE, "wireguard-go's mac1");
	wg_cookie_checker_deinit(&checker);

	bad = init;
	bad.encrypted_timestamp[0] ^= 1;
	cr_expect_eq(wg_noise_consume_initiation(&bad, &c.id, lookup, &c, T0, &hs), -EBADMSG);
	cr_assert_eq(wg_noise_consume_initiation(&init, &c.id, lookup, &c, T0, &hs), 0);
	cr_expect_eq(hs, &c.hs);
	cr_expect_eq(wg_handshake_remote_index(&c.hs), 0x4b5f7fcc);
	/* the decrypted TAI64N: label 2^62 + 10 + a Unix time after 2020 */
	uint64_t secs = 0;
	for (int i = 0; i < 8; i++)
		secs = secs << 8 | c.hs.latest_timestamp[i];
	cr_expect_gt(secs, 0x400000000000000aULL + 1577836800ULL);
	cr_expect_lt(secs, 0x400000000000000aULL + 4102444800ULL);
	cr_expect_eq(wg_noise_consume_initiation(&init, &c.id, lookup, &c, T0 + WG_NSEC_PER_SEC, &hs),
		     -EALREADY, "captured initiation replayed");
	cr_expect_eq(wg_noise_create_response(&c.hs, &resp), 0);
	side_fini(&c);
}
