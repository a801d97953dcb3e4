/* The control-plane client against a scripted HTTP server on loopback: it
 * registers, opens the sealed token, follows the long poll, PATCHes reports,
 * and rides over garbage, errors and an absent service. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/meshd/svc.h"

#define TOKEN "nmdev_0123456789012345678901234567890123456789012"

struct fake {
	int lfd;
	uint16_t port;
	pthread_t thr;
	atomic_bool stop;
	/* script */
	int garbage_first;		/* answer this many registrations with junk */
	int fail_first_poll;		/* answer this many polls with 503 */
	bool old_nat;			/* refuse nat.ipv4/ipv6, as meshsvc did before them */
	bool old_policy;		/* refuse enforces_policy, as meshsvc did before groups */
	bool groups;			/* answers carry this device's security group */
	atomic_bool refuse_tokens;	/* answer registrations with a device token 401 */
	atomic_bool refuse_relay;	/* ... 403 naming the field relay */
	atomic_bool down;		/* answer everything 503, as a replica without its database */
	atomic_bool hold;		/* hold a poll with nothing new for 5 s, as meshsvc's wait does */
	/* what it saw */
	atomic_int registrations, polls, patches, nat_refusals, policy_refusals, refused;
	char last_poll[256];		/* the request line of the last poll answered */
	char last_patch[4096];
	char last_reg[4096];
	char reg_auth[256];
	pthread_mutex_t mu;
};

static const char *peer_json =
	"{\"id\":\"p1\",\"vpc_id\":\"v1\",\"public_key\":\"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\","
	"\"hostname\":\"n2\",\"tunnel_ip\":\"100.64.0.2\",\"endpoints\":[],\"relay\":false}";
static const char *peer2_json =
	"{\"id\":\"p2\",\"vpc_id\":\"v1\",\"public_key\":\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\","
	"\"hostname\":\"r1\",\"tunnel_ip\":\"100.64.0.3\",\"endpoints\":[],\"relay\":true}";

static void reply(int fd, int status, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n", status, strlen(body));
	/* the client may have gone (an aborted long poll): no SIGPIPE */
	(void)!send(fd, head, (size_t)n, MSG_NOSIGNAL);
	(void)!send(fd, body, strlen(body), MSG_NOSIGNAL);
}

/* reads one request: returns its body in buf after the headers */
static int read_request(int fd, char *buf, size_t cap, char **body)
{
	size_t len = 0;
	char *end;
	long clen = 0;

	for (;;) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = 0;
		if ((end = strstr(buf, "\r\n\r\n")))
			break;
	}
	char *cl = strcasestr(buf, "Content-Length:");
	if (cl && cl < end)
		clen = strtol(cl + 15, NULL, 10);
	while ((long)(len - (size_t)(end + 4 - buf)) < clen) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = 0;
	}
	*body = end + 4;
	return 0;
}

/* an older meshsvc's answer to a nat object with families; 1 when given */
static int old_nat_refusal(struct fake *f, int fd, const char *body)
{
	json_t *b = json_loads(body, 0, NULL), *nat = json_object_get(b, "nat");
	const char *fam = json_object_get(nat, "ipv4") ? "ipv4" : json_object_get(nat, "ipv6") ? "ipv6" : NULL;
	char out[128];

	if (f->old_nat && fam) {
		snprintf(out, sizeof(out), "{\"error\":\"unknown field\",\"field\":\"nat.%s\"}", fam);
		reply(fd, 400, out);
		atomic_fetch_add(&f->nat_refusals, 1);
	}
	json_decref(b);
	return f->old_nat && fam;
}

