/* the admin commands: VPCs, registration keys and devices on meshsvc */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshctl.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct column vpc_cols[] = {
	{ "ID", "id" }, { "NAME", "name" }, { "IPV4_CIDR", "ipv4_cidr" }, { "CREATED_AT", "created_at" },
};
static const struct column regkey_cols[] = {
	{ "ID", "id" }, { "VPC_ID", "vpc_id" }, { "SINGLE_USE", "single_use" }, { "USED", "used" },
	{ "RELAY", "relay" }, { "REGISTRATIONS", "registrations" }, { "MAX_DEVICES", "max_devices" },
	{ "EXPIRES_AT", "expires_at" }, { "DESCRIPTION", "description" },
};
static const struct column device_cols[] = {
	{ "ID", "id" }, { "VPC_ID", "vpc_id" }, { "HOSTNAME", "hostname" }, { "TUNNEL_IP", "tunnel_ip" },
	{ "ONLINE", "online" }, { "RELAY", "relay" }, { "SECURITY_GROUP_ID", "security_group_id" },
	{ "ENFORCES_POLICY", "enforces_policy" }, { "SYMMETRIC_NAT", "symmetric_nat" },
	{ "ENDPOINTS", "endpoints" }, { "PUBLIC_KEY", "public_key" },
};

static int bad_usage(const char *cmd)
{
	for (size_t i = 0; i < admin_ncommands; i++)
		if (!strcmp(admin_commands[i].name, cmd))
			fprintf(stderr, "usage:\n%s", admin_commands[i].usage);
	return 2;
}

/* GET path and show it */
static int list(const struct ctl *ctl, const char *path, const struct column *cols, size_t n)
{
	json_t *out;
	if (service_request(ctl, "GET", path, NULL, &out) < 0)
		return 1;
	output(ctl, out, cols, n);
	json_decref(out);
	return 0;
}

static int delete(const struct ctl *ctl, const char *what, const char *root, const char *id)
{
	char path[256];
	json_t *out;
	snprintf(path, sizeof(path), "%s/%s", root, id);
	if (service_request(ctl, "DELETE", path, NULL, &out) < 0)
		return 1;
	json_decref(out);
	if (ctl->json)
		printf("{\"deleted\": \"%s\"}\n", id);
	else
		printf("deleted %s %s\n", what, id);
	return 0;
}

