/* noise: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s for WireGuard (whitepaper 5.4),
 * the index table, keypair rotation and transport data (5.4.6). */
#include "noise.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

/* ---- constants of the construction -------------------------------------- */

static uint8_t initial_chaining_key[WG_HASH_LEN];	/* C_i = HASH(CONSTRUCTION) */
static uint8_t initial_hash[WG_HASH_LEN];		/* H_i = HASH(C_i || IDENTIFIER) */
static pthread_once_t initial_once = PTHREAD_ONCE_INIT;

static void initial_compute(void)
{
	wg_crypto_init();
	wg_hash(initial_chaining_key, WG_CONSTRUCTION, strlen(WG_CONSTRUCTION));
	wg_hash2(initial_hash, initial_chaining_key, WG_HASH_LEN,
		 WG_IDENTIFIER, strlen(WG_IDENTIFIER));
}

/* C := C_i, H := HASH(H_i || S_pub_responder) */
static void handshake_start(uint8_t ck[WG_HASH_LEN], uint8_t h[WG_HASH_LEN],
			    const uint8_t responder_static[WG_KEY_LEN])
{
	pthread_once(&initial_once, initial_compute);
	memcpy(ck, initial_chaining_key, WG_HASH_LEN);
	wg_hash2(h, initial_hash, WG_HASH_LEN, responder_static, WG_KEY_LEN);
}

/* ---- static identity ---------------------------------------------------- */

int wg_static_identity_set(struct wg_static_identity *id, const uint8_t *priv)
{
	if (!priv || wg_is_zero(priv, WG_KEY_LEN)) {
		wg_static_identity_clear(id);
		return 0;
	}
	memcpy(id->priv, priv, WG_KEY_LEN);
	wg_key_clamp(id->priv);
	if (wg_dh_pubkey(id->pub, id->priv) < 0) {
		wg_static_identity_clear(id);
		return -EINVAL;
	}
	id->has_identity = true;
	return 0;
}

void wg_static_identity_clear(struct wg_static_identity *id)
{
	wg_wipe(id, sizeof(*id));
}

/* ---- index table -------------------------------------------------------- */

#define INDEX_BUCKETS (1U << 13)

struct wg_index_table {
	pthread_mutex_t lock;
	size_t count;
	struct wg_index_entry *buckets[INDEX_BUCKETS];
};

static struct wg_index_entry **index_bucket(struct wg_index_table *t, uint32_t index)
{
	/* indices are random, so their low bits spread evenly */
	return &t->buckets[index & (INDEX_BUCKETS - 1)];
}

/* caller holds t->lock */
static struct wg_index_entry *index_find(struct wg_index_table *t, uint32_t index)
{
	for (struct wg_index_entry *e = *index_bucket(t, index); e; e = e->next)
		if (e->index == index)
			return e;
	return NULL;
}