static void serve(struct fake *f, int fd)
{
	char buf[16384], *body, *auth;

	if (read_request(fd, buf, sizeof(buf), &body) < 0)
		return;
	auth = strcasestr(buf, "Authorization: Bearer ");
	if (atomic_load(&f->down)) {
		atomic_fetch_add(&f->refused, 1);
		reply(fd, 503, "{\"error\":\"the database is unavailable\"}");
		return;
	}
	if (!strncmp(buf, "POST /api/devices ", 18) || !strncmp(buf, "PATCH /api/devices/self ", 24)) {
		if (old_nat_refusal(f, fd, body))
			return;
	}
	if (!strncmp(buf, "POST /api/devices ", 18) && f->old_policy && strstr(body, "\"enforces_policy\"")) {
		atomic_fetch_add(&f->policy_refusals, 1);
		reply(fd, 400, "{\"error\":\"unknown field\",\"field\":\"enforces_policy\"}");
		return;
	}
	if (!strncmp(buf, "POST /api/devices ", 18)) {
		int k = atomic_fetch_add(&f->registrations, 1);
		json_t *b = json_loads(body, 0, NULL);
		uint8_t pub[32], sealed[crypto_box_SEALBYTES + sizeof(TOKEN) - 1];
		char sealed64[256], out[1024];
		pthread_mutex_lock(&f->mu);
		if (auth)
			snprintf(f->reg_auth, sizeof(f->reg_auth), "%.*s", (int)strcspn(auth + 22, "\r"), auth + 22);
		snprintf(f->last_reg, sizeof(f->last_reg), "%s", body);
		pthread_mutex_unlock(&f->mu);
		if (auth && !strncmp(auth + 22, "nmdev_", 6) && atomic_load(&f->refuse_relay)) {
			reply(fd, 403, "{\"error\":\"relaying is granted by the admin\",\"field\":\"relay\"}");
			json_decref(b);
			return;
		}
		if (auth && !strncmp(auth + 22, "nmdev_", 6) && atomic_load(&f->refuse_tokens)) {
			reply(fd, 401, "{\"error\":\"a valid bearer token is required\"}");
			json_decref(b);
			return;
		}
		if (k < f->garbage_first) {
			reply(fd, 200, "<html>not json");
			json_decref(b);
			return;
		}
		cr_assert_eq(svcjson_key_parse(json_string_value(json_object_get(b, "public_key")), pub), 0);
		crypto_box_seal(sealed, (const uint8_t *)TOKEN, sizeof(TOKEN) - 1, pub);
		sodium_bin2base64(sealed64, sizeof(sealed64), sealed, sizeof(sealed),
				  sodium_base64_VARIANT_ORIGINAL);
		snprintf(out, sizeof(out),
			 "{\"id\":\"self\",\"vpc_id\":\"v1\",\"public_key\":\"%s\",\"hostname\":\"n1\","
			 "\"tunnel_ip\":\"100.64.0.1\",\"device_token\":\"%s\",\"relay\":false%s}",
			 json_string_value(json_object_get(b, "public_key")), sealed64,
			 f->groups ? ",\"security_group\":{\"id\":\"sg1\",\"revision\":1}" : "");
		json_decref(b);
		reply(fd, 201, out);
	} else if (!strncmp(buf, "GET /api/vpcs/v1/devices?", 25)) {
		int k = atomic_fetch_add(&f->polls, 1);
		char out[2048], sg[96] = "";
		if (!auth || strncmp(auth + 22, TOKEN, strlen(TOKEN))) {
			reply(fd, 401, "{\"error\":\"bad token\"}");
			return;
		}
		if (k < f->fail_first_poll) {
			reply(fd, 503, "{\"error\":\"busy\"}");
			return;
		}
		pthread_mutex_lock(&f->mu);
		snprintf(f->last_poll, sizeof(f->last_poll), "%.*s", (int)strcspn(buf, "\r"), buf);
		pthread_mutex_unlock(&f->mu);
		/* the group changes (revision 2) once the devices stop changing */
		if (f->groups)
			snprintf(sg, sizeof(sg), ",\"security_group\":{\"id\":\"sg1\",\"revision\":%d}",
				 strstr(buf, "since=0&") || strstr(buf, "since=3&") ? 1 : 2);
		if (strstr(buf, "since=0&")) {
			snprintf(out, sizeof(out), "{\"revision\":3,\"devices\":[%s,{\"id\":\"bad\"}]%s}", peer_json, sg);
		} else if (strstr(buf, "since=3&")) {
			usleep(50000);
			snprintf(out, sizeof(out), "{\"revision\":4,\"devices\":[%s],\"deleted\":[\"p1\"]%s}", peer2_json,
				 sg);
		} else {
			/* nothing changes: hold the poll a little, like a real wait */
			for (int i = 0; i < (atomic_load(&f->hold) ? 500 : 20) && !atomic_load(&f->stop); i++)
				usleep(10000);
			snprintf(out, sizeof(out), "{\"revision\":4,\"devices\":[]%s}", sg);
		}
		reply(fd, 200, out);
	} else if (!strncmp(buf, "PATCH /api/devices/self ", 24)) {
		atomic_fetch_add(&f->patches, 1);
		pthread_mutex_lock(&f->mu);
		snprintf(f->last_patch, sizeof(f->last_patch), "%s", body);
		pthread_mutex_unlock(&f->mu);
		reply(fd, 200, "{}");
	} else {
		reply(fd, 404, "{\"error\":\"no route\"}");
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	while (!atomic_load(&f->stop)) {
		struct pollfd p = { .fd = f->lfd, .events = POLLIN };
		int fd;
		if (poll(&p, 1, 50) <= 0)
			continue;
		if ((fd = accept(f->lfd, NULL, NULL)) < 0)
			continue;
		serve(f, fd);
		close(fd);
	}
	return NULL;
}

static void fake_start(struct fake *f)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);

	pthread_mutex_init(&f->mu, NULL);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(f->lfd, 0);
	cr_assert_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(f->lfd, 16), 0);
	getsockname(f->lfd, (struct sockaddr *)&a, &l);
	f->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&f->thr, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thr, NULL);
	close(f->lfd);
}

