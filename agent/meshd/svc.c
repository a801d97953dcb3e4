/* svc: control-plane client threads (see svc.h). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keyproof.h"
#include "log.h"
#include "svc.h"
#include "svchttp.h"
#include "svcurl.h"

#define TOKEN_MAX 128
#define SVC_SOCKS_MAX 8	/* two threads, one request each, a connection per address tried */

struct svc {
	struct svc_cfg cfg;
	struct svcurl_list urls;	/* the replicas, in the order given */
	char ca_file[512];
	char reg_key[256];
	char token_file[512];
	char os[32];

	int pipe_rd, pipe_wr;

	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop;
	/* guarded by mu */
	bool registered;
	char token[TOKEN_MAX];
	char device_id[SVC_ID_MAX];
	char vpc_id[SVC_ID_MAX];
	struct svc_report report;
	bool report_dirty;
	bool legacy_nat;	/* the service refused nat.ipv4/ipv6: send the top level alone */
	bool legacy_policy;	/* the service refused enforces_policy: leave it out */
	bool reachable;
	bool outage_logged;
	size_t cur;		/* the replica in use: requests stick to it */
	int socks[SVC_SOCKS_MAX];	/* the requests' sockets now open (-1: free) */
	struct svc_event *head, *tail;

	pthread_t writer, poller;
	bool writer_started, poller_started;
};

/* --- events -------------------------------------------------------------- */

static void post(struct svc *s, struct svc_event *ev)
{
	char one = 1;

	pthread_mutex_lock(&s->mu);
	ev->next = NULL;
	if (s->tail)
		s->tail->next = ev;
	else
		s->head = ev;
	s->tail = ev;
	pthread_mutex_unlock(&s->mu);
	/* a full pipe already says "readable" */
	if (write(s->pipe_wr, &one, 1) < 0 && errno != EAGAIN)
		log_warn("svc", "event pipe write failed errno=%d", errno);
}

static struct svc_event *ev_new(enum svc_event_type type)
{
	struct svc_event *ev = calloc(1, sizeof(*ev));

	if (ev)
		ev->type = type;
	return ev;
}

struct svc_event *svc_next_event(struct svc *s)
{
	struct svc_event *ev;
	char buf[64];

	pthread_mutex_lock(&s->mu);
	ev = s->head;
	if (ev) {
		s->head = ev->next;
		if (!s->head)
			s->tail = NULL;
		ev->next = NULL;
	} else {
		while (read(s->pipe_rd, buf, sizeof(buf)) > 0)
			;
	}
	pthread_mutex_unlock(&s->mu);
	return ev;
}

void svc_event_free(struct svc_event *ev)
{
	if (!ev)
		return;
	json_decref(ev->devices);
	json_decref(ev->policy);
	free(ev);
}

int svc_fd(const struct svc *s)
{
	return s->pipe_rd;
}

bool svc_reachable(struct svc *s)
{
	bool r;

	pthread_mutex_lock(&s->mu);
	r = s->reachable;
	pthread_mutex_unlock(&s->mu);
	return r;
}

static size_t current(struct svc *s)
{
	size_t i;

	pthread_mutex_lock(&s->mu);
	i = s->cur;
	pthread_mutex_unlock(&s->mu);
	return i;
}

/* the replica in use */
static const char *cur_url(struct svc *s)
{
	return s->urls.url[current(s)];
}

/* replica i failed: the next one in the list is used from now on (unless
 * the other thread has moved on already) */
static void fail_over(struct svc *s, size_t i, const char *why)
{
	size_t next = (i + 1) % s->urls.n;
	bool moved = false;

	pthread_mutex_lock(&s->mu);
	if (s->cur == i) {
		s->cur = next;
		moved = true;
	}
	pthread_mutex_unlock(&s->mu);
	if (moved)
		log_warn("svc", "service replica failed url=%s reason=\"%s\" next=%s", s->urls.url[i], why,
			 s->urls.url[next]);
}

