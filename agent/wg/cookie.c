/* cookie: mac1/mac2 and the cookie reply (whitepaper 5.3, 5.4.4, 5.4.7). */
#include "cookie.h"

#include <errno.h>
#include <string.h>

#include "crypto.h"

/* offsets of mac1 and mac2 from the end of a handshake message */
#define MACS_LEN  sizeof(struct wg_msg_macs)
#define MAC2_LEN  WG_COOKIE_LEN

static void label_key(uint8_t out[WG_HASH_LEN], const char *label, const uint8_t pub[WG_KEY_LEN])
{
	wg_hash2(out, label, strlen(label), pub, WG_KEY_LEN);
}

static bool is_handshake(const uint8_t *msg, size_t len)
{
	return (len == WG_MSG_INITIATION_LEN && msg[0] == WG_MSG_INITIATION) ||
	       (len == WG_MSG_RESPONSE_LEN && msg[0] == WG_MSG_RESPONSE);
}

/* mac1 = MAC(HASH(LABEL_MAC1 || S_pub), msg up to mac1) */
static void compute_mac1(uint8_t out[WG_COOKIE_LEN], const uint8_t *msg, size_t len,
			 const uint8_t key[WG_HASH_LEN])
{
	wg_mac(out, key, WG_HASH_LEN, msg, len - MACS_LEN);
}

/* mac2 = MAC(cookie, msg up to mac2) */
static void compute_mac2(uint8_t out[WG_COOKIE_LEN], const uint8_t *msg, size_t len,
			 const uint8_t cookie[WG_COOKIE_LEN])
{
	wg_mac(out, cookie, WG_COOKIE_LEN, msg, len - MAC2_LEN);
}

void wg_cookie_checker_init(struct wg_cookie_checker *c, const uint8_t *local_pub)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	wg_cookie_checker_set_key(c, local_pub);
}

void wg_cookie_checker_set_key(struct wg_cookie_checker *c, const uint8_t *local_pub)
{
	pthread_mutex_lock(&c->lock);
	if (local_pub) {
		label_key(c->mac1_key, WG_LABEL_MAC1, local_pub);
		label_key(c->cookie_key, WG_LABEL_COOKIE, local_pub);
		c->has_key = true;
	} else {
		wg_wipe(c->mac1_key, sizeof(c->mac1_key));
		wg_wipe(c->cookie_key, sizeof(c->cookie_key));
		c->has_key = false;
	}
	pthread_mutex_unlock(&c->lock);
}

void wg_cookie_checker_deinit(struct wg_cookie_checker *c)
{
	pthread_mutex_destroy(&c->lock);
	wg_wipe(c, sizeof(*c));
}

/* tau = MAC(R_m, A_m): A_m is the source IP (4 or 16 bytes) then the port in
 * network order. R_m is renewed when older than COOKIE_SECRET_MAX_AGE.
 * Caller holds c->lock. */
static void make_cookie(struct wg_cookie_checker *c, uint8_t tau[WG_COOKIE_LEN],
			const union sockaddr_any *src, uint64_t now_ns)
{
	uint8_t a[18];
	const uint8_t *ip;
	size_t n = 0;
	uint16_t port;

	if (!c->has_secret || now_ns - c->secret_birth_ns >= WG_COOKIE_SECRET_MAX_AGE_NS) {
		wg_random(c->secret, sizeof(c->secret));
		c->secret_birth_ns = now_ns;
		c->has_secret = true;
	}
	ip = addr_ip_bytes(src, &n);
	if (!ip || n > 16)
		n = 0;
	else
		memcpy(a, ip, n);
	port = htons(addr_port(src));
	memcpy(a + n, &port, sizeof(port));
	wg_mac(tau, c->secret, sizeof(c->secret), a, n + sizeof(port));
	wg_wipe(a, sizeof(a));
}