/* waits up to ms for an event of that type, freeing the others */
static struct svc_event *wait_event(struct svc *s, enum svc_event_type type, int ms)
{
	for (int t = 0; t < ms; t += 10) {
		struct svc_event *ev;
		while ((ev = svc_next_event(s))) {
			if (ev->type == type)
				return ev;
			svc_event_free(ev);
		}
		struct pollfd p = { .fd = svc_fd(s), .events = POLLIN };
		poll(&p, 1, 10);
	}
	return NULL;
}

static void keys(struct svc_cfg *cfg)
{
	cr_assert_eq(sodium_init() >= 0, 1);
	crypto_box_keypair(cfg->pub, cfg->priv);
}

static bool has_id(json_t *devs, const char *id)
{
	size_t i;
	json_t *d;
	json_array_foreach(devs, i, d)
		if (!strcmp(json_string_value(json_object_get(d, "id")) ?: "", id))
			return true;
	return false;
}

/* the fake service started, cfg given keys and its URL (in url) */
static void start(struct fake *f, struct svc_cfg *cfg, char *url, size_t len)
{
	fake_start(f);
	keys(cfg);
	snprintf(url, len, "http://127.0.0.1:%u/", f->port);
	cfg->url = url;
}

Test(svc, register_poll_patch, .timeout = 30)
{
	struct fake f = { .garbage_first = 1, .fail_first_poll = 1 };
	struct svc_cfg cfg = { .reg_key = "nmreg_secret", .os = "linux", .poll_wait_s = 1 };
	struct svc_report r = { 0 };
	struct svc_event *ev;
	struct svc *s;
	char url[64];

	start(&f, &cfg, url, sizeof(url));
	strcpy(r.hostname, "n1");
	cr_assert_eq(svc_new(&cfg, &r, &s), 0);

	ev = wait_event(s, SVC_EV_REGISTERED, 10000);
	cr_assert_not_null(ev, "no registration");
	cr_assert_str_eq(ev->self.id, "self");
	cr_assert_str_eq(ev->self.vpc_id, "v1");
	cr_assert_eq(ev->self.tunnel_ip.in.sin_addr.s_addr, inet_addr("100.64.0.1"));
	svc_event_free(ev);
	cr_assert_eq(atomic_load(&f.registrations), 2, "the junk answer was retried");
	cr_assert_str_eq(f.reg_auth, "nmreg_secret");

	/* the first poll got 503, the retry the full list; the bad entry is passed
	 * on for the caller to skip */
	ev = wait_event(s, SVC_EV_PEERS, 10000);
	cr_assert_not_null(ev);
	cr_assert_eq(ev->revision, 3);
	cr_assert(has_id(ev->devices, "p1"));
	svc_event_free(ev);
	ev = wait_event(s, SVC_EV_PEERS, 10000);
	cr_assert_not_null(ev);
	cr_assert_eq(ev->revision, 4);
	cr_assert_not(has_id(ev->devices, "p1"), "p1 was deleted");
	cr_assert(has_id(ev->devices, "p2"));
	cr_assert(has_id(ev->devices, "bad"));
	svc_event_free(ev);
	cr_assert(svc_reachable(s));

	r.nep = 1;
	strcpy(r.ep[0].source, "stun:203.0.113.1:3478");
	addr_parse("192.0.2.10:40000", &r.ep[0].addr);
	r.symmetric_nat = true;
	svc_set_report(s, &r);
	for (int i = 0; i < 500 && atomic_load(&f.patches) == 0; i++)
		usleep(10000);
	cr_assert_eq(atomic_load(&f.patches), 1);
	pthread_mutex_lock(&f.mu);
	cr_assert(strstr(f.last_patch, "\"192.0.2.10:40000\""), "%s", f.last_patch);
	cr_assert(strstr(f.last_patch, "\"symmetric_nat\":true"), "%s", f.last_patch);
	pthread_mutex_unlock(&f.mu);
	svc_free(s);
	fake_stop(&f);
}