static int cmd_vpc(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { { "cidr", required_argument, NULL, 'c' }, { NULL, 0, NULL, 0 } };
	const char *cidr = NULL;
	json_t *body, *out;
	int opt, rc;

	if (argc < 2)
		return bad_usage("vpc");
	if (!strcmp(argv[1], "list") && argc == 2)
		return list(ctl, "/api/vpcs", vpc_cols, N(vpc_cols));
	if (!strcmp(argv[1], "delete") && argc == 3)
		return delete(ctl, "vpc", "/api/vpcs", argv[2]);
	if (strcmp(argv[1], "create"))
		return bad_usage("vpc");
	optind = 0;
	while ((opt = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (opt != 'c')
			return bad_usage("vpc");
		cidr = optarg;
	}
	if (optind != argc - 2)
		return bad_usage("vpc");
	body = json_pack("{s:s}", "name", argv[optind + 1]);
	if (cidr)
		json_object_set_new(body, "ipv4_cidr", json_string(cidr));
	rc = service_request(ctl, "POST", "/api/vpcs", body, &out);
	json_decref(body);
	if (rc < 0)
		return 1;
	output(ctl, out, vpc_cols, N(vpc_cols));
	json_decref(out);
	return 0;
}

static int cmd_regkey(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vpc", required_argument, NULL, 'v' },
		{ "single-use", no_argument, NULL, 's' },
		{ "expires-at", required_argument, NULL, 'e' },
		{ "description", required_argument, NULL, 'd' },
		{ "relay", no_argument, NULL, 'r' },
		{ "max-devices", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *body, *out;
	int opt, rc;

	if (argc < 2)
		return bad_usage("reg-key");
	if (!strcmp(argv[1], "list") && argc == 2)
		return list(ctl, "/api/reg-keys", regkey_cols, N(regkey_cols));
	if (!strcmp(argv[1], "delete") && argc == 3)
		return delete(ctl, "reg-key", "/api/reg-keys", argv[2]);
	if (strcmp(argv[1], "create"))
		return bad_usage("reg-key");
	body = json_object();
	optind = 0;
	while ((opt = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'v': json_object_set_new(body, "vpc_id", json_string(optarg)); break;
		case 's': json_object_set_new(body, "single_use", json_true()); break;
		case 'e': json_object_set_new(body, "expires_at", json_string(optarg)); break;
		case 'd': json_object_set_new(body, "description", json_string(optarg)); break;
		case 'r': json_object_set_new(body, "relay", json_true()); break;
		case 'm': {
			/* the service checks the range; here only that it is a number */
			char *end;
			long long n = strtoll(optarg, &end, 10);
			if (!*optarg || *end) {
				json_decref(body);
				return bad_usage("reg-key");
			}
			json_object_set_new(body, "max_devices", json_integer(n));
			break;
		}
		default:
			json_decref(body);
			return bad_usage("reg-key");
		}
	}
	if (optind != argc - 1 || !json_object_get(body, "vpc_id")) {
		json_decref(body);
		return bad_usage("reg-key");
	}
	rc = service_request(ctl, "POST", "/api/reg-keys", body, &out);
	json_decref(body);
	if (rc < 0)
		return 1;
	output(ctl, out, regkey_cols, N(regkey_cols));
	if (!ctl->json)
		printf("\nsecret (shown only now): %s\n", json_string_value(json_object_get(out, "secret")));
	json_decref(out);
	return 0;
}

/* device update ID [--relay|--no-relay] [--security-group SG]: the admin
 * grants or takes relaying, and moves the device to a security group (by id
 * or name; the service finds it in the device's VPC) */
static int device_update(struct ctl *ctl, int argc, char **argv)
{
	char path[256];
	json_t *body, *out;
	int rc;

	if (argc < 4)
		return bad_usage("device");
	body = json_object();
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--relay") || !strcmp(argv[i], "--no-relay")) {
			json_object_set_new(body, "relay", json_boolean(!strcmp(argv[i], "--relay")));
		} else if (!strcmp(argv[i], "--security-group") && i + 1 < argc) {
			json_object_set_new(body, "security_group_id", json_string(argv[++i]));
		} else {
			json_decref(body);
			return bad_usage("device");
		}
	}
	snprintf(path, sizeof(path), "/api/devices/%s", argv[2]);
	rc = service_request(ctl, "PATCH", path, body, &out);
	json_decref(body);
	if (rc < 0)
		return 1;
	output(ctl, out, device_cols, N(device_cols));
	json_decref(out);
	return 0;
}

static int cmd_device(struct ctl *ctl, int argc, char **argv)
{
	char path[256];
	json_t *out;

	if (argc == 2 && !strcmp(argv[1], "list"))
		return list(ctl, "/api/devices", device_cols, N(device_cols));
	if (argc == 4 && !strcmp(argv[1], "list") && !strcmp(argv[2], "--vpc")) {
		snprintf(path, sizeof(path), "/api/vpcs/%s/devices", argv[3]);
		if (service_request(ctl, "GET", path, NULL, &out) < 0)
			return 1;
		output(ctl, ctl->json ? out : json_object_get(out, "devices"), device_cols, N(device_cols));
		json_decref(out);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "delete"))
		return delete(ctl, "device", "/api/devices", argv[2]);
	if (argc >= 2 && !strcmp(argv[1], "update"))
		return device_update(ctl, argc, argv);
	return bad_usage("device");
}

const struct command admin_commands[] = {
	{ "vpc", "  vpc create NAME [--cidr CIDR]      a VPC (default CIDR 100.64.0.0/10)\n"
		 "  vpc list\n"
		 "  vpc delete ID                       (refused while it has devices)\n", cmd_vpc },
	{ "reg-key", "  reg-key create --vpc ID [--single-use] [--expires-at RFC3339] [--description TEXT]\n"
		     "                 [--relay] [--max-devices N]\n"
		     "                                      prints the key's secret, once; --relay: the\n"
		     "                                      devices it registers are relays; it registers\n"
		     "                                      at most N devices (default 1000)\n"
		     "  reg-key list\n"
		     "  reg-key delete ID\n", cmd_regkey },
	{ "device", "  device list [--vpc ID]\n"
		    "  device update ID [--relay|--no-relay] [--security-group SG]\n"
		    "                                      grants or takes relaying; moves the device\n"
		    "                                      to the security group SG (id or name)\n"
		    "  device delete ID\n", cmd_device },
	{ "security-group", secgroup_usage, secgroup_run },
};
const size_t admin_ncommands = N(admin_commands);
