/* meshsvc: the natmesh control plane. Agents register with it, learn their
 * tunnel address and peers, report endpoints and long-poll for changes. See
 * api.h for the HTTP side and store.h for durability. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "api.h"
#include "challenge.h"
#include "db.h"
#include "log.h"
#include "store.h"
#include "token.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_DB "meshsvc.db"
#define TOKEN_FILE_SUFFIX ".admin-token"
/* the admin token's default file when --db is a URL, not a path */
#define DEFAULT_URL_TOKEN "meshsvc" TOKEN_FILE_SUFFIX
/* descriptors kept back from the connection limit: database, listener, epoll */
#define FD_RESERVE 64
#define PEM_MAX (1024 * 1024)
/* the bounds of --offline-after and --tombstone-ttl (a year) */
#define OFFLINE_AFTER_MIN 2
#define LIMIT_MAX_S (366 * 24 * 3600)
/* the bound of --per-address (and of the other counts) */
#define COUNT_MAX 1000000

static void usage(FILE *f)
{
	fprintf(f,
		"usage: meshsvc [--listen ADDR:PORT] [--db PATH|URL] [--tls-cert FILE --tls-key FILE]\n"
		"               [--admin-token-file FILE] [--offline-after S] [--tombstone-ttl S]\n"
		"               [--per-address N] [--header-timeout S] [--polls-per-token N]\n"
		"               [--challenge-ttl S] [--log-format text|json] [--verbose]\n"
		"\n"
		"  --listen ADDR:PORT       address to serve on (default " DEFAULT_LISTEN "; port 0: any)\n"
		"  --db PATH|URL            SQLite database, created if missing (default ./" DEFAULT_DB "),\n"
		"                           or a PostgreSQL database: postgres://USER[:PASSWORD]@HOST[:PORT]/DB\n"
		"                           (or postgresql://; libpq's URL and parameters)\n"
		"  --tls-cert, --tls-key    PEM certificate (chain) and key: serve HTTPS only\n"
		"  --admin-token-file FILE  the admin token; created (mode 0600) if missing\n"
		"                           (default: the database path + " TOKEN_FILE_SUFFIX ",\n"
		"                           ./" DEFAULT_URL_TOKEN " for a PostgreSQL URL)\n"
		"  --offline-after S        a device without a request for S seconds is published\n"
		"                           offline, with a new revision (default %d; %d..%d)\n"
		"  --tombstone-ttl S        a deleted device's tombstone is kept S seconds; a client\n"
		"                           whose last revision is older gets the whole list\n"
		"                           (default %d; %d..%d)\n"
		"  --per-address N          connections from one address (default %d, at most\n"
		"                           half of the connection limit; 1..%d)\n"
		"  --header-timeout S       a connection's request head must be complete within\n"
		"                           S seconds of its start, however slowly it trickles in\n"
		"                           (default %d; 1..%d)\n"
		"  --polls-per-token N      long polls one device token may have waiting; past\n"
		"                           them, 429 with Retry-After (default %d; 1..%d)\n"
		"  --challenge-ttl S        a key challenge (POST /api/devices/challenge) must be\n"
		"                           answered within S seconds (default %d; 1..%d)\n"
		"  --log-format text|json   log lines for people or machines (default text)\n"
		"  --verbose                debug logs\n",
		DEVICE_ONLINE_WINDOW_S, OFFLINE_AFTER_MIN, LIMIT_MAX_S, TOMBSTONE_TTL_S, 1, LIMIT_MAX_S,
		API_PER_ADDRESS_DEFAULT, COUNT_MAX, API_HEADER_TIMEOUT_S, API_IDLE_TIMEOUT_S,
		API_POLLS_PER_TOKEN, COUNT_MAX, CHALLENGE_TTL_S_DEFAULT, CHALLENGE_TTL_MAX_S);
}

/* the whole file, NUL-terminated */
static int read_file(const char *path, size_t max, char **out)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;
	int rc = 0;

	*out = NULL;
	if (!f)
		return -errno;
	if (!(buf = malloc(max + 1))) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f))
		rc = -EIO;
	else if (n > max)
		rc = -EFBIG;
	fclose(f);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[n] = 0;
	*out = buf;
	return 0;
}

static int create_admin_token(const char *path, uint8_t hash[TOKEN_HASH_BYTES])
{
	char token[TOKEN_STRLEN + 1];
	int fd, rc = 0;

	token_generate(TOKEN_ADMIN, token);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		log_error("meshsvc", "cannot create the admin token file path=%s: %s", path, strerror(errno));
		goto out;
	}
	strcat(token, "\n");
	if (fchmod(fd, 0600) < 0 || write(fd, token, strlen(token)) != (ssize_t)strlen(token) ||
	    fsync(fd) < 0) {
		rc = -errno;
		log_error("meshsvc", "cannot write the admin token file path=%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		goto out;
	}
	close(fd);
	token[strlen(token) - 1] = 0;
	token_hash(token, hash);
	log_info("meshsvc", "created the admin token (mode 0600) path=%s", path);
out:
	sodium_memzero(token, sizeof(token));
	return rc;
}