/* a meshsvc from before NAT findings per family refuses nat.ipv4: the
 * agent registers and reports at once with the first family's findings
 * alone (IPv4 if any, else IPv6), and keeps to that shape */
Test(svc, older_service_gets_the_older_nat, .timeout = 30)
{
	struct fake f = { .old_nat = true };
	struct svc_cfg cfg = { .reg_key = "nmreg_secret", .os = "linux", .poll_wait_s = 1 };
	struct svc_report r = { 0 };
	struct svc_event *ev;
	struct svc *s;
	char url[64];

	start(&f, &cfg, url, sizeof(url));
	strcpy(r.hostname, "n1");
	r.nat[SVC_FAM_IPV4] = (struct svc_nat){ WIRE_DEP_EI, WIRE_DEP_APD, SVC_NAT_TRI_NO };
	r.nat[SVC_FAM_IPV6] = (struct svc_nat){ WIRE_DEP_EI, WIRE_DEP_EI, SVC_NAT_TRI_UNKNOWN };
	cr_assert_eq(svc_new(&cfg, &r, &s), 0);
	ev = wait_event(s, SVC_EV_REGISTERED, 3000);
	cr_assert_not_null(ev, "no registration");
	svc_event_free(ev);
	cr_expect_eq(atomic_load(&f.registrations), 1, "one registration got through");
	cr_expect_eq(atomic_load(&f.nat_refusals), 1, "after one refusal");
	pthread_mutex_lock(&f.mu);
	cr_expect(strstr(f.last_reg, "\"nat\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"address-and-port-dependent\",\"hairpinning\":false}"),
		  "%s", f.last_reg);
	pthread_mutex_unlock(&f.mu);

	/* IPv6 findings alone */
	r.nat[SVC_FAM_IPV4] = (struct svc_nat){ 0 };
	svc_set_report(s, &r);
	for (int i = 0; i < 500 && atomic_load(&f.patches) == 0; i++)
		usleep(10000);
	cr_assert_eq(atomic_load(&f.patches), 1);
	cr_expect_eq(atomic_load(&f.nat_refusals), 1, "no more refusals");
	pthread_mutex_lock(&f.mu);
	cr_expect(strstr(f.last_patch, "\"nat\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"endpoint-independent\"}"),
		  "%s", f.last_patch);
	pthread_mutex_unlock(&f.mu);
	svc_free(s);
	fake_stop(&f);
}

/* one registration of a fresh client on cfg: the credential it sent */
static void register_once(struct fake *f, const struct svc_cfg *cfg, char *auth, size_t len)
{
	struct svc_report r = { 0 };
	struct svc_event *ev;
	struct svc *s;

	strcpy(r.hostname, "n1");
	cr_assert_eq(svc_new(cfg, &r, &s), 0);
	ev = wait_event(s, SVC_EV_REGISTERED, 10000);
	cr_assert_not_null(ev, "no registration");
	svc_event_free(ev);
	svc_free(s);
	pthread_mutex_lock(&f->mu);
	snprintf(auth, len, "%s", f->reg_auth);
	pthread_mutex_unlock(&f->mu);
}

/* issue 15, point 2: the service lets a registered public key in again only
 * with its device token, so a restarted agent sends the token it kept (mode
 * 0600), falls back to the key when the token is refused (the device was
 * deleted), and refuses a token file that others may read */