enum wg_cookie_mac_state wg_cookie_validate(struct wg_cookie_checker *c,
					    const uint8_t *msg, size_t len,
					    const union sockaddr_any *src,
					    bool check_cookie, uint64_t now_ns)
{
	enum wg_cookie_mac_state ret = WG_COOKIE_INVALID_MAC;
	const struct wg_msg_macs *macs;
	uint8_t computed[WG_COOKIE_LEN];
	uint8_t tau[WG_COOKIE_LEN];

	if (!is_handshake(msg, len))
		return ret;
	macs = (const struct wg_msg_macs *)(msg + len - MACS_LEN);

	pthread_mutex_lock(&c->lock);
	if (!c->has_key)
		goto out;
	compute_mac1(computed, msg, len, c->mac1_key);
	if (!wg_ct_eq(computed, macs->mac1, WG_COOKIE_LEN))
		goto out;
	ret = WG_COOKIE_VALID_MAC_NO_COOKIE;
	if (!check_cookie)
		goto out;
	make_cookie(c, tau, src, now_ns);
	compute_mac2(computed, msg, len, tau);
	if (wg_ct_eq(computed, macs->mac2, WG_COOKIE_LEN))
		ret = WG_COOKIE_VALID_MAC_WITH_COOKIE;
out:
	pthread_mutex_unlock(&c->lock);
	wg_wipe(tau, sizeof(tau));
	return ret;
}

int wg_cookie_create_reply(struct wg_cookie_checker *c, struct wg_msg_cookie_reply *out,
			   const uint8_t *msg, size_t len,
			   const union sockaddr_any *src, uint64_t now_ns)
{
	const struct wg_msg_macs *macs;
	uint8_t tau[WG_COOKIE_LEN];
	int rc = 0;

	if (!is_handshake(msg, len))
		return -EINVAL;
	macs = (const struct wg_msg_macs *)(msg + len - MACS_LEN);

	memset(out, 0, sizeof(*out));
	out->header.type = WG_MSG_COOKIE_REPLY;
	/* both handshake messages carry their sender index at offset 4 */
	memcpy(&out->receiver_index, msg + 4, sizeof(out->receiver_index));
	wg_random(out->nonce, sizeof(out->nonce));

	pthread_mutex_lock(&c->lock);
	if (!c->has_key) {
		rc = -EINVAL;
		goto out;
	}
	make_cookie(c, tau, src, now_ns);
	/* msg.cookie = XAEAD(HASH(LABEL_COOKIE || S_pub_m), nonce, tau, mac1) */
	wg_xaead_encrypt(out->encrypted_cookie, tau, sizeof(tau), macs->mac1, WG_COOKIE_LEN,
			 out->nonce, c->cookie_key);
out:
	pthread_mutex_unlock(&c->lock);
	wg_wipe(tau, sizeof(tau));
	return rc;
}

void wg_cookie_maker_init(struct wg_cookie_maker *m, const uint8_t remote_pub[WG_KEY_LEN])
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	label_key(m->mac1_key, WG_LABEL_MAC1, remote_pub);
	label_key(m->cookie_key, WG_LABEL_COOKIE, remote_pub);
}

void wg_cookie_maker_deinit(struct wg_cookie_maker *m)
{
	pthread_mutex_destroy(&m->lock);
	wg_wipe(m, sizeof(*m));
}

void wg_cookie_add_macs(struct wg_cookie_maker *m, uint8_t *msg, size_t len, uint64_t now_ns)
{
	struct wg_msg_macs *macs = (struct wg_msg_macs *)(msg + len - MACS_LEN);

	pthread_mutex_lock(&m->lock);
	compute_mac1(macs->mac1, msg, len, m->mac1_key);
	memcpy(m->last_mac1_sent, macs->mac1, WG_COOKIE_LEN);
	m->has_sent_mac1 = true;

	if (m->has_cookie &&
	    now_ns - m->cookie_birth_ns < WG_COOKIE_SECRET_MAX_AGE_NS - WG_COOKIE_SECRET_LATENCY_NS)
		compute_mac2(macs->mac2, msg, len, m->cookie);
	else
		memset(macs->mac2, 0, WG_COOKIE_LEN);
	pthread_mutex_unlock(&m->lock);
}

int wg_cookie_consume_reply(struct wg_cookie_maker *m, const struct wg_msg_cookie_reply *msg,
			    uint64_t now_ns)
{
	uint8_t cookie[WG_COOKIE_LEN];
	int rc;

	pthread_mutex_lock(&m->lock);
	if (!m->has_sent_mac1) {
		rc = -ENOENT;
		goto out;
	}
	rc = wg_xaead_decrypt(cookie, msg->encrypted_cookie, sizeof(msg->encrypted_cookie),
			      m->last_mac1_sent, WG_COOKIE_LEN, msg->nonce, m->cookie_key);
	if (rc < 0)
		goto out;
	memcpy(m->cookie, cookie, WG_COOKIE_LEN);
	m->cookie_birth_ns = now_ns;
	m->has_cookie = true;
	m->has_sent_mac1 = false;
out:
	pthread_mutex_unlock(&m->lock);
	wg_wipe(cookie, sizeof(cookie));
	return rc;
}
