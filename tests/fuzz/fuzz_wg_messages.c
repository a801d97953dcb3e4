/* libFuzzer target: WireGuard's message parser and everything that consumes
 * an outside datagram after it: mac1/mac2 check, cookie reply creation and
 * consumption, consume_initiation and consume_response with fixed identities,
 * transport decryption with an established session, and the allowed-IPs
 * lookup of the decrypted packet. Besides the raw input, the input is also
 * XORed onto valid messages made at start-up, so mutations explore messages
 * that are close to valid (an all-zero input is the valid message itself). */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "agent/wg/allowedips.h"
#include "agent/wg/cookie.h"
#include "agent/wg/crypto.h"
#include "agent/wg/messages.h"
#include "agent/wg/noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct side {
	struct wg_static_identity id;
	struct wg_index_table *table;
	struct wg_handshake hs;
	struct wg_keypairs kps;
	struct wg_cookie_checker checker;
	struct wg_cookie_maker maker;
};

static struct side a, b;
static struct wg_msg_initiation tmpl_init;
static struct wg_msg_response tmpl_resp;
static struct wg_msg_cookie_reply tmpl_cookie;
static uint8_t tmpl_data[16 + 64 + 16];
static size_t tmpl_data_len;
static struct wg_keypair *b_session;	/* b's receive side of a's session */
static struct wg_allowedips *aips;
static union sockaddr_any src;
static uint64_t now = 1000 * WG_NSEC_PER_SEC;
static int peer_tag;

static struct wg_handshake *lookup(void *ctx, const uint8_t pub[WG_KEY_LEN])
{
	struct side *s = ctx;

	return memcmp(s->hs.remote_static, pub, WG_KEY_LEN) == 0 ? &s->hs : NULL;
}

static void side_init(struct side *s, uint8_t seed, const uint8_t *remote_pub)
{
	uint8_t priv[32];

	memset(priv, seed, sizeof(priv));
	wg_static_identity_set(&s->id, priv);
	s->table = wg_index_table_new();
	wg_keypairs_init(&s->kps);
	wg_cookie_checker_init(&s->checker, s->id.pub);
	if (remote_pub) {
		wg_handshake_init(&s->hs, &s->id, s->table, remote_pub, NULL, &peer_tag);
		wg_cookie_maker_init(&s->maker, remote_pub);
	}
}

static void init_once(void)
{
	struct wg_handshake *hs;
	struct wg_keypair *kp;
	uint8_t net[4] = { 10, 0, 0, 0 };
	size_t n;

	wg_crypto_init();
	side_init(&a, 0x11, NULL);
	side_init(&b, 0x22, a.id.pub);
	wg_handshake_init(&a.hs, &a.id, a.table, b.id.pub, NULL, &peer_tag);
	wg_cookie_maker_init(&a.maker, b.id.pub);
	addr_parse("192.0.2.1:51820", &src);

	/* a full handshake a -> b, keeping each message as a template */
	wg_noise_create_initiation(&a.hs, &tmpl_init, 1700000000ULL * WG_NSEC_PER_SEC);
	wg_cookie_add_macs(&a.maker, (uint8_t *)&tmpl_init, sizeof(tmpl_init), now);
	wg_noise_consume_initiation(&tmpl_init, &b.id, lookup, &b, now, &hs);
	wg_noise_create_response(&b.hs, &tmpl_resp);
	wg_cookie_add_macs(&b.maker, (uint8_t *)&tmpl_resp, sizeof(tmpl_resp), now);
	wg_noise_begin_session(&b.hs, &b.kps, now, NULL);
	wg_cookie_create_reply(&a.checker, &tmpl_cookie, (uint8_t *)&tmpl_resp,
			       sizeof(tmpl_resp), &src, now);
	wg_noise_consume_response(&tmpl_resp, &a.id, a.table, &hs);
	wg_noise_begin_session(&a.hs, &a.kps, now, NULL);

	kp = wg_keypairs_current(&a.kps);
	memset(tmpl_data + 16, 0, 20);
	tmpl_data[16] = 0x45;
	tmpl_data[16 + 16] = 10;
	wg_noise_encrypt(kp, tmpl_data, 20, sizeof(tmpl_data), 1420, now, &n);
	tmpl_data_len = n;
	b_session = wg_index_lookup_keypair(b.table, kp->remote_index);
	wg_keypair_put(kp);

	aips = wg_allowedips_new();
	wg_allowedips_insert(aips, AF_INET, net, 8, &peer_tag);
}

/* one datagram as the device would handle it */
static void handle(uint8_t *msg, size_t len)
{
	struct wg_handshake *hs;
	size_t plain;

	switch (wg_msg_parse(msg, len)) {
	case WG_MSG_INITIATION:
		wg_cookie_validate(&b.checker, msg, len, &src, msg[4] & 1, now);
		wg_cookie_create_reply(&b.checker, &tmpl_cookie, msg, len, &src, now);
		/* forget the replay state so the deeper paths stay reachable */
		memset(b.hs.latest_timestamp, 0, sizeof(b.hs.latest_timestamp));
		b.hs.has_consumed_initiation = false;
		if (wg_noise_consume_initiation((struct wg_msg_initiation *)msg, &b.id, lookup, &b,
						now, &hs) == 0)
			wg_handshake_clear(hs);
		break;
	case WG_MSG_RESPONSE:
		wg_cookie_validate(&a.checker, msg, len, &src, true, now);
		wg_noise_consume_response((struct wg_msg_response *)msg, &a.id, a.table, &hs);
		break;
	case WG_MSG_COOKIE_REPLY:
		wg_index_lookup_peer(a.table, wg_le32_get(msg + 4), ~0U);
		wg_cookie_add_macs(&a.maker, (uint8_t *)&tmpl_init, sizeof(tmpl_init), now);
		wg_cookie_consume_reply(&a.maker, (struct wg_msg_cookie_reply *)msg, now);
		break;
	case WG_MSG_DATA:
		/* a fresh window each time, so a valid packet decrypts every run */
		pthread_mutex_lock(&b_session->replay_lock);
		wg_replay_init(&b_session->replay);
		pthread_mutex_unlock(&b_session->replay_lock);
		if (wg_noise_decrypt(b_session, msg, len, now, &plain) == 0)
			wg_allowedips_lookup_src(aips, msg + 16, plain);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	static uint8_t buf[2048];
	const uint8_t *tmpl[] = { (uint8_t *)&tmpl_init, (uint8_t *)&tmpl_resp,
				  (uint8_t *)&tmpl_cookie, tmpl_data };
	size_t tlen[] = { sizeof(tmpl_init), sizeof(tmpl_resp), sizeof(tmpl_cookie), 0 };

	if (!ready) {
		init_once();
		ready = 1;
	}
	tlen[3] = tmpl_data_len;
	if (size > sizeof(buf))
		size = sizeof(buf);

	memcpy(buf, data, size);
	handle(buf, size);

	/* the first byte picks a template, the rest is XORed onto it */
	if (size >= 1) {
		size_t k = data[0] % 4, n = tlen[k];

		memcpy(buf, tmpl[k], n);
		for (size_t i = 1; i < size && i - 1 < n; i++)
			buf[i - 1] ^= data[i];
		handle(buf, n);
	}
	return 0;
}