Test(svc, registers_again_with_the_token_it_kept, .timeout = 30)
{
	struct fake f = { 0 };
	struct svc_cfg cfg = { .reg_key = "nmreg_secret", .os = "linux", .poll_wait_s = 1 };
	char url[64], dir[] = "/tmp/test_svc.XXXXXX", file[64], auth[256];
	struct stat sb;
	struct svc *s;
	FILE *fp;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/device.token", dir);
	cfg.token_file = file;
	start(&f, &cfg, url, sizeof(url));
	register_once(&f, &cfg, auth, sizeof(auth));
	cr_expect_str_eq(auth, "nmreg_secret", "the first time, the registration key");
	cr_assert_eq(stat(file, &sb), 0, "the token is kept");
	cr_expect_eq(sb.st_mode & 0777, 0600);
	register_once(&f, &cfg, auth, sizeof(auth));
	cr_expect_str_eq(auth, TOKEN, "after a restart, the device token");

	cr_assert_not_null(fp = fopen(file, "w"));
	fputs("nmdev_stale\n", fp);
	fclose(fp);
	cr_assert_eq(chmod(file, 0600), 0);
	atomic_store(&f.refuse_tokens, true);
	int before = atomic_load(&f.registrations);
	register_once(&f, &cfg, auth, sizeof(auth));
	cr_expect_str_eq(auth, "nmreg_secret", "a refused token: the registration key at once");
	cr_expect_eq(atomic_load(&f.registrations) - before, 2);

	/* a refusal about the device itself (its relay flag) is no reason to
	 * drop its identity: the token is kept and sent again */
	atomic_store(&f.refuse_tokens, false);
	atomic_store(&f.refuse_relay, true);
	cr_assert_not_null(fp = fopen(file, "w"));
	fputs(TOKEN "\n", fp);
	fclose(fp);
	before = atomic_load(&f.registrations);
	cr_assert_eq(svc_new(&cfg, NULL, &s), 0);
	cr_expect_null(wait_event(s, SVC_EV_REGISTERED, 1500));
	svc_free(s);
	cr_expect_geq(atomic_load(&f.registrations) - before, 2, "retried");
	pthread_mutex_lock(&f.mu);
	cr_expect_str_eq(f.reg_auth, TOKEN, "with the token each time");
	pthread_mutex_unlock(&f.mu);
	cr_expect_eq(access(file, F_OK), 0, "which is kept");

	cr_assert_eq(chmod(file, 0644), 0);
	cr_expect_eq(svc_new(&cfg, NULL, &s), -EPERM, "a token file group or others may read");
	unlink(file);
	rmdir(dir);
	fake_stop(&f);
}

