/* meshctl security-group: a VPC's security groups on meshsvc (issue 16).
 * Rules are given as JSON (an array of rules, or @FILE holding one) and shown
 * one per line: "in  tcp 80-80 from groups web, 10.0.0.0/8", with the groups
 * a rule names by their names. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshctl.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct column group_cols[] = {
	{ "ID", "id" }, { "VPC_ID", "vpc_id" }, { "NAME", "name" }, { "INBOUND", "inbound" },
	{ "OUTBOUND", "outbound" }, { "REVISION", "revision" }, { "DESCRIPTION", "description" },
};

static int bad_usage(void)
{
	for (size_t i = 0; i < admin_ncommands; i++)
		if (!strcmp(admin_commands[i].name, "security-group"))
			fprintf(stderr, "usage:\n%s", admin_commands[i].usage);
	return 2;
}

/* --inbound/--outbound: JSON text, or @FILE; NULL after a line on stderr */
static json_t *rules_arg(const char *opt, const char *arg)
{
	json_error_t e;
	json_t *v = arg[0] == '@' ? json_load_file(arg + 1, JSON_REJECT_DUPLICATES, &e)
				  : json_loads(arg, JSON_REJECT_DUPLICATES, &e);

	if (!v)
		fprintf(stderr, "meshctl: --%s: %s%s: line %d: %s\n", opt, arg[0] == '@' ? "" : "the JSON",
			arg[0] == '@' ? arg + 1 : "", e.line, e.text);
	else if (!json_is_array(v)) {
		fprintf(stderr, "meshctl: --%s: must be a JSON array of rules\n", opt);
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* the group's name for an id, from the VPC's groups (the id when unknown) */
static const char *name_of(const json_t *groups, const char *id)
{
	size_t i;
	json_t *g;

	json_array_foreach(groups, i, g)
		if (!strcmp(json_string_value(json_object_get(g, "id")), id))
			return json_string_value(json_object_get(g, "name"));
	return id;
}

static void rule_line(const char *dir, const json_t *r, const json_t *groups)
{
	const char *proto = json_string_value(json_object_get(r, "ip_protocol"));
	json_int_t from = json_integer_value(json_object_get(r, "from_port"));
	json_int_t to = json_integer_value(json_object_get(r, "to_port"));
	json_t *names = json_object_get(r, "groups"), *ranges = json_object_get(r, "ip_ranges"), *v;
	bool first = true;
	size_t i;

	printf("%-3s %s", dir, proto ? proto : "any");
	if (proto && (!strcmp(proto, "tcp") || !strcmp(proto, "udp"))) {
		if (from || to)
			printf(" %lld-%lld", (long long)from, (long long)to);
		else
			printf(" all ports");
	}
	printf(" %s ", !strcmp(dir, "in") ? "from" : "to");
	if (json_array_size(names)) {
		printf("groups ");
		json_array_foreach(names, i, v) {
			printf("%s%s", first ? "" : ", ", name_of(groups, json_string_value(v)));
			first = false;
		}
	}
	json_array_foreach(ranges, i, v) {
		printf("%s%s", first ? "" : ", ", json_string_value(v));
		first = false;
	}
	printf("%s\n", first ? "anyone in the VPC" : "");
}

/* one group, in full: its fields, then a rule a line */
static void show_group(const struct ctl *ctl, const json_t *g)
{
	char path[256];
	json_t *groups = NULL, *r;
	size_t i;

	if (ctl->json) {
		output(ctl, g, NULL, 0);
		return;
	}
	/* for the names of the groups the rules name */
	snprintf(path, sizeof(path), "/api/security-groups?vpc_id=%s", json_string_value(json_object_get(g, "vpc_id")));
	if (service_request(ctl, "GET", path, NULL, &groups) < 0)
		groups = NULL;
	printf("id:          %s\n", json_string_value(json_object_get(g, "id")));
	printf("vpc_id:      %s\n", json_string_value(json_object_get(g, "vpc_id")));
	printf("name:        %s\n", json_string_value(json_object_get(g, "name")));
	printf("description: %s\n", json_string_value(json_object_get(g, "description")));
	printf("revision:    %lld\n", (long long)json_integer_value(json_object_get(g, "revision")));
	json_array_foreach(json_object_get(g, "inbound_rules"), i, r)
		rule_line("in", r, groups);
	json_array_foreach(json_object_get(g, "outbound_rules"), i, r)
		rule_line("out", r, groups);
	if (!json_array_size(json_object_get(g, "inbound_rules")))
		printf("in  nothing\n");
	if (!json_array_size(json_object_get(g, "outbound_rules")))
		printf("out nothing\n");
	json_decref(groups);
}

static int list(const struct ctl *ctl, int argc, char **argv)
{
	char path[256] = "/api/security-groups";
	json_t *out, *rows, *g;
	size_t i;

	if (argc == 4 && !strcmp(argv[2], "--vpc"))
		snprintf(path, sizeof(path), "/api/security-groups?vpc_id=%s", argv[3]);
	else if (argc != 2)
		return bad_usage();
	if (service_request(ctl, "GET", path, NULL, &out) < 0)
		return 1;
	if (ctl->json) {
		output(ctl, out, NULL, 0);
		json_decref(out);
		return 0;
	}
	rows = json_array();
	json_array_foreach(out, i, g) {
		json_t *row = json_deep_copy(g);

		json_object_set_new(row, "inbound", json_integer((json_int_t)json_array_size(json_object_get(g, "inbound_rules"))));
		json_object_set_new(row, "outbound", json_integer((json_int_t)json_array_size(json_object_get(g, "outbound_rules"))));
		json_array_append_new(rows, row);
	}
	output(ctl, rows, group_cols, N(group_cols));
	json_decref(rows);
	json_decref(out);
	return 0;
}

/* create and update: the body from the options; NULL on a bad one */
static json_t *body_of(int argc, char **argv, bool create)
{
	static const struct option opts[] = {
		{ "vpc", required_argument, NULL, 'v' },
		{ "name", required_argument, NULL, 'n' },
		{ "description", required_argument, NULL, 'd' },
		{ "inbound", required_argument, NULL, 'i' },
		{ "outbound", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *body = json_object(), *rules;
	int opt;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'v':
			if (!create)
				goto bad;
			json_object_set_new(body, "vpc_id", json_string(optarg));
			break;
		case 'n': json_object_set_new(body, "name", json_string(optarg)); break;
		case 'd': json_object_set_new(body, "description", json_string(optarg)); break;
		case 'i':
		case 'o':
			if (!(rules = rules_arg(opt == 'i' ? "inbound" : "outbound", optarg)))
				goto bad;
			json_object_set_new(body, opt == 'i' ? "inbound_rules" : "outbound_rules", rules);
			break;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	if (create && (!json_object_get(body, "vpc_id") || !json_object_get(body, "name")))
		goto bad;
	return body;
bad:
	json_decref(body);
	return NULL;
}

static int send_group(struct ctl *ctl, const char *method, const char *path, json_t *body)
{
	json_t *out;
	int rc;

	if (!body)
		return bad_usage();
	rc = service_request(ctl, method, path, body, &out);
	json_decref(body);
	if (rc < 0)
		return 1;
	show_group(ctl, out);
	json_decref(out);
	return 0;
}

int secgroup_run(struct ctl *ctl, int argc, char **argv)
{
	char path[256];
	json_t *out;

	if (argc < 2)
		return bad_usage();
	if (!strcmp(argv[1], "list"))
		return list(ctl, argc, argv);
	if (!strcmp(argv[1], "create"))
		return send_group(ctl, "POST", "/api/security-groups", body_of(argc - 1, argv + 1, true));
	if (argc < 3)
		return bad_usage();
	snprintf(path, sizeof(path), "/api/security-groups/%s", argv[2]);
	if (!strcmp(argv[1], "update"))
		return send_group(ctl, "PATCH", path, body_of(argc - 2, argv + 2, false));
	if (argc != 3)
		return bad_usage();
	if (!strcmp(argv[1], "show")) {
		if (service_request(ctl, "GET", path, NULL, &out) < 0)
			return 1;
		show_group(ctl, out);
		json_decref(out);
		return 0;
	}
	if (!strcmp(argv[1], "delete")) {
		if (service_request(ctl, "DELETE", path, NULL, &out) < 0)
			return 1;
		json_decref(out);
		if (ctl->json)
			printf("{\"deleted\": \"%s\"}\n", argv[2]);
		else
			printf("deleted security-group %s\n", argv[2]);
		return 0;
	}
	return bad_usage();
}

const char secgroup_usage[] =
	"  security-group create --vpc ID --name NAME [--description TEXT]\n"
	"                 [--inbound JSON|@FILE] [--outbound JSON|@FILE]\n"
	"                                      a group; rules are a JSON array of\n"
	"                                      {ip_protocol, from_port, to_port, ip_ranges, groups}\n"
	"                                      (groups by id or name); absent: none\n"
	"  security-group list [--vpc ID]\n"
	"  security-group show ID              its rules, one a line\n"
	"  security-group update ID [--name NAME] [--description TEXT] [--inbound JSON|@FILE]\n"
	"                 [--outbound JSON|@FILE]\n"
	"  security-group delete ID            (refused for the default group and while used)\n";
