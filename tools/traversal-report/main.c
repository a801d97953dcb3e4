/* traversal-report: reads the pcaps of a run and prints, per pair of peers,
 * how they found each other: STUN probes and answers, each handshake
 * initiation and the candidate it went to, which was answered, when the first
 * data flowed, and when and why a relay carried it. */
#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: traversal-report [options] RUN_DIR | PCAP...\n"
		"\n"
		"Reads pcap/pcapng captures (Ethernet, Linux cooked v1/v2 or raw IP; IPv4\n"
		"and IPv6), decodes STUN and WireGuard, matches the same datagram across\n"
		"captures on both sides of NAT gateways to learn the translations, and\n"
		"prints a timeline per pair of peers. RUN_DIR stands for every *.pcap and\n"
		"*.pcapng below it (meshsim writes one per link into its run folder).\n"
		"\n"
		"  --json              one JSON document instead of text\n"
		"  --relay IP[:PORT]   this endpoint is a relay; repeatable. Given, only\n"
		"                      the named endpoints are relays; without it, relays\n"
		"                      are recognised by the data they forward\n"
		"  --name IP[:PORT]=LABEL  show LABEL for the peer behind this address;\n"
		"                      repeatable\n"
		"  --key PUBKEY[=LABEL]  a peer's WireGuard public key (base64, as `wg\n"
		"                      pubkey` prints it); repeatable. A handshake's mac1\n"
		"                      is keyed by its receiver's public key, so with the\n"
		"                      keys an unanswered initiation to an address with no\n"
		"                      host behind it is put with the peer it was meant for\n"
		"                      (proven) instead of the initiator's next attempt\n"
		"                      (inferred). LABEL names the peer that holds the key\n"
		"  -h, --help          this text\n"
		"\n"
		"A damaged capture is reported with its byte offsets. In a pcap file a\n"
		"damaged record header is skipped over: reading resumes at the next\n"
		"plausible record, and the skipped bytes are reported as a warning. A\n"
		"pcapng file (read by libpcap, which cannot resynchronise) ends at its\n"
		"first damaged record; what was read before it is used. Exit status: 0\n"
		"all captures read, 1 some capture was damaged or unreadable (the report\n"
		"is still printed), 2 bad usage or out of memory.\n");
}

static bool is_capture_name(const char *n)
{
	size_t l = strlen(n);

	return (l > 5 && !strcmp(n + l - 5, ".pcap")) || (l > 7 && !strcmp(n + l - 7, ".pcapng"));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct paths {
	char **v;
	size_t n, cap;
};

static int paths_add(struct paths *p, const char *s)
{
	char **slot = RP_PUSH(p->v, p->n, p->cap);

	if (!slot)
		return -ENOMEM;
	*slot = strdup(s);
	if (!*slot) {
		p->n--;
		return -ENOMEM;
	}
	return 0;
}

/* every capture below dir, depth-limited (run folders are shallow) */
static int collect_dir(struct paths *p, const char *dir, int depth)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int rc = 0;

	if (!d)
		return -errno;
	while (!rc && (e = readdir(d))) {
		char path[4096];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path))
			continue;
		if (stat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode) && depth < 4)
			rc = collect_dir(p, path, depth + 1);
		else if (S_ISREG(st.st_mode) && is_capture_name(e->d_name))
			rc = paths_add(p, path);
	}
	closedir(d);
	return rc;
}

static int parse_endpoint(const char *s, union sockaddr_any *a, bool *ip_only)
{
	*ip_only = false;
	if (addr_parse(s, a) == 0)
		return 0;
	*ip_only = true;
	return addr_parse_ip(s, 0, a);
}

/* a WireGuard public key in base64 is 44 characters (32 bytes, one '=' of
 * padding); "=LABEL" may follow */
#define KEY_B64_LEN 44

