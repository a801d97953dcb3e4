/* `meshsim impair`: the delay line for people who build their own
 * topologies: run one between two interfaces of a namespace, change a
 * running one, show its state and counters. */
#include "impaircli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "impairline.h"
#include "netns.h"

const char sim_impair_usage[] =
	"usage: meshsim impair run NETNS --dev A --peer-dev B [--name NAME] [--seed N] [IMPAIRMENT...] [JSON]\n"
	"       meshsim impair set NETNS --dev A [IMPAIRMENT...] [JSON]\n"
	"       meshsim impair show NETNS --dev A\n"
	"run: a delay line between the interfaces A and B of namespace NETNS (\"-\": this one),\n"
	"in the foreground until SIGINT/SIGTERM; frames A -> B are \"egress\", B -> A \"ingress\".\n"
	"A and B are usually veth ends whose peers are the two sides of the link; segmentation\n"
	"offloads are turned off on A and B, and must be off on their peers too\n"
	"(ethtool -K PEER tso off gso off tx-udp-segmentation off); for throughput, GRO and\n"
	"threaded NAPI on the peers (ethtool -K PEER gro on; echo 1 >/sys/class/net/PEER/threaded).\n"
	"set: changes a running line (only what is given); show: its state and counters (JSON).\n"
	"IMPAIRMENT, for both directions:\n"
	"  --delay MS  --jitter MS (uniform, at most the delay)  --loss PCT  --duplicate PCT\n"
	"  --reorder PCT (0..50)  --rate KBIT  --queue-packets N | --queue-kbytes N\n"
	"JSON, for one direction: '{\"egress\": {\"delay_ms\": 50}, \"ingress\": {\"loss_percent\": 1}}'.\n"
	"--seed N (default 1) and --name NAME (default A) seed the per-packet decisions.\n";

static const struct option longopts[] = {
	{ "dev", required_argument, NULL, 'd' },
	{ "peer-dev", required_argument, NULL, 'p' },
	{ "name", required_argument, NULL, 'n' },
	{ "seed", required_argument, NULL, 's' },
	{ "delay", required_argument, NULL, 'D' },
	{ "jitter", required_argument, NULL, 'J' },
	{ "loss", required_argument, NULL, 'L' },
	{ "duplicate", required_argument, NULL, 'U' },
	{ "reorder", required_argument, NULL, 'R' },
	{ "rate", required_argument, NULL, 'T' },
	{ "queue-packets", required_argument, NULL, 'P' },
	{ "queue-kbytes", required_argument, NULL, 'K' },
	{ NULL, 0, NULL, 0 },
};

/* the JSON key of an impairment option */
static const char *option_key(int c, bool *integer)
{
	*integer = c == 'T' || c == 'P' || c == 'K';
	switch (c) {
	case 'D': return "delay_ms";
	case 'J': return "jitter_ms";
	case 'L': return "loss_percent";
	case 'U': return "duplicate_percent";
	case 'R': return "reorder_percent";
	case 'T': return "rate_kbit";
	case 'P': return "queue_packets";
	case 'K': return "queue_kbytes";
	}
	return NULL;
}

static void on_stop(int sig)
{
	(void)sig;
	impair_line_stop = 1;
}

static int enter_ns(const char *ns)
{
	if (!strcmp(ns, "-"))
		return 0;
	int fd = netns_open(ns), rc = fd < 0 ? fd : netns_enter(fd);
	if (fd >= 0)
		close(fd);
	if (rc)
		fprintf(stderr, "meshsim impair: namespace %s: %s\n", ns, strerror(-rc));
	return rc;
}

struct cli {
	const char *verb, *ns, *dev, *peer, *name;
	uint64_t seed;
	json_t *update;		/* the options and the JSON argument, as one update */
};