/* one line per outage, not per retry */
static void note_result(struct svc *s, bool ok, const char *what)
{
	struct svc_event *ev = NULL;

	pthread_mutex_lock(&s->mu);
	if (ok && !s->reachable) {
		s->reachable = true;
		s->outage_logged = false;
		ev = ev_new(SVC_EV_REACHABLE);
	} else if (!ok && !s->outage_logged) {
		s->reachable = false;
		s->outage_logged = true;
		ev = ev_new(SVC_EV_UNREACHABLE);
		if (ev)
			snprintf(ev->msg, sizeof(ev->msg), "%s", what);
	}
	pthread_mutex_unlock(&s->mu);
	if (ev) {
		if (ok)
			log_info("svc", "service reachable url=%s", cur_url(s));
		else
			log_warn("svc", "service unreachable url=%s reason=\"%s\" (retrying with backoff)",
				 cur_url(s), what);
		post(s, ev);
	}
}

/* --- waiting --------------------------------------------------------------- */

enum wake {
	WAKE_STOP = 0,		/* only a stop ends the wait early */
	WAKE_REPORT = 1,	/* ... or a report to send (once registered) */
	WAKE_REGISTERED = 2,	/* ... or the registration (the poller starts at once) */
};

/* sleeps up to ms unless stopped, or woken as wake says; returns true when
 * stopping */
static bool wait_ms(struct svc *s, uint32_t ms, enum wake wake)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	while (!s->stop && !(wake == WAKE_REPORT && s->report_dirty && s->registered) &&
	       !(wake == WAKE_REGISTERED && s->registered)) {
		if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT)
			break;
	}
	stop = s->stop;
	pthread_mutex_unlock(&s->mu);
	return stop;
}

static bool stopping(struct svc *s)
{
	bool stop;

	pthread_mutex_lock(&s->mu);
	stop = s->stop;
	pthread_mutex_unlock(&s->mu);
	return stop;
}

/* --- HTTP ---------------------------------------------------------------- */

static bool stopping_cb(void *arg)
{
	return stopping(arg);
}