int rp_add_key(struct rp *rp, char *arg)
{
	struct rp_key *k;
	size_t n = 0, len = strlen(arg);
	uint8_t pub[WG_KEY_LEN];

	if (len < KEY_B64_LEN || (len > KEY_B64_LEN && (arg[KEY_B64_LEN] != '=' || len == KEY_B64_LEN + 1)))
		return -EINVAL;
	if (sodium_base642bin(pub, sizeof(pub), arg, KEY_B64_LEN, NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || n != WG_KEY_LEN)
		return -EINVAL;
	if (rp->nkeys >= RP_KEYS_MAX)
		return -E2BIG;
	if (!(k = RP_PUSH(rp->keys, rp->nkeys, rp->keys_cap)))
		return -ENOMEM;
	memcpy(k->pub, pub, sizeof(pub));
	k->named = len > KEY_B64_LEN;
	arg[KEY_B64_LEN] = 0;
	k->label = k->named ? arg + KEY_B64_LEN + 1 : arg;
	k->node = -1;
	wg_cookie_checker_init(&k->mac1, k->pub);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "relay", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ "key", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct rp rp = { 0 };
	struct paths paths = { 0 };
	bool json = false, damaged = false;
	int c, rc = 2;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'r': {
			union sockaddr_any *a = RP_PUSH(rp.relays, rp.nrelays, rp.relays_cap);
			bool ip_only;

			if (!a || parse_endpoint(optarg, a, &ip_only) < 0) {
				fprintf(stderr, "traversal-report: --relay %s: expected IP or IP:PORT\n", optarg);
				goto out;
			}
			break;
		}
		case 'n': {
			struct rp_name *nm = RP_PUSH(rp.names, rp.nnames, rp.names_cap);
			char *eq = strchr(optarg, '=');

			if (!nm || !eq || !eq[1]) {
				fprintf(stderr, "traversal-report: --name %s: expected IP[:PORT]=LABEL\n", optarg);
				goto out;
			}
			*eq = 0;
			nm->label = eq + 1;
			if (parse_endpoint(optarg, &nm->addr, &nm->ip_only) < 0) {
				fprintf(stderr, "traversal-report: --name %s: bad address\n", optarg);
				goto out;
			}
			break;
		}
		case 'k': {
			int e = rp_add_key(&rp, optarg);

			if (e < 0) {
				fprintf(stderr, "traversal-report: --key %s: %s\n", optarg,
					e == -E2BIG ? "too many keys (at most 64)" :
					e == -ENOMEM ? "out of memory" :
					"expected a WireGuard public key (44 characters of base64, 32 bytes), optionally =LABEL");
				goto out;
			}
			break;
		}
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		struct stat st;
		size_t before = paths.n;

		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			int e = collect_dir(&paths, argv[i], 0);

			if (e == -ENOMEM)
				goto oom;
			if (e < 0) {
				fprintf(stderr, "traversal-report: %s: %s\n", argv[i], strerror(-e));
				damaged = true;
			}
			qsort(paths.v + before, paths.n - before, sizeof(*paths.v), cmp_str);
			if (paths.n == before)
				fprintf(stderr, "traversal-report: %s: no *.pcap or *.pcapng files\n", argv[i]);
		} else if (paths_add(&paths, argv[i]) < 0) {
			goto oom;
		}
	}
	for (size_t i = 0; i < paths.n; i++)
		if (rp_read_pcap(&rp, paths.v[i]) < 0)
			goto oom;
	for (size_t i = 0; i < rp.ncaps; i++) {
		rp_print_warnings(&rp.caps[i], stderr);
		damaged |= rp.caps[i].resyncs > 0;
		if (!rp.caps[i].failed)
			continue;
		damaged = true;
		fprintf(stderr, "traversal-report: %s: read error at byte offset %llu: %s\n",
			rp.caps[i].path, (unsigned long long)rp.caps[i].err_offset, rp.caps[i].err);
	}
	if (rp_analyze(&rp) < 0)
		goto oom;
	if (json) {
		if (rp_print_json(&rp) < 0)
			goto oom;
	} else {
		rp_print_text(&rp);
	}
	rc = damaged || !rp.ncaps ? 1 : 0;
	goto out;
oom:
	fprintf(stderr, "traversal-report: out of memory\n");
	rc = 2;
out:
	for (size_t i = 0; i < paths.n; i++)
		free(paths.v[i]);
	free(paths.v);
	rp_free(&rp);
	return rc;
}