/* no service at all: an UNREACHABLE event, retries, and a quick stop */
Test(svc, unreachable_then_stop, .timeout = 30)
{
	struct svc_cfg cfg = { .reg_key = "nmreg_x", .url = "http://127.0.0.1:1" };
	struct svc_event *ev;
	struct svc *s;
	uint64_t t0;
	struct timespec ts;

	keys(&cfg);
	cr_assert_eq(svc_new(&cfg, NULL, &s), 0);
	ev = wait_event(s, SVC_EV_UNREACHABLE, 5000);
	cr_assert_not_null(ev);
	cr_assert_neq(ev->msg[0], 0);
	svc_event_free(ev);
	cr_assert_not(svc_reachable(s));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	svc_free(s);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	cr_assert_lt((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 - t0, 2000);
	cr_assert_eq(svc_new(&(struct svc_cfg){ .url = NULL }, NULL, &s), -EINVAL);
}

/* issue 16: the registration and the peer lists bring the device's group,
 * and a peer list whose only change is the group is passed on too (once);
 * --no-policy registers with enforces_policy false, and without it once a
 * service that predates the field refuses it */
static int64_t policy_revision(const struct svc_event *ev)
{
	return json_integer_value(json_object_get(json_object_get(ev->policy, "security_group"), "revision"));
}

static void groups_run(bool old_policy)
{
	struct fake f = { .groups = true, .old_policy = old_policy };
	struct svc_cfg cfg = { .reg_key = "nmreg_secret", .os = "linux", .poll_wait_s = 1, .no_policy = true };
	struct svc_report r = { 0 };
	struct svc_event *ev;
	struct svc *s;
	char url[64];
	int peers_events = 0;

	start(&f, &cfg, url, sizeof(url));
	strcpy(r.hostname, "n1");
	cr_assert_eq(svc_new(&cfg, &r, &s), 0);
	ev = wait_event(s, SVC_EV_REGISTERED, 10000);
	cr_assert_not_null(ev, "no registration");
	cr_expect_eq(policy_revision(ev), 1);
	svc_event_free(ev);
	pthread_mutex_lock(&f.mu);
	if (old_policy)
		cr_expect_null(strstr(f.last_reg, "enforces_policy"), "sent again without it: %s", f.last_reg);
	else
		cr_expect_not_null(strstr(f.last_reg, "\"enforces_policy\":false"), "%s", f.last_reg);
	pthread_mutex_unlock(&f.mu);
	cr_expect_eq(atomic_load(&f.policy_refusals), old_policy ? 1 : 0);

	/* revision 3 (devices), 4 (devices), then 4 again with only the group changed */
	while ((ev = wait_event(s, SVC_EV_PEERS, 5000))) {
		int64_t rev = policy_revision(ev);
		peers_events++;
		svc_event_free(ev);
		if (rev == 2)
			break;
	}
	cr_expect_eq(peers_events, 3, "the group's change was posted by itself");
	ev = wait_event(s, SVC_EV_PEERS, 1500);
	cr_expect_null(ev, "an unchanged group is not posted again");
	svc_event_free(ev);
	svc_free(s);
	fake_stop(&f);
}

Test(svc, security_group_and_no_policy, .timeout = 30)
{
	groups_run(false);
}

Test(svc, no_policy_with_a_service_without_groups, .timeout = 30)
{
	groups_run(true);
}

/* three replicas: the first refuses connections, the second answers 503
 * (no database): the client registers and polls on the third; when that
 * one fails, it moves on to the second, now well, and its long poll
 * resumes there from the revision it had */
Test(svc, replicas_fail_over, .timeout = 30)
{
	struct fake a = { 0 }, b = { 0 };
	struct svc_cfg cfg = { .reg_key = "nmreg_secret", .os = "linux", .poll_wait_s = 1 };
	struct svc_event *ev;
	struct svc *s;
	char url[160], line[256] = "";

	atomic_store(&a.down, true);
	fake_start(&a);
	fake_start(&b);
	keys(&cfg);
	snprintf(url, sizeof(url), "http://127.0.0.1:1,http://127.0.0.1:%u/,http://127.0.0.1:%u", a.port, b.port);
	cfg.url = url;
	cr_assert_eq(svc_new(&cfg, NULL, &s), 0);
	ev = wait_event(s, SVC_EV_REGISTERED, 10000);
	cr_assert_not_null(ev, "registered through the third replica");
	svc_event_free(ev);
	cr_expect_eq(atomic_load(&b.registrations), 1);
	cr_expect_geq(atomic_load(&a.refused), 1, "the second was tried");
	ev = wait_event(s, SVC_EV_PEERS, 10000);
	cr_assert_not_null(ev);
	svc_event_free(ev);
	ev = wait_event(s, SVC_EV_PEERS, 10000);
	cr_assert_not_null(ev);
	cr_assert_eq(ev->revision, 4);
	svc_event_free(ev);

	atomic_store(&a.down, false);
	atomic_store(&b.down, true);
	for (int i = 0; i < 500 && !atomic_load(&a.polls); i++)
		usleep(10000);
	cr_assert_geq(atomic_load(&a.polls), 1, "the poll moved to the second replica");
	pthread_mutex_lock(&a.mu);
	snprintf(line, sizeof(line), "%s", a.last_poll);
	pthread_mutex_unlock(&a.mu);
	cr_expect(strstr(line, "since=4&"), "resumed from revision 4: %s", line);
	cr_expect_eq(atomic_load(&a.registrations), 0, "no second registration");
	cr_expect(svc_reachable(s));
	svc_free(s);
	fake_stop(&a);
	fake_stop(&b);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* a long poll the service holds ends at svc_free, not at libcurl's next
 * progress call (up to 1 s on): meshd stops at once */
Test(svc, stop_ends_a_held_long_poll_at_once, .timeout = 30)
{
	struct fake f = { 0 };
	struct svc_cfg cfg = { .reg_key = "nmreg_secret", .os = "linux", .poll_wait_s = 25 };
	struct svc_event *ev;
	struct svc *s;
	char url[64];
	uint64_t t0, took;

	atomic_store(&f.hold, true);
	start(&f, &cfg, url, sizeof(url));
	cr_assert_eq(svc_new(&cfg, NULL, &s), 0);
	for (int rev = 3; rev <= 4; rev++) {
		ev = wait_event(s, SVC_EV_PEERS, 10000);
		cr_assert_not_null(ev);
		svc_event_free(ev);
	}
	usleep(300000);	/* the next poll (since=4) is held now */
	t0 = mono_ms();
	svc_free(s);
	took = mono_ms() - t0;
	cr_expect_lt(took, 300, "svc_free took %llu ms", (unsigned long long)took);
	fake_stop(&f);
}