/* svchttp's sockets, so that svc_free can end a waiting request at once */
static bool track_cb(void *arg, int fd, bool open)
{
	struct svc *s = arg;
	bool ok = !open;

	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < SVC_SOCKS_MAX; i++) {
		if (open && !s->stop && s->socks[i] < 0) {
			s->socks[i] = fd;
			ok = true;
			break;
		}
		if (!open && s->socks[i] == fd) {
			s->socks[i] = -1;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return ok;
}

/* One request, to the replica in use; with several, a transport failure
 * (no connection, a reset, a timeout) or a 5xx moves to the next replica
 * and the request is sent again there at once, each replica once. A long
 * poll sent again carries the same revision, so it resumes where it was. */
static int http(struct svc *s, const char *method, const char *path, const char *bearer,
		const json_t *body, long timeout_ms, long *status, json_t **out,
		char *why, size_t whylen)
{
	struct svchttp h = { .ca_file = s->ca_file, .stopping = stopping_cb, .track = track_cb, .arg = s,
			     .connect_timeout_ms = s->urls.n > 1 ? SVC_FAILOVER_CONNECT_MS : 0 };
	int rc = -EIO;

	for (size_t tries = 0; tries < s->urls.n; tries++) {
		size_t i = current(s);
		char what[160];

		h.base = s->urls.url[i];
		rc = svchttp_request(&h, method, path, bearer, body, timeout_ms, status, out, why, whylen);
		if (tries + 1 == s->urls.n || stopping(s) || !(rc == -EIO || (rc == 0 && *status >= 500)))
			break;
		if (rc == -EIO)
			snprintf(what, sizeof(what), "%s", why);
		else
			snprintf(what, sizeof(what), "HTTP %ld %s", *status, svchttp_error_text(*out));
		json_decref(*out);
		*out = NULL;
		fail_over(s, i, what);
	}
	return rc;
}

/* A meshsvc from before NAT findings per family refuses the nat object's
 * ipv4/ipv6 members (400, field nat.ipv4): from then on the body carries
 * the first family's findings alone, the shape it knows. True when this
 * answer was that refusal (the caller sends again). */
static bool legacy_nat_refusal(struct svc *s, long status, const json_t *ans)
{
	const char *field = json_string_value(json_object_get(ans, "field"));
	bool first;

	if (status != 400 || !field || (strcmp(field, "nat.ipv4") && strcmp(field, "nat.ipv6")))
		return false;
	pthread_mutex_lock(&s->mu);
	first = !s->legacy_nat;
	s->legacy_nat = true;
	pthread_mutex_unlock(&s->mu);
	if (first)
		log_warn("svc", "the service does not know NAT findings per family (an older meshsvc): "
			 "reporting the IPv4 ones, else the IPv6 ones, alone url=%s", cur_url(s));
	return first;
}

/* A meshsvc from before security groups refuses "enforces_policy" (400,
 * field enforces_policy): from then on --no-policy registers without it,
 * since such a service has no policy to enforce anyway. True when this
 * answer was that refusal (the caller sends again). */
static bool legacy_policy_refusal(struct svc *s, long status, const json_t *ans)
{
	const char *field = json_string_value(json_object_get(ans, "field"));
	bool first;

	if (status != 400 || !field || strcmp(field, "enforces_policy"))
		return false;
	pthread_mutex_lock(&s->mu);
	first = !s->legacy_policy;
	s->legacy_policy = true;
	pthread_mutex_unlock(&s->mu);
	if (first)
		log_warn("svc", "the service does not know enforces_policy (it predates security groups): "
			 "registering without it url=%s", cur_url(s));
	return first;
}

/* the body for the service's version: see legacy_nat_refusal; under mu */
static json_t *fit_body(struct svc *s, json_t *body)
{
	if (body && s->legacy_nat && svcjson_nat_legacy(body, &s->report) < 0) {
		json_decref(body);
		return NULL;
	}
	return body;
}

/* --- the device token across restarts ------------------------------------------ */

/* reads token_file into s->token (before the threads start); a missing file
 * is no token, one that group or others may read is refused */
static int token_load(struct svc *s)
{
	struct stat sb;
	ssize_t n;
	int fd, rc = 0;

	if (!s->token_file[0])
		return 0;
	if ((fd = open(s->token_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		log_error("svc", "cannot read the device token file %s: %s", s->token_file, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
	} else if (sb.st_mode & 077) {
		log_error("svc", "the device token file %s may be read by group or others (mode %03o): chmod 600 %s",
			  s->token_file, (unsigned)(sb.st_mode & 0777), s->token_file);
		rc = -EPERM;
	} else if ((n = read(fd, s->token, sizeof(s->token) - 1)) < 0) {
		rc = -errno;
	} else {
		s->token[n] = 0;
		s->token[strcspn(s->token, "\r\n")] = 0;
	}
	close(fd);
	if (rc < 0)
		sodium_memzero(s->token, sizeof(s->token));
	if (rc < 0 && rc != -EPERM)
		log_error("svc", "cannot read the device token file %s: %s", s->token_file, strerror(-rc));
	return rc;
}

/* replaces token_file atomically (mode 0600); a failure costs only the next
 * restart's registration, so it is logged and not fatal */
static void token_save(struct svc *s, const char *token)
{
	char tmp[sizeof(s->token_file) + 8];
	size_t len = strlen(token);
	bool ok;
	int fd;

	if (!s->token_file[0])
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->token_file);
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		log_warn("svc", "cannot write the device token file %s: %s", tmp, strerror(errno));
		return;
	}
	ok = write(fd, token, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
	ok &= close(fd) == 0;
	if (!ok || rename(tmp, s->token_file) < 0) {
		log_warn("svc", "cannot write the device token file %s: %s", s->token_file, strerror(errno));
		unlink(tmp);
	}
}

/* the service no longer knows our token: the registration key it is */
static void token_forget(struct svc *s)
{
	pthread_mutex_lock(&s->mu);
	sodium_memzero(s->token, sizeof(s->token));
	pthread_mutex_unlock(&s->mu);
	if (s->token_file[0] && unlink(s->token_file) < 0 && errno != ENOENT)
		log_warn("svc", "cannot remove the device token file %s: %s", s->token_file, strerror(errno));
}

/* --- writer: register, then PATCH reports ---------------------------------- */

/* the answer to a registration with the key: our public key is registered
 * already, and we hold no token that works (the state directory was wiped,
 * the token file lost or corrupted) */
static bool key_taken(long status, const json_t *ans)
{
	const char *field = json_string_value(json_object_get(ans, "field"));

	return status == 409 && field && !strcmp(field, "public_key");
}

/* Proves the private key instead (keyproof.h): a challenge from the service,
 * answered in body's "proof", and the registration sent again with the key.
 * 0 with the service's answer in *status and *ans (a refusal of the
 * challenge included), or a negative errno with why. */
static int reclaim(struct svc *s, const char *cred, json_t *body, long *status, json_t **ans, char *why,
		   size_t whylen)
{
	uint8_t challenge[SVC_KEY_LEN], service_key[SVC_KEY_LEN], mac[KEYPROOF_MAC_BYTES];
	char ch64[SVC_KEY_B64LEN], mac64[SVC_KEY_B64LEN];
	struct svc_err err;
	json_t *req;
	int rc;

	log_info("svc", "our public key is registered and we have no device token: answering a key challenge");
	if (!(req = json_pack("{s:O}", "public_key", json_object_get(body, "public_key"))))
		return -ENOMEM;
	rc = http(s, "POST", "/api/devices/challenge", cred, req, SVC_REQUEST_TIMEOUT_MS, status, ans, why, whylen);
	json_decref(req);
	if (rc < 0 || *status != 200)
		return rc;
	if (svcjson_parse_challenge(*ans, challenge, service_key, &err) < 0) {
		snprintf(why, whylen, "challenge answer: field %s %s", err.field, err.msg);
		return -EBADMSG;
	}
	if (keyproof_mac(s->cfg.priv, service_key, s->cfg.pub, service_key, challenge, mac) < 0) {
		snprintf(why, whylen, "the service's challenge key is unusable (a low-order point)");
		return -EBADMSG;
	}
	svcjson_key_format(challenge, ch64);
	svcjson_key_format(mac, mac64);
	if (json_object_set_new(body, "proof", json_pack("{s:s, s:s}", "challenge", ch64, "mac", mac64)) < 0)
		return -ENOMEM;
	json_decref(*ans);
	*ans = NULL;
	return http(s, "POST", "/api/devices", cred, body, SVC_REQUEST_TIMEOUT_MS, status, ans, why, whylen);
}

static int do_register(struct svc *s, char *why, size_t whylen)
{
	char sealed[SVC_SEALED_MAX], token[TOKEN_MAX];
	struct svc_event *ev;
	struct svc_err err;
	json_t *body, *ans = NULL;
	char cred[sizeof(s->reg_key)];
	bool again, reclaimed = false;
	long status;
	int rc;

	pthread_mutex_lock(&s->mu);
	body = fit_body(s, svcjson_register_body(s->cfg.pub, s->os, &s->report));
	if (body && s->cfg.no_policy && !s->legacy_policy)
		json_object_set_new(body, "enforces_policy", json_false());
	s->report_dirty = false;
	/* a registered key comes back with its token: the public key alone
	 * proves nothing to the service */
	again = s->token[0] != 0;
	snprintf(cred, sizeof(cred), "%s", again ? s->token : s->reg_key);
	pthread_mutex_unlock(&s->mu);
	if (!body) {
		sodium_memzero(cred, sizeof(cred));
		return -ENOMEM;
	}
	rc = http(s, "POST", "/api/devices", cred, body, SVC_REQUEST_TIMEOUT_MS, &status, &ans, why, whylen);
	if (rc == 0 && !again && key_taken(status, ans)) {
		json_decref(ans);
		ans = NULL;
		rc = reclaim(s, cred, body, &status, &ans, why, whylen);
		reclaimed = true;
	}
	sodium_memzero(cred, sizeof(cred));
	json_decref(body);
	if (rc < 0)
		goto out;
	if (again && (status == 401 || (status == 403 && !json_object_get(ans, "field")))) {
		/* the device is gone (or the service predates registering
		 * again with a token and refuses the scope, naming no field):
		 * the registration key, at once. A 403 that names a field is
		 * about this device (its relay flag): it keeps its token. */
		snprintf(why, whylen, "the device token was refused (HTTP %ld %s): registering with the key",
			 status, svchttp_error_text(ans));
		log_warn("svc", "%s", why);
		token_forget(s);
		rc = 2;
		goto out;
	}
	if (status != 200 && status != 201) {
		snprintf(why, whylen, "registration%s refused: HTTP %ld %s", reclaimed ? " with a key proof" : "",
			 status, svchttp_error_text(ans));
		rc = legacy_nat_refusal(s, status, ans) || legacy_policy_refusal(s, status, ans) ? 2
		     : status >= 500 ? -EAGAIN : -EACCES;
		goto out;
	}
	if (!(ev = ev_new(SVC_EV_REGISTERED))) {
		rc = -ENOMEM;
		goto out;
	}
	if (svcjson_parse_registration(ans, &ev->self, sealed, &ev->vpc_cidr, &ev->has_cidr, &err) < 0) {
		snprintf(why, whylen, "registration answer: field %s %s", err.field, err.msg);
		free(ev);
		rc = -EBADMSG;
		goto out;
	}
	ev->policy = svcjson_policy(ans);
	{
		unsigned char raw[SVC_SEALED_MAX];
		size_t n;
		if (sodium_base642bin(raw, sizeof(raw), sealed, strlen(sealed), NULL, &n, NULL,
				      sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    n <= crypto_box_SEALBYTES || n - crypto_box_SEALBYTES >= sizeof(token) ||
		    crypto_box_seal_open((unsigned char *)token, raw, n, s->cfg.pub, s->cfg.priv) != 0) {
			snprintf(why, whylen, "the device token does not open with our key pair");
			svc_event_free(ev);
			rc = -EBADMSG;
			goto out;
		}
		token[n - crypto_box_SEALBYTES] = 0;
		if (strlen(token) != n - crypto_box_SEALBYTES) {
			snprintf(why, whylen, "the device token holds a NUL byte");
			sodium_memzero(token, sizeof(token));
			svc_event_free(ev);
			rc = -EBADMSG;
			goto out;
		}
	}
	if (reclaimed)
		log_info("svc", "reclaimed device ID with a key proof id=%s vpc=%s", ev->self.id, ev->self.vpc_id);
	token_save(s, token);
	pthread_mutex_lock(&s->mu);
	memcpy(s->token, token, sizeof(token));
	snprintf(s->device_id, sizeof(s->device_id), "%s", ev->self.id);
	snprintf(s->vpc_id, sizeof(s->vpc_id), "%s", ev->self.vpc_id);
	s->registered = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	sodium_memzero(token, sizeof(token));
	post(s, ev);
	rc = 0;
out:
	json_decref(ans);
	return rc;
}

/* 1 when the service no longer knows our token: register again; 2 when it
 * wants the older nat shape: send again at once */
static int do_patch(struct svc *s, char *why, size_t whylen)
{
	char path[128], token[TOKEN_MAX];
	json_t *body, *ans = NULL;
	long status;
	int rc;

	pthread_mutex_lock(&s->mu);
	body = fit_body(s, svcjson_patch_body(&s->report));
	s->report_dirty = false;
	snprintf(path, sizeof(path), "/api/devices/%s", s->device_id);
	memcpy(token, s->token, sizeof(token));
	pthread_mutex_unlock(&s->mu);
	if (!body)
		return -ENOMEM;
	rc = http(s, "PATCH", path, token, body, SVC_REQUEST_TIMEOUT_MS, &status, &ans, why, whylen);
	sodium_memzero(token, sizeof(token));
	json_decref(body);
	if (rc == 0 && status != 200) {
		snprintf(why, whylen, "report refused: HTTP %ld %s", status, svchttp_error_text(ans));
		rc = (status == 401 || status == 404) ? 1 : legacy_nat_refusal(s, status, ans) ? 2 : -EAGAIN;
	}
	json_decref(ans);
	if (rc != 0) {
		/* send it again later */
		pthread_mutex_lock(&s->mu);
		s->report_dirty = true;
		if (rc == 1)
			s->registered = false;
		pthread_mutex_unlock(&s->mu);
	}
	return rc;
}

static void *writer_main(void *arg)
{
	struct svc *s = arg;
	unsigned failures = 0;
	char why[256];

	while (!stopping(s)) {
		bool registered, dirty;
		int rc;

		pthread_mutex_lock(&s->mu);
		registered = s->registered;
		dirty = s->report_dirty;
		pthread_mutex_unlock(&s->mu);
		if (registered && !dirty) {
			if (wait_ms(s, 60000, WAKE_REPORT))
				break;
			continue;
		}
		why[0] = 0;
		rc = registered ? do_patch(s, why, sizeof(why)) : do_register(s, why, sizeof(why));
		if (rc == 0) {
			failures = 0;
			note_result(s, true, "");
			if (!registered)
				log_info("svc", "registered url=%s", cur_url(s));
			continue;
		}
		if (stopping(s))
			break;
		if (rc == 2)
			continue;	/* at once: in the shape an older service knows, or with the key */
		/* an HTTP answer with an error still means the service is there */
		note_result(s, rc != -EIO, why);
		if (rc != -EIO || failures == 0)
			log_warn("svc", "%s: %s", registered ? "report" : "registration", why);
		if (wait_ms(s, svchttp_backoff_ms(failures++), WAKE_STOP))
			break;
	}
	return NULL;
}

/* --- poller: the long poll --------------------------------------------------- */

/* the merged list as an event, when the answer changed anything (the
 * devices, or the policy it carries: *last is the one posted last) */
static void post_peers(struct svc *s, json_t *map, json_t *devices, json_t *deleted, bool full, int64_t rev,
		       json_t *policy, json_t **last)
{
	struct svc_event *ev;
	struct svc_merge mr;
	const char *k;
	json_t *v;
	bool policy_changed = !(policy == *last || (policy && *last && json_equal(policy, *last)));

	if (!full && !json_array_size(devices) && !(deleted && json_array_size(deleted)) && !policy_changed) {
		json_decref(policy);
		return;
	}
	svcjson_merge_changes(map, devices, deleted, full, SVC_DEVICES_MAX, &mr);
	if (mr.no_id > 0)
		log_warn("svc", "device entries without an id skipped count=%d", mr.no_id);
	if (mr.refused > 0)
		log_warn("svc", "peer list: new devices refused past the most the agent keeps max=%d "
			 "count=%d revision=%lld", SVC_DEVICES_MAX, mr.refused, (long long)rev);
	if (!(ev = ev_new(SVC_EV_PEERS))) {
		json_decref(policy);
		return;
	}
	json_decref(*last);
	*last = json_incref(policy);
	ev->policy = policy;
	ev->revision = rev;
	ev->devices = json_array();
	json_object_foreach(map, k, v)
		json_array_append(ev->devices, v);
	post(s, ev);
}

static void *poller_main(void *arg)
{
	struct svc *s = arg;
	json_t *map = json_object(), *last_policy = NULL;
	unsigned failures = 0;
	int64_t since = 0;
	bool full = true;
	char why[256];

	while (map && !stopping(s)) {
		char path[256], token[TOKEN_MAX];
		json_t *ans = NULL, *devices, *deleted;
		struct svc_err err;
		int64_t rev;
		long status;
		bool answer_full = false;
		uint32_t wait_s = full ? 0 : s->cfg.poll_wait_s;
		bool registered;
		int rc;

		pthread_mutex_lock(&s->mu);
		registered = s->registered;
		if (registered) {
			snprintf(path, sizeof(path), "/api/vpcs/%s/devices?since=%lld&wait=%u", s->vpc_id,
				 full ? 0LL : (long long)since, wait_s);
			memcpy(token, s->token, sizeof(token));
		}
		pthread_mutex_unlock(&s->mu);
		if (!registered) {
			if (wait_ms(s, 200, WAKE_REGISTERED))
				break;
			continue;
		}
		why[0] = 0;
		rc = http(s, "GET", path, token, NULL, (long)wait_s * 1000 + SVC_REQUEST_TIMEOUT_MS,
			  &status, &ans, why, sizeof(why));
		sodium_memzero(token, sizeof(token));
		if (rc == 0 && status != 200) {
			snprintf(why, sizeof(why), "peer list refused: HTTP %ld %s", status, svchttp_error_text(ans));
			rc = -EAGAIN;
			if (status == 401) {
				/* our token is gone: the writer registers again */
				pthread_mutex_lock(&s->mu);
				s->registered = false;
				pthread_mutex_unlock(&s->mu);
			}
		}
		if (rc == 0 && svcjson_parse_changes(ans, &rev, &devices, &deleted, &answer_full, &err) < 0) {
			snprintf(why, sizeof(why), "peer list answer: field %s %s", err.field, err.msg);
			rc = -EBADMSG;
		}
		if (rc < 0) {
			json_decref(ans);
			if (stopping(s))
				break;
			note_result(s, rc != -EIO, why);
			if (failures == 0 || rc != -EIO)
				log_warn("svc", "long poll: %s", why);
			full = true;	/* resync when it answers again */
			if (wait_ms(s, svchttp_backoff_ms(failures++), WAKE_STOP))
				break;
			continue;
		}
		failures = 0;
		note_result(s, true, "");
		full |= answer_full;
		post_peers(s, map, devices, deleted, full, rev, svcjson_policy(ans), &last_policy);
		since = rev;
		full = false;
		json_decref(ans);
	}
	json_decref(map);
	json_decref(last_policy);
	return NULL;
}

/* --- life cycle ------------------------------------------------------------- */

void svc_set_report(struct svc *s, const struct svc_report *r)
{
	pthread_mutex_lock(&s->mu);
	s->report = *r;
	s->report_dirty = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

int svc_new(const struct svc_cfg *cfg, const struct svc_report *first, struct svc **out)
{
	struct svc *s;
	char why[256];
	int fds[2], rc;

	*out = NULL;
	if (!cfg->url || !cfg->reg_key ||
	    strlen(cfg->reg_key) >= sizeof(((struct svc *)0)->reg_key) ||
	    (cfg->token_file && strlen(cfg->token_file) >= sizeof(s->token_file)) ||
	    (cfg->ca_file && strlen(cfg->ca_file) >= sizeof(s->ca_file)))
		return -EINVAL;
	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	s->cfg = *cfg;
	for (int i = 0; i < SVC_SOCKS_MAX; i++)
		s->socks[i] = -1;
	if (svcurl_split(cfg->url, &s->urls, why, sizeof(why)) < 0) {
		log_error("svc", "bad service URL list: %s", why);
		free(s);
		return -EINVAL;
	}
	snprintf(s->ca_file, sizeof(s->ca_file), "%s", cfg->ca_file ? cfg->ca_file : "");
	snprintf(s->reg_key, sizeof(s->reg_key), "%s", cfg->reg_key);
	snprintf(s->token_file, sizeof(s->token_file), "%s", cfg->token_file ? cfg->token_file : "");
	s->cfg.token_file = NULL;
	if ((rc = token_load(s)) < 0)
		goto err_free;
	snprintf(s->os, sizeof(s->os), "%s", cfg->os ? cfg->os : "linux");
	s->cfg.url = NULL;	/* the list is in urls */
	s->cfg.reg_key = s->reg_key;
	s->cfg.ca_file = NULL;
	s->cfg.os = s->os;
	if (!s->cfg.poll_wait_s)
		s->cfg.poll_wait_s = SVC_POLL_WAIT_S;
	if (first)
		s->report = *first;
	/* the first answer counts as "reachable" */
	s->reachable = false;
	s->outage_logged = false;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		rc = -errno;
		goto err_free;
	}
	s->pipe_rd = fds[0];
	s->pipe_wr = fds[1];
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		rc = -EIO;
		goto err_pipe;
	}
	if ((rc = -pthread_create(&s->writer, NULL, writer_main, s)) < 0)
		goto err_curl;
	s->writer_started = true;
	if ((rc = -pthread_create(&s->poller, NULL, poller_main, s)) < 0)
		goto err_writer;
	s->poller_started = true;
	*out = s;
	return 0;

err_writer:
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->writer, NULL);
err_curl:
	curl_global_cleanup();
err_pipe:
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	close(s->pipe_rd);
	close(s->pipe_wr);
err_free:
	sodium_memzero(s, sizeof(*s));
	free(s);
	return rc;
}

void svc_free(struct svc *s)
{
	struct svc_event *ev;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	/* a long poll ends now, not at libcurl's next progress call */
	for (int i = 0; i < SVC_SOCKS_MAX; i++)
		if (s->socks[i] >= 0)
			shutdown(s->socks[i], SHUT_RDWR);
	pthread_mutex_unlock(&s->mu);
	if (s->poller_started)
		pthread_join(s->poller, NULL);
	if (s->writer_started)
		pthread_join(s->writer, NULL);
	while ((ev = svc_next_event(s)))
		svc_event_free(ev);
	curl_global_cleanup();
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	close(s->pipe_rd);
	close(s->pipe_wr);
	sodium_memzero(s, sizeof(*s));
	free(s);
}