/* the admin token's hash, from its file, which is created on first start */
static int admin_token(const char *path, uint8_t hash[TOKEN_HASH_BYTES])
{
	enum token_scope scope;
	struct stat sb;
	char *text;
	int rc;

	rc = read_file(path, 4096, &text);
	if (rc == -ENOENT)
		return create_admin_token(path, hash);
	if (rc < 0) {
		log_error("meshsvc", "cannot read the admin token file path=%s: %s", path, strerror(-rc));
		return rc;
	}
	text[strcspn(text, " \t\r\n")] = 0;
	if (token_scope_of(text, &scope) < 0 || scope != TOKEN_ADMIN) {
		log_error("meshsvc", "the admin token file holds no admin token path=%s", path);
		rc = -EINVAL;
	} else {
		token_hash(text, hash);
		if (stat(path, &sb) == 0 && (sb.st_mode & 077))
			log_warn("meshsvc", "the admin token file is readable by others path=%s mode=%03o",
				 path, (unsigned)(sb.st_mode & 0777));
		log_info("meshsvc", "admin token path=%s", path);
	}
	sodium_memzero(text, strlen(text));
	free(text);
	return rc;
}

/* a number of seconds in min..LIMIT_MAX_S for option name, or -1 (said why) */
static int64_t parse_seconds(const char *name, const char *text, int64_t min)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno || end == text || *end || v < min || v > LIMIT_MAX_S) {
		fprintf(stderr, "meshsvc: --%s wants a whole number of seconds, %lld..%d: %s\n", name,
			(long long)min, LIMIT_MAX_S, text);
		return -1;
	}
	return v;
}

/* a count in 1..max for option name, or 0 (said why) */
static unsigned parse_count(const char *name, const char *text, unsigned max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || v < 1 || v > max) {
		fprintf(stderr, "meshsvc: --%s wants a whole number, 1..%u: %s\n", name, max, text);
		return 0;
	}
	return (unsigned)v;
}

/* as many descriptors as allowed: every long poll holds one */
static unsigned raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024 - FD_RESERVE;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max;
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur > 1000000)
		rl.rlim_cur = 1000000;
	return rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE) : FD_RESERVE;
}

/* the main thread's work until SIGINT or SIGTERM: once a second, publish
 * devices that went quiet and prune old tombstones */
/* Housekeeping once a second, and at once when another meshsvc on the same
 * PostgreSQL database changed a VPC (bell: a LISTENing connection of its
 * own; the store then reads every VPC's revision), until SIGINT or
 * SIGTERM (sfd: a signalfd of sigs). */
static void run_until_signal(struct api *api, int sfd, struct db *bell)
{
	struct signalfd_siginfo si = { 0 };

	for (;;) {
		struct pollfd p[2] = { { sfd, POLLIN, 0 }, { bell ? db_doorbell_fd(bell) : -1, POLLIN, 0 } };
		int n = poll(p, 2, 1000);

		if (n > 0 && (p[0].revents & POLLIN)) {
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				break;
			continue;
		}
		if (n == 0 && bell && p[1].fd < 0)
			db_doorbell_drain(bell);	/* lost: try again */
		if (n > 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP)) && db_doorbell_drain(bell) <= 0)
			continue;
		if (n >= 0)
			api_housekeeping(api);
	}
	log_info("meshsvc", "stopping signal=%s", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
}

/* the command line */
struct options {
	const char *listen, *db, *cert_path, *key_path;
	char *token_path;		/* owned */
	enum log_format format;
	enum log_level level;
	struct store_limits limits;
	unsigned per_address, header_timeout_s, polls_per_token, challenge_ttl_s;	/* 0: the defaults */
};

/* 0 to go on; -EINVAL (or -ENOMEM) to stop with the exit status in *status
 * (0 after --help) */