/* caller holds t->lock */
static void index_unlink_locked(struct wg_index_table *t, struct wg_index_entry *e)
{
	struct wg_index_entry **pp;

	if (!e->linked)
		return;
	for (pp = index_bucket(t, e->index); *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	e->next = NULL;
	e->linked = false;
	t->count--;
}

/* link e under a fresh random index that nothing else holds */
static void index_insert(struct wg_index_table *t, struct wg_index_entry *e)
{
	uint32_t index;

	pthread_mutex_lock(&t->lock);
	index_unlink_locked(t, e);
	do
		wg_random(&index, sizeof(index));
	while (index_find(t, index));
	e->index = index;
	e->next = *index_bucket(t, index);
	*index_bucket(t, index) = e;
	e->linked = true;
	t->count++;
	pthread_mutex_unlock(&t->lock);
}

static void index_remove(struct wg_index_table *t, struct wg_index_entry *e)
{
	pthread_mutex_lock(&t->lock);
	index_unlink_locked(t, e);
	pthread_mutex_unlock(&t->lock);
}

/* new takes over old's index and place in the table (kernel
 * wg_index_hashtable_replace) */
static void index_replace(struct wg_index_table *t, struct wg_index_entry *old,
			  struct wg_index_entry *new)
{
	struct wg_index_entry **pp;

	pthread_mutex_lock(&t->lock);
	for (pp = index_bucket(t, old->index); old->linked && *pp; pp = &(*pp)->next) {
		if (*pp == old) {
			new->index = old->index;
			new->next = old->next;
			new->linked = true;
			*pp = new;
			old->next = NULL;
			old->linked = false;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
}

struct wg_index_table *wg_index_table_new(void)
{
	struct wg_index_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void wg_index_table_free(struct wg_index_table *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

struct wg_handshake *wg_index_lookup_handshake(struct wg_index_table *t, uint32_t index)
{
	struct wg_index_entry *e;
	struct wg_handshake *hs = NULL;

	pthread_mutex_lock(&t->lock);
	e = index_find(t, index);
	if (e && e->type == WG_INDEX_HANDSHAKE)
		hs = (struct wg_handshake *)((char *)e - offsetof(struct wg_handshake, entry));
	pthread_mutex_unlock(&t->lock);
	return hs;
}

struct wg_keypair *wg_index_lookup_keypair(struct wg_index_table *t, uint32_t index)
{
	struct wg_index_entry *e;
	struct wg_keypair *kp = NULL;

	pthread_mutex_lock(&t->lock);
	e = index_find(t, index);
	if (e && e->type == WG_INDEX_KEYPAIR)
		kp = wg_keypair_get((struct wg_keypair *)((char *)e - offsetof(struct wg_keypair, entry)));
	pthread_mutex_unlock(&t->lock);
	return kp;
}

void *wg_index_lookup_peer(struct wg_index_table *t, uint32_t index, unsigned type_mask)
{
	struct wg_index_entry *e;
	void *peer = NULL;

	pthread_mutex_lock(&t->lock);
	e = index_find(t, index);
	if (e && (type_mask & (1U << e->type)))
		peer = e->peer;
	pthread_mutex_unlock(&t->lock);
	return peer;
}

size_t wg_index_table_count(struct wg_index_table *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* ---- symmetric state helpers (whitepaper 5.4) ---------------------------- */

/* H := HASH(H || data) */
static void mix_hash(uint8_t h[WG_HASH_LEN], const void *data, size_t len)
{
	wg_hash2(h, h, WG_HASH_LEN, data, len);
}

/* (C, k) := KDF2(C, DH(priv, pub)); only C := KDF1(...) when key is NULL */
static int mix_dh(uint8_t ck[WG_HASH_LEN], uint8_t *key,
		  const uint8_t priv[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN])
{
	uint8_t dh[WG_KEY_LEN];
	int rc = wg_dh(dh, priv, pub);

	if (rc == 0)
		wg_kdf(ck, key, NULL, ck, dh, sizeof(dh));
	wg_wipe(dh, sizeof(dh));
	return rc;
}

/* the static-static DH, computed once per peer */
static int mix_precomputed_dh(uint8_t ck[WG_HASH_LEN], uint8_t key[WG_KEY_LEN],
			      const uint8_t ss[WG_KEY_LEN])
{
	if (wg_is_zero(ss, WG_KEY_LEN))
		return -ENOKEY;
	wg_kdf(ck, key, NULL, ck, ss, WG_KEY_LEN);
	return 0;
}

/* (C, tau, k) := KDF3(C, Q); H := HASH(H || tau) */
static void mix_psk(uint8_t ck[WG_HASH_LEN], uint8_t h[WG_HASH_LEN], uint8_t key[WG_KEY_LEN],
		    const uint8_t psk[WG_KEY_LEN])
{
	uint8_t tau[WG_HASH_LEN];

	wg_kdf(ck, tau, key, ck, psk, WG_KEY_LEN);
	mix_hash(h, tau, sizeof(tau));
	wg_wipe(tau, sizeof(tau));
}

/* dst := AEAD(k, 0, src, H); H := HASH(H || dst) */
static void message_encrypt(uint8_t *dst, const uint8_t *src, size_t len,
			    const uint8_t key[WG_KEY_LEN], uint8_t h[WG_HASH_LEN])
{
	wg_aead_encrypt(dst, src, len, h, WG_HASH_LEN, 0, key);
	mix_hash(h, dst, len + WG_AEAD_TAG_LEN);
}

static int message_decrypt(uint8_t *dst, const uint8_t *src, size_t len,
			   const uint8_t key[WG_KEY_LEN], uint8_t h[WG_HASH_LEN])
{
	if (wg_aead_decrypt(dst, src, len, h, WG_HASH_LEN, 0, key) < 0)
		return -EBADMSG;
	mix_hash(h, src, len);
	return 0;
}

/* msg.ephemeral := E_pub; H := HASH(H || E_pub); C := KDF1(C, E_pub) */
static void message_ephemeral(uint8_t dst[WG_KEY_LEN], const uint8_t src[WG_KEY_LEN],
			      uint8_t ck[WG_HASH_LEN], uint8_t h[WG_HASH_LEN])
{
	if (dst != src)
		memcpy(dst, src, WG_KEY_LEN);
	mix_hash(h, src, WG_KEY_LEN);
	wg_kdf(ck, NULL, NULL, ck, src, WG_KEY_LEN);
}

/* ---- handshake ---------------------------------------------------------- */

/* back to ZEROED keeping the static configuration and the latest timestamp;
 * caller holds hs->lock (kernel handshake_zero) */
static void handshake_zero(struct wg_handshake *hs)
{
	wg_wipe(hs->ephemeral_private, sizeof(hs->ephemeral_private));
	wg_wipe(hs->remote_ephemeral, sizeof(hs->remote_ephemeral));
	wg_wipe(hs->hash, sizeof(hs->hash));
	wg_wipe(hs->chaining_key, sizeof(hs->chaining_key));
	hs->remote_index = 0;
	index_remove(hs->table, &hs->entry);
	hs->state = WG_HS_ZEROED;
}

static void precompute_locked(struct wg_handshake *hs)
{
	if (!hs->local->has_identity ||
	    wg_dh(hs->precomputed_static_static, hs->local->priv, hs->remote_static) < 0)
		wg_wipe(hs->precomputed_static_static, WG_KEY_LEN);
}

int wg_handshake_init(struct wg_handshake *hs, const struct wg_static_identity *local,
		      struct wg_index_table *table, const uint8_t remote_static[WG_KEY_LEN],
		      const uint8_t *psk, void *peer)
{
	memset(hs, 0, sizeof(*hs));
	if (!local || !table || !remote_static)
		return -EINVAL;
	pthread_mutex_init(&hs->lock, NULL);
	hs->local = local;
	hs->table = table;
	hs->entry.type = WG_INDEX_HANDSHAKE;
	hs->entry.peer = peer;
	memcpy(hs->remote_static, remote_static, WG_KEY_LEN);
	if (psk)
		memcpy(hs->preshared_key, psk, WG_KEY_LEN);
	precompute_locked(hs);
	return 0;
}

void wg_handshake_deinit(struct wg_handshake *hs)
{
	pthread_mutex_lock(&hs->lock);
	handshake_zero(hs);
	pthread_mutex_unlock(&hs->lock);
	pthread_mutex_destroy(&hs->lock);
	wg_wipe(hs, sizeof(*hs));
}

void wg_handshake_set_psk(struct wg_handshake *hs, const uint8_t *psk)
{
	pthread_mutex_lock(&hs->lock);
	if (psk)
		memcpy(hs->preshared_key, psk, WG_KEY_LEN);
	else
		wg_wipe(hs->preshared_key, WG_KEY_LEN);
	pthread_mutex_unlock(&hs->lock);
}

void wg_handshake_precompute(struct wg_handshake *hs)
{
	pthread_mutex_lock(&hs->lock);
	handshake_zero(hs);
	precompute_locked(hs);
	pthread_mutex_unlock(&hs->lock);
}

void wg_handshake_clear(struct wg_handshake *hs)
{
	pthread_mutex_lock(&hs->lock);
	handshake_zero(hs);
	pthread_mutex_unlock(&hs->lock);
}

enum wg_handshake_state wg_handshake_get_state(struct wg_handshake *hs)
{
	enum wg_handshake_state s;

	pthread_mutex_lock(&hs->lock);
	s = hs->state;
	pthread_mutex_unlock(&hs->lock);
	return s;
}

uint32_t wg_handshake_remote_index(struct wg_handshake *hs)
{
	uint32_t i;

	pthread_mutex_lock(&hs->lock);
	i = hs->remote_index;
	pthread_mutex_unlock(&hs->lock);
	return i;
}

int wg_noise_create_initiation(struct wg_handshake *hs, struct wg_msg_initiation *dst,
			       uint64_t wall_ns)
{
	uint8_t timestamp[WG_TIMESTAMP_LEN];
	uint8_t ephemeral_public[WG_KEY_LEN];
	uint8_t key[WG_KEY_LEN];
	int rc;

	memset(dst, 0, sizeof(*dst));
	pthread_mutex_lock(&hs->lock);
	rc = -ENOKEY;
	if (!hs->local->has_identity || wg_is_zero(hs->precomputed_static_static, WG_KEY_LEN))
		goto out;

	dst->header.type = WG_MSG_INITIATION;
	handshake_start(hs->chaining_key, hs->hash, hs->remote_static);

	/* e */
	wg_dh_generate(hs->ephemeral_private, ephemeral_public);
	message_ephemeral(dst->unencrypted_ephemeral, ephemeral_public,
			  hs->chaining_key, hs->hash);
	/* es */
	if (mix_dh(hs->chaining_key, key, hs->ephemeral_private, hs->remote_static) < 0)
		goto fail;
	/* s */
	message_encrypt(dst->encrypted_static, hs->local->pub, WG_KEY_LEN, key, hs->hash);
	/* ss */
	if (mix_precomputed_dh(hs->chaining_key, key, hs->precomputed_static_static) < 0)
		goto fail;
	/* {t} */
	wg_tai64n(timestamp, wall_ns);
	message_encrypt(dst->encrypted_timestamp, timestamp, WG_TIMESTAMP_LEN, key, hs->hash);

	index_insert(hs->table, &hs->entry);
	wg_le32_put(&dst->sender_index, hs->entry.index);
	hs->state = WG_HS_CREATED_INITIATION;
	rc = 0;
	goto out;
fail:
	handshake_zero(hs);
	memset(dst, 0, sizeof(*dst));
out:
	pthread_mutex_unlock(&hs->lock);
	wg_wipe(key, sizeof(key));
	return rc;
}

int wg_noise_consume_initiation(const struct wg_msg_initiation *src,
				const struct wg_static_identity *local,
				wg_noise_peer_lookup_fn lookup, void *ctx,
				uint64_t now_ns, struct wg_handshake **out)
{
	uint8_t ck[WG_HASH_LEN], h[WG_HASH_LEN], key[WG_KEY_LEN];
	uint8_t e[WG_KEY_LEN], s[WG_KEY_LEN], t[WG_TIMESTAMP_LEN];
	struct wg_handshake *hs = NULL;
	int rc;

	*out = NULL;
	if (!local->has_identity)
		return -ENOKEY;

	handshake_start(ck, h, local->pub);
	/* e */
	memcpy(e, src->unencrypted_ephemeral, WG_KEY_LEN);
	message_ephemeral(e, e, ck, h);
	/* es */
	rc = -EBADMSG;
	if (mix_dh(ck, key, local->priv, e) < 0)
		goto out;
	/* s */
	if (message_decrypt(s, src->encrypted_static, sizeof(src->encrypted_static), key, h) < 0)
		goto out;

	rc = -ENOENT;
	hs = lookup(ctx, s);
	if (!hs)
		goto out;
	pthread_mutex_lock(&hs->lock);
	/* ss */
	rc = mix_precomputed_dh(ck, key, hs->precomputed_static_static);
	if (rc < 0)
		goto out_unlock;
	/* {t} */
	rc = -EBADMSG;
	if (message_decrypt(t, src->encrypted_timestamp, sizeof(src->encrypted_timestamp),
			    key, h) < 0)
		goto out_unlock;
	/* 5.1: an initiation is accepted only with a timestamp greater than
	 * every earlier one of this peer; and not more often than
	 * INITIATIONS_PER_SECOND (kernel noise.c flood check) */
	rc = -EALREADY;
	if (memcmp(t, hs->latest_timestamp, WG_TIMESTAMP_LEN) <= 0)
		goto out_unlock;
	rc = -EBUSY;
	if (hs->has_consumed_initiation &&
	    now_ns - hs->last_initiation_consumption_ns < WG_NSEC_PER_SEC / WG_INITIATIONS_PER_SECOND)
		goto out_unlock;

	memcpy(hs->remote_ephemeral, e, WG_KEY_LEN);
	memcpy(hs->latest_timestamp, t, WG_TIMESTAMP_LEN);
	memcpy(hs->hash, h, WG_HASH_LEN);
	memcpy(hs->chaining_key, ck, WG_HASH_LEN);
	hs->remote_index = wg_le32_get(&src->sender_index);
	hs->last_initiation_consumption_ns = now_ns;
	hs->has_consumed_initiation = true;
	hs->state = WG_HS_CONSUMED_INITIATION;
	*out = hs;
	rc = 0;
out_unlock:
	pthread_mutex_unlock(&hs->lock);
out:
	wg_wipe(ck, sizeof(ck));
	wg_wipe(h, sizeof(h));
	wg_wipe(key, sizeof(key));
	wg_wipe(e, sizeof(e));
	wg_wipe(s, sizeof(s));
	wg_wipe(t, sizeof(t));
	return rc;
}

int wg_noise_create_response(struct wg_handshake *hs, struct wg_msg_response *dst)
{
	uint8_t ephemeral_public[WG_KEY_LEN];
	uint8_t key[WG_KEY_LEN];
	int rc;

	memset(dst, 0, sizeof(*dst));
	pthread_mutex_lock(&hs->lock);
	rc = -EINVAL;
	if (hs->state != WG_HS_CONSUMED_INITIATION)
		goto out;

	dst->header.type = WG_MSG_RESPONSE;
	wg_le32_put(&dst->receiver_index, hs->remote_index);

	/* e */
	wg_dh_generate(hs->ephemeral_private, ephemeral_public);
	message_ephemeral(dst->unencrypted_ephemeral, ephemeral_public,
			  hs->chaining_key, hs->hash);
	rc = -EBADMSG;
	/* ee */
	if (mix_dh(hs->chaining_key, NULL, hs->ephemeral_private, hs->remote_ephemeral) < 0)
		goto fail;
	/* se */
	if (mix_dh(hs->chaining_key, NULL, hs->ephemeral_private, hs->remote_static) < 0)
		goto fail;
	/* psk */
	mix_psk(hs->chaining_key, hs->hash, key, hs->preshared_key);
	/* {} */
	message_encrypt(dst->encrypted_nothing, NULL, 0, key, hs->hash);

	index_insert(hs->table, &hs->entry);
	wg_le32_put(&dst->sender_index, hs->entry.index);
	hs->state = WG_HS_CREATED_RESPONSE;
	rc = 0;
	goto out;
fail:
	handshake_zero(hs);
	memset(dst, 0, sizeof(*dst));
out:
	pthread_mutex_unlock(&hs->lock);
	wg_wipe(key, sizeof(key));
	return rc;
}

int wg_noise_consume_response(const struct wg_msg_response *src,
			      const struct wg_static_identity *local,
			      struct wg_index_table *table, struct wg_handshake **out)
{
	uint8_t ck[WG_HASH_LEN], h[WG_HASH_LEN], key[WG_KEY_LEN], e[WG_KEY_LEN];
	struct wg_handshake *hs;
	int rc;

	*out = NULL;
	if (!local->has_identity)
		return -ENOKEY;
	hs = wg_index_lookup_handshake(table, wg_le32_get(&src->receiver_index));
	if (!hs)
		return -ENOENT;

	pthread_mutex_lock(&hs->lock);
	rc = -ENOENT;
	if (hs->state != WG_HS_CREATED_INITIATION ||
	    hs->entry.index != wg_le32_get(&src->receiver_index))
		goto out;
	/* work on copies: a forged response must not disturb the handshake */
	memcpy(ck, hs->chaining_key, WG_HASH_LEN);
	memcpy(h, hs->hash, WG_HASH_LEN);

	/* e */
	memcpy(e, src->unencrypted_ephemeral, WG_KEY_LEN);
	message_ephemeral(e, e, ck, h);
	rc = -EBADMSG;
	/* ee */
	if (mix_dh(ck, NULL, hs->ephemeral_private, e) < 0)
		goto out;
	/* se */
	if (mix_dh(ck, NULL, local->priv, e) < 0)
		goto out;
	/* psk */
	mix_psk(ck, h, key, hs->preshared_key);
	/* {} */
	if (message_decrypt(NULL, src->encrypted_nothing, sizeof(src->encrypted_nothing),
			    key, h) < 0)
		goto out;

	memcpy(hs->remote_ephemeral, e, WG_KEY_LEN);
	memcpy(hs->hash, h, WG_HASH_LEN);
	memcpy(hs->chaining_key, ck, WG_HASH_LEN);
	hs->remote_index = wg_le32_get(&src->sender_index);
	hs->state = WG_HS_CONSUMED_RESPONSE;
	*out = hs;
	rc = 0;
out:
	pthread_mutex_unlock(&hs->lock);
	wg_wipe(ck, sizeof(ck));
	wg_wipe(h, sizeof(h));
	wg_wipe(key, sizeof(key));
	wg_wipe(e, sizeof(e));
	return rc;
}

/* ---- keypairs ----------------------------------------------------------- */

struct wg_keypair *wg_keypair_get(struct wg_keypair *kp)
{
	if (kp)
		atomic_fetch_add_explicit(&kp->refs, 1, memory_order_relaxed);
	return kp;
}

void wg_keypair_put(struct wg_keypair *kp)
{
	if (!kp || atomic_fetch_sub_explicit(&kp->refs, 1, memory_order_acq_rel) != 1)
		return;
	pthread_mutex_destroy(&kp->replay_lock);
	wg_wipe(kp, sizeof(*kp));
	free(kp);
}

/* take kp out of the index table and drop the slot's reference */
static void keypair_retire(struct wg_keypair *kp)
{
	if (!kp)
		return;
	index_remove(kp->table, &kp->entry);
	wg_keypair_put(kp);
}

static bool expired(uint64_t birth_ns, uint64_t age_ns, uint64_t now_ns)
{
	return now_ns - birth_ns >= age_ns;
}

bool wg_keypair_can_send(struct wg_keypair *kp, uint64_t now_ns)
{
	return atomic_load_explicit(&kp->send_valid, memory_order_relaxed) &&
	       !expired(kp->created_ns, WG_REJECT_AFTER_TIME_NS, now_ns) &&
	       atomic_load_explicit(&kp->send_counter, memory_order_relaxed) < WG_REJECT_AFTER_MESSAGES;
}

bool wg_keypair_should_rekey_after_send(struct wg_keypair *kp, uint64_t now_ns)
{
	return atomic_load_explicit(&kp->send_valid, memory_order_relaxed) &&
	       (atomic_load_explicit(&kp->send_counter, memory_order_relaxed) > WG_REKEY_AFTER_MESSAGES ||
		(kp->initiator && expired(kp->created_ns, WG_REKEY_AFTER_TIME_NS, now_ns)));
}

bool wg_keypair_should_rekey_after_recv(struct wg_keypair *kp, uint64_t now_ns)
{
	return atomic_load_explicit(&kp->send_valid, memory_order_relaxed) && kp->initiator &&
	       expired(kp->created_ns, WG_REKEY_ON_RECEIVE_AGE_NS, now_ns);
}

void wg_keypairs_init(struct wg_keypairs *kps)
{
	memset(kps, 0, sizeof(*kps));
	pthread_mutex_init(&kps->lock, NULL);
}

void wg_keypairs_clear(struct wg_keypairs *kps)
{
	struct wg_keypair *p, *c, *n;

	pthread_mutex_lock(&kps->lock);
	p = kps->previous;
	c = kps->current;
	n = kps->next;
	kps->previous = kps->current = kps->next = NULL;
	pthread_mutex_unlock(&kps->lock);
	keypair_retire(n);
	keypair_retire(c);
	keypair_retire(p);
}

struct wg_keypair *wg_keypairs_current(struct wg_keypairs *kps)
{
	struct wg_keypair *kp;

	pthread_mutex_lock(&kps->lock);
	kp = wg_keypair_get(kps->current);
	pthread_mutex_unlock(&kps->lock);
	return kp;
}

bool wg_keypairs_received_with(struct wg_keypairs *kps, struct wg_keypair *kp)
{
	struct wg_keypair *old_previous;

	pthread_mutex_lock(&kps->lock);
	if (!kp || kps->next != kp) {
		pthread_mutex_unlock(&kps->lock);
		return false;
	}
	/* 5.4.5: the initiator's first data packet confirms the session:
	 * next -> current -> previous, the old previous goes */
	old_previous = kps->previous;
	kps->previous = kps->current;
	kps->current = kps->next;
	kps->next = NULL;
	pthread_mutex_unlock(&kps->lock);
	keypair_retire(old_previous);
	return true;
}

void wg_keypairs_expire_current(struct wg_keypairs *kps)
{
	pthread_mutex_lock(&kps->lock);
	if (kps->next)
		atomic_store(&kps->next->send_valid, false);
	if (kps->current)
		atomic_store(&kps->current->send_valid, false);
	pthread_mutex_unlock(&kps->lock);
}

/* kernel add_new_keypair: an initiator's new session is usable at once; a
 * responder's waits in next until the initiator proves it has it */
static void keypairs_add(struct wg_keypairs *kps, struct wg_keypair *kp)
{
	struct wg_keypair *drop1 = NULL, *drop2 = NULL;

	pthread_mutex_lock(&kps->lock);
	if (kp->initiator) {
		if (kps->next) {
			/* an unconfirmed next becomes previous, current goes */
			drop1 = kps->current;
			drop2 = kps->previous;
			kps->previous = kps->next;
			kps->next = NULL;
		} else {
			drop2 = kps->previous;
			kps->previous = kps->current;
		}
		kps->current = kp;
	} else {
		drop1 = kps->next;
		drop2 = kps->previous;
		kps->next = kp;
		kps->previous = NULL;
	}
	pthread_mutex_unlock(&kps->lock);
	keypair_retire(drop1);
	keypair_retire(drop2);
}

int wg_noise_begin_session(struct wg_handshake *hs, struct wg_keypairs *kps,
			   uint64_t now_ns, struct wg_keypair **out)
{
	struct wg_keypair *kp;
	int rc = 0;

	if (out)
		*out = NULL;
	pthread_mutex_lock(&hs->lock);
	if (hs->state != WG_HS_CREATED_RESPONSE && hs->state != WG_HS_CONSUMED_RESPONSE) {
		rc = -EINVAL;
		goto out;
	}
	kp = calloc(1, sizeof(*kp));
	if (!kp) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&kp->replay_lock, NULL);
	wg_replay_init(&kp->replay);
	kp->initiator = hs->state == WG_HS_CONSUMED_RESPONSE;
	/* 5.4.5: (T_send_i = T_recv_r, T_recv_i = T_send_r) := KDF2(C, e) */
	if (kp->initiator)
		wg_kdf(kp->send_key, kp->recv_key, NULL, hs->chaining_key, NULL, 0);
	else
		wg_kdf(kp->recv_key, kp->send_key, NULL, hs->chaining_key, NULL, 0);
	kp->remote_index = hs->remote_index;
	kp->created_ns = now_ns;
	kp->table = hs->table;
	kp->entry.type = WG_INDEX_KEYPAIR;
	kp->entry.peer = hs->entry.peer;
	atomic_init(&kp->send_counter, 0);
	atomic_init(&kp->send_valid, true);
	atomic_init(&kp->refs, 1);	/* the keypairs slot's reference */
	/* the session takes over the handshake's index (linked in both states
	 * allowed here): data arrives with the index the peer learnt from our
	 * initiation or response */
	index_replace(hs->table, &hs->entry, &kp->entry);
	handshake_zero(hs);
	if (out)
		*out = wg_keypair_get(kp);
	keypairs_add(kps, kp);
out:
	pthread_mutex_unlock(&hs->lock);
	return rc;
}

/* ---- transport data (5.4.6) --------------------------------------------- */

static size_t padded_len(size_t len, size_t mtu)
{
	size_t padded = (len + WG_PADDING_MULTIPLE - 1) & ~(size_t)(WG_PADDING_MULTIPLE - 1);

	/* kernel calculate_skb_padding: never pad a packet that fits the MTU
	 * beyond it */
	if (mtu && len <= mtu && padded > mtu)
		padded = mtu;
	return padded;
}

/* header, zero padding and AEAD in place; the caller checked the room */
static size_t seal(const struct wg_keypair *kp, uint8_t *buf, size_t len, size_t padded,
		   uint64_t nonce)
{
	struct wg_msg_data *m = (struct wg_msg_data *)buf;

	memset(m->encrypted_data + len, 0, padded - len);
	m->header.type = WG_MSG_DATA;
	memset(m->header.reserved, 0, sizeof(m->header.reserved));
	wg_le32_put(&m->receiver_index, kp->remote_index);
	wg_le64_put(&m->counter, nonce);
	wg_aead_encrypt(m->encrypted_data, m->encrypted_data, padded, NULL, 0, nonce, kp->send_key);
	return WG_MSG_DATA_HEADER_LEN + padded + WG_AEAD_TAG_LEN;
}

static bool room_for(size_t len, size_t cap, size_t mtu)
{
	return len <= cap && WG_MSG_DATA_HEADER_LEN + padded_len(len, mtu) + WG_AEAD_TAG_LEN <= cap;
}

/* take n nonces; false (and the session invalid for sending) when they run
 * into REJECT_AFTER_MESSAGES */
static bool reserve_nonces(struct wg_keypair *kp, size_t n, uint64_t *first)
{
	*first = atomic_fetch_add_explicit(&kp->send_counter, n, memory_order_relaxed);
	if (*first >= WG_REJECT_AFTER_MESSAGES || WG_REJECT_AFTER_MESSAGES - *first < n) {
		atomic_store(&kp->send_valid, false);
		return false;
	}
	return true;
}

int wg_noise_encrypt(struct wg_keypair *kp, uint8_t *buf, size_t plain_len, size_t cap,
		     size_t mtu, uint64_t now_ns, size_t *out_len)
{
	uint64_t nonce;

	*out_len = 0;
	if (!room_for(plain_len, cap, mtu))
		return -ENOBUFS;
	if (!wg_keypair_can_send(kp, now_ns) || !reserve_nonces(kp, 1, &nonce))
		return -EKEYEXPIRED;
	*out_len = seal(kp, buf, plain_len, padded_len(plain_len, mtu), nonce);
	return 0;
}

size_t wg_noise_data_len(size_t plain_len, size_t mtu)
{
	return WG_MSG_DATA_HEADER_LEN + padded_len(plain_len, mtu) + WG_AEAD_TAG_LEN;
}

size_t wg_noise_encrypt_reserve(struct wg_keypair *kp, struct wg_pkt *pkts, size_t n,
				size_t mtu, uint64_t now_ns)
{
	size_t fit = 0, ok = 0;
	uint64_t nonce = 0;
	bool usable;

	for (size_t i = 0; i < n; i++) {
		pkts[i].status = room_for(pkts[i].len, pkts[i].cap, mtu) ? 0 : -ENOBUFS;
		fit += pkts[i].status == 0;
	}
	usable = fit && wg_keypair_can_send(kp, now_ns) && reserve_nonces(kp, fit, &nonce);
	for (size_t i = 0; i < n; i++) {
		if (pkts[i].status)
			continue;
		if (!usable) {
			pkts[i].status = -EKEYEXPIRED;
			continue;
		}
		pkts[i].counter = nonce++;
		ok++;
	}
	return ok;
}

void wg_noise_encrypt_seal(const struct wg_keypair *kp, struct wg_pkt *pkt, size_t mtu)
{
	if (pkt->status == 0)
		pkt->len = seal(kp, pkt->data, pkt->len, padded_len(pkt->len, mtu), pkt->counter);
}

size_t wg_noise_encrypt_batch(struct wg_keypair *kp, struct wg_pkt *pkts, size_t n,
			      size_t mtu, uint64_t now_ns)
{
	size_t ok = wg_noise_encrypt_reserve(kp, pkts, n, mtu, now_ns);

	for (size_t i = 0; i < n; i++)
		wg_noise_encrypt_seal(kp, &pkts[i], mtu);
	return ok;
}

static bool can_receive(struct wg_keypair *kp, uint64_t now_ns)
{
	return !expired(kp->created_ns, WG_REJECT_AFTER_TIME_NS, now_ns);
}

/* replay pre-check, before spending a decryption; caller holds replay_lock */
static int open_precheck(struct wg_keypair *kp, const uint8_t *buf, size_t len)
{
	if (len < WG_MSG_DATA_MIN_LEN)
		return -EINVAL;
	if (!wg_replay_check(&kp->replay, wg_le64_get(buf + 8)))
		return -EALREADY;
	return 0;
}

static int open_decrypt(const struct wg_keypair *kp, uint8_t *buf, size_t len)
{
	uint8_t *p = buf + WG_MSG_DATA_HEADER_LEN;

	return wg_aead_decrypt(p, p, len - WG_MSG_DATA_HEADER_LEN, NULL, 0,
			       wg_le64_get(buf + 8), kp->recv_key);
}

int wg_noise_decrypt(struct wg_keypair *kp, uint8_t *buf, size_t len, uint64_t now_ns,
		     size_t *plain_len)
{
	struct wg_pkt pkt = { .data = buf, .len = len, .cap = len };

	*plain_len = 0;
	if (wg_noise_decrypt_batch(kp, &pkt, 1, now_ns) == 1)
		*plain_len = pkt.len;
	return pkt.status;
}

int wg_noise_decrypt_check(struct wg_keypair *kp, struct wg_pkt *pkt, uint64_t now_ns)
{
	if (!can_receive(kp, now_ns))
		return pkt->status = -EKEYEXPIRED;
	pthread_mutex_lock(&kp->replay_lock);
	pkt->status = open_precheck(kp, pkt->data, pkt->len);
	pthread_mutex_unlock(&kp->replay_lock);
	return pkt->status;
}

void wg_noise_decrypt_open(const struct wg_keypair *kp, struct wg_pkt *pkt)
{
	if (pkt->status == 0)
		pkt->status = open_decrypt(kp, pkt->data, pkt->len);
}

/* only authenticated counters move the window (5.4.6); caller holds replay_lock */
static int commit_locked(struct wg_keypair *kp, struct wg_pkt *pkt)
{
	if (pkt->status)
		return pkt->status;
	if (!wg_replay_update(&kp->replay, wg_le64_get(pkt->data + 8)))
		return pkt->status = -EALREADY;
	pkt->len -= WG_MSG_DATA_HEADER_LEN + WG_AEAD_TAG_LEN;
	return 0;
}

int wg_noise_decrypt_commit(struct wg_keypair *kp, struct wg_pkt *pkt)
{
	int rc;

	pthread_mutex_lock(&kp->replay_lock);
	rc = commit_locked(kp, pkt);
	pthread_mutex_unlock(&kp->replay_lock);
	return rc;
}

size_t wg_noise_decrypt_batch(struct wg_keypair *kp, struct wg_pkt *pkts, size_t n,
			      uint64_t now_ns)
{
	size_t ok = 0;

	if (!can_receive(kp, now_ns)) {
		for (size_t i = 0; i < n; i++)
			pkts[i].status = -EKEYEXPIRED;
		return 0;
	}
	pthread_mutex_lock(&kp->replay_lock);
	for (size_t i = 0; i < n; i++)
		pkts[i].status = open_precheck(kp, pkts[i].data, pkts[i].len);
	pthread_mutex_unlock(&kp->replay_lock);

	for (size_t i = 0; i < n; i++)
		wg_noise_decrypt_open(kp, &pkts[i]);

	pthread_mutex_lock(&kp->replay_lock);
	for (size_t i = 0; i < n; i++)
		ok += commit_locked(kp, &pkts[i]) == 0;
	pthread_mutex_unlock(&kp->replay_lock);
	return ok;
}