static int parse(int argc, char **argv, struct cli *o)
{
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		bool integer;
		const char *key = option_key(c, &integer);
		char *end;
		if (key) {
			double x = strtod(optarg, &end);
			if (end == optarg || *end) {
				const char *opt = key;
				for (size_t i = 0; longopts[i].name; i++)
					if (longopts[i].val == c)
						opt = longopts[i].name;
				fprintf(stderr, "meshsim impair: --%s %s: not a number\n", opt, optarg);
				return -EDOM;
			}
			json_object_set_new(o->update, key, integer && x == (double)(long long)x ?
						    json_integer((json_int_t)x) : json_real(x));
		} else if (c == 'd') {
			o->dev = optarg;
		} else if (c == 'p') {
			o->peer = optarg;
		} else if (c == 'n') {
			o->name = optarg;
		} else if (c == 's') {
			o->seed = strtoull(optarg, &end, 0);
			if (end == optarg || *end)
				return -EINVAL;
		} else {
			return -EINVAL;
		}
	}
	/* VERB NETNS [JSON] */
	if (argc - optind < 2 || argc - optind > 3)
		return -EINVAL;
	o->verb = argv[optind];
	o->ns = argv[optind + 1];
	if (argc - optind == 3) {
		json_error_t jerr;
		json_t *j = json_loads(argv[optind + 2], JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(j)) {
			fprintf(stderr, "meshsim impair: %s: %s\n", argv[optind + 2], j ? "not an object" : jerr.text);
			json_decref(j);
			return -EDOM;
		}
		json_object_update(o->update, j);
		json_decref(j);
	}
	if (!o->dev || (strcmp(o->verb, "run") ? o->peer != NULL : o->peer == NULL))
		return -EINVAL;
	return 0;
}

static int cli_run(struct cli *o)
{
	struct impair_line_opts lo = { .seed = o->seed, .ready_fd = -1 };
	struct impair_err err = { "", "" };
	if (impair_update(o->update, "", NULL, lo.dir, &err) < 0) {
		fprintf(stderr, "meshsim impair: %s%s%s\n", err.path, err.path[0] ? ": " : "", err.reason);
		return 2;
	}
	snprintf(lo.dev_a, sizeof(lo.dev_a), "%s", o->dev);
	snprintf(lo.dev_b, sizeof(lo.dev_b), "%s", o->peer);
	snprintf(lo.name, sizeof(lo.name), "%s", o->name ? o->name : o->dev);
	if (enter_ns(o->ns))
		return 2;
	for (int i = 0; i < 2; i++) {
		const char *dev = i ? lo.dev_b : lo.dev_a;
		int rc = impair_offloads_off(dev);
		if (rc) {
			fprintf(stderr, "meshsim impair: %s: cannot turn offloads off: %s\n", dev, strerror(-rc));
			return 3;
		}
	}
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rc = impair_line_run(&lo);
	return rc ? 3 : 0;
}

static int cli_ctl(struct cli *o)
{
	char *text = json_dumps(o->update, JSON_COMPACT), *reply = NULL;
	int rc = text ? 0 : -ENOMEM;
	if (!rc && enter_ns(o->ns))
		rc = -EINVAL;
	else if (!rc)
		rc = impair_ctl(o->dev, text, 2000, &reply);
	free(text);
	if (rc == -EINVAL)
		return 2;
	if (rc) {
		fprintf(stderr, "meshsim impair: no delay line on %s in %s: %s\n", o->dev, o->ns, strerror(-rc));
		return 3;
	}
	json_t *j = json_loads(reply, 0, NULL);
	const char *e = json_string_value(json_object_get(j, "error"));
	if (e)
		fprintf(stderr, "meshsim impair: %s\n", e);
	else
		printf("%s\n", reply);
	json_decref(j);
	free(reply);
	return e ? 2 : 0;
}

int sim_impair_main(int argc, char **argv)
{
	struct cli o = { .seed = 1, .update = json_object() };
	int code;
	if (!o.update)
		return 3;
	int rc = parse(argc, argv, &o);
	if (rc == -EDOM) {	/* a bad value, already named */
		json_decref(o.update);
		return 2;
	}
	if (rc < 0 || (strcmp(o.verb, "run") && strcmp(o.verb, "set") && strcmp(o.verb, "show")) ||
	    (!strcmp(o.verb, "show") && json_object_size(o.update))) {
		fputs(sim_impair_usage, stderr);
		json_decref(o.update);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "meshsim: this verb needs root\n");
		json_decref(o.update);
		return 2;
	}
	code = !strcmp(o.verb, "run") ? cli_run(&o) : cli_ctl(&o);
	json_decref(o.update);
	return code;
}