static int parse_args(int argc, char **argv, struct options *o, int *status)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "db", required_argument, NULL, 'd' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "admin-token-file", required_argument, NULL, 'a' },
		{ "offline-after", required_argument, NULL, 'o' },
		{ "tombstone-ttl", required_argument, NULL, 't' },
		{ "per-address", required_argument, NULL, 'p' },
		{ "header-timeout", required_argument, NULL, 'H' },
		{ "polls-per-token", required_argument, NULL, 'P' },
		{ "challenge-ttl", required_argument, NULL, 'C' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*status = 2;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l': o->listen = optarg; break;
		case 'd': o->db = optarg; break;
		case 'c': o->cert_path = optarg; break;
		case 'k': o->key_path = optarg; break;
		case 'a':
			free(o->token_path);
			if (!(o->token_path = strdup(optarg))) {
				*status = 1;
				return -ENOMEM;
			}
			break;
		case 'f':
			if (log_parse_format(optarg, &o->format) < 0) {
				fprintf(stderr, "meshsvc: --log-format must be text or json\n");
				*status = 1;
				return -EINVAL;
			}
			break;
		case 'o':
			if ((o->limits.offline_after_s = parse_seconds("offline-after", optarg, OFFLINE_AFTER_MIN)) < 0)
				return -EINVAL;
			break;
		case 't':
			if ((o->limits.tombstone_ttl_s = parse_seconds("tombstone-ttl", optarg, 1)) < 0)
				return -EINVAL;
			break;
		case 'p':
			if (!(o->per_address = parse_count("per-address", optarg, COUNT_MAX)))
				return -EINVAL;
			break;
		case 'H':
			if (!(o->header_timeout_s = parse_count("header-timeout", optarg, API_IDLE_TIMEOUT_S)))
				return -EINVAL;
			break;
		case 'P':
			if (!(o->polls_per_token = parse_count("polls-per-token", optarg, COUNT_MAX)))
				return -EINVAL;
			break;
		case 'C':
			if (!(o->challenge_ttl_s = parse_count("challenge-ttl", optarg, CHALLENGE_TTL_MAX_S)))
				return -EINVAL;
			break;
		case 'v': o->level = LOG_DEBUG; break;
		case 'h': usage(stdout); *status = 0; return -EINVAL;
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind != argc || !o->cert_path != !o->key_path) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { .listen = DEFAULT_LISTEN, .db = DEFAULT_DB, .format = LOG_FORMAT_TEXT,
			     .level = LOG_INFO };
	char *cert = NULL, *key = NULL, where[ADDR_STRLEN], shown[DB_TARGET_STRLEN];
	struct api_config cfg = { 0 };
	struct store *st = NULL;
	struct api *api = NULL;
	struct db *bell = NULL;
	sigset_t sigs;
	int sfd;
	int rc, status = 1;

	if (parse_args(argc, argv, &o, &status) < 0)
		goto err_args;
	status = 1;
	cfg.limits = o.limits;
	cfg.per_address = o.per_address;
	cfg.header_timeout_s = o.header_timeout_s;
	cfg.polls_per_token = o.polls_per_token;
	cfg.challenge_ttl_s = o.challenge_ttl_s;
	log_setup(o.format, o.level);
	if (addr_parse(o.listen, &cfg.listen) < 0) {
		log_error("meshsvc", "--listen wants IP:PORT or [IPv6]:PORT value=%s", o.listen);
		status = 2;
		goto err_args;
	}
	if (!o.token_path && db_is_url(o.db) && !(o.token_path = strdup(DEFAULT_URL_TOKEN)))
		goto err_args;
	if (!o.token_path && asprintf(&o.token_path, "%s" TOKEN_FILE_SUFFIX, o.db) < 0) {
		o.token_path = NULL;
		goto err_args;
	}
	if (sodium_init() < 0) {
		log_error("meshsvc", "libsodium failed to initialize");
		goto err_args;
	}
	if (o.cert_path) {
		if ((rc = read_file(o.cert_path, PEM_MAX, &cert)) < 0 || (rc = read_file(o.key_path, PEM_MAX, &key)) < 0) {
			log_error("meshsvc", "cannot read the TLS certificate or key cert=%s key=%s: %s",
				  o.cert_path, o.key_path, strerror(-rc));
			goto err_tls;
		}
		cfg.tls_cert_pem = cert;
		cfg.tls_key_pem = key;
	}
	if (admin_token(o.token_path, cfg.admin_hash) < 0)
		goto err_tls;
	cfg.max_connections = raise_nofile();
	if (store_open(o.db, &st) < 0)
		goto err_store;

	/* the server threads inherit this mask; only sigwait below sees the signals */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (api_start(&cfg, st, &api) < 0)
		goto err_api;
	addr_set_port(&cfg.listen, api_port(api));
	db_target_redact(o.db, shown);
	log_info("meshsvc", "listening url=%s://%s db=%s max_connections=%u per_address=%u", cert ? "https" : "http",
		 addr_format(&cfg.listen, where, sizeof(where)), shown, cfg.max_connections,
		 api_per_address_limit(&cfg));

	/* another replica's change wakes housekeeping at once; without the
	 * bell it runs once a second anyway */
	if (db_is_url(o.db) && db_doorbell_open(o.db, STORE_VPC_CHANNEL, &bell) < 0)
		log_error("meshsvc", "no doorbell connection: other replicas' changes are read once a second");
	if ((sfd = signalfd(-1, &sigs, SFD_CLOEXEC)) < 0) {
		log_error("meshsvc", "signalfd failed: %s", strerror(errno));
		status = 1;
	} else {
		run_until_signal(api, sfd, bell);
		close(sfd);
		status = 0;
	}
	db_close(bell);

	api_stop(api);
err_api:
	store_free(st);
err_store:
	sodium_memzero(cfg.admin_hash, sizeof(cfg.admin_hash));
err_tls:
	if (key)
		sodium_memzero(key, strlen(key));
	free(key);
	free(cert);
err_args:
	free(o.token_path);
	return status;
}
