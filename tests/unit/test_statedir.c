/* The state directory: key creation and mode, round trip, broken files. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/meshd/statedir.h"

static char dir[64];

static void mkdir_tmp(void)
{
	strcpy(dir, "/tmp/nmt-statedir-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	rmdir(dir);	/* state_load creates it */
}

static void rm_tmp(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);
}

static void put(const char *name, const char *text, mode_t mode)
{
	char path[128];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

TestSuite(statedir, .init = mkdir_tmp, .fini = rm_tmp);

Test(statedir, first_start_and_round_trip)
{
	struct state a, b;
	char why[256] = "", path[128];
	struct stat sb;
	uint8_t pub[32];

	cr_assert_eq(state_load(dir, &a, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(stat(dir, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/private.key", dir);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	crypto_scalarmult_base(pub, a.priv);
	cr_assert_eq(memcmp(pub, a.pub, 32), 0);
	cr_assert_eq(a.priv[0] & 7, 0);
	cr_assert_eq(a.listen_port, 0);
	cr_assert_not(a.has_tunnel_ip);

	a.listen_port = 51999;
	a.has_tunnel_ip = true;
	cr_assert_eq(addr_parse_ip("100.64.0.7", 0, &a.tunnel_ip), 0);
	a.has_vpc_cidr = true;
	cr_assert_eq(cidr_parse("100.64.0.0/10", false, &a.vpc_cidr), 0);
	strcpy(a.device_id, "dev-1");
	cr_assert_eq(state_save(dir, &a, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(state_load(dir, &b, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(memcmp(a.priv, b.priv, 32), 0, "the same identity after a restart");
	cr_assert_eq(b.listen_port, 51999);
	cr_assert(b.has_tunnel_ip);
	cr_assert(addr_ip_equal(&a.tunnel_ip, &b.tunnel_ip));
	cr_assert(b.has_vpc_cidr);
	cr_assert_eq(b.vpc_cidr.prefix, 10);
	cr_assert_str_eq(b.device_id, "dev-1");
	state_clear(&b);
	cr_assert_eq(b.priv[5], 0);
}

Test(statedir, refuses_bad_files)
{
	static const struct { const char *file, *text; mode_t mode; int err; const char *why; } cases[] = {
		{ "private.key", "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\n", 0644, -EPERM, "chmod 600" },
		{ "private.key", "not a key\n", 0600, -EINVAL, "not a base64" },
		{ "state.json", "{\"listen_port\": 70000}", 0600, -EINVAL, "listen_port" },
		{ "state.json", "{\"tunnel_ip\": \"x\"}", 0600, -EINVAL, "tunnel_ip" },
		{ "state.json", "{\"vpc_cidr\": \"100.64.0.1/10\"}", 0600, -EINVAL, "vpc_cidr" },
		{ "state.json", "{\"device_id\": 5}", 0600, -EINVAL, "device_id" },
		{ "state.json", "[1]", 0600, -EINVAL, "not a JSON object" },
		{ "state.json", "{\"listen_port\": ", 0600, -EINVAL, "state.json: line" },
	};
	struct state st;
	char why[256];

	cr_assert_eq(mkdir(dir, 0700), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		put("private.key", "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\n", 0600);
		put("state.json", "{}", 0600);
		put(cases[i].file, cases[i].text, cases[i].mode);
		why[0] = 0;
		cr_assert_eq(state_load(dir, &st, why, sizeof(why)), cases[i].err, "case %zu", i);
		cr_assert(strstr(why, cases[i].why), "case %zu: %s", i, why);
	}
}

/* issue 15 point 10: a secret file that group or others may read is refused,
 * with the fix named */
Test(statedir, secret_file)
{
	static const struct {
		const char *text;
		mode_t mode;
		int err;
		const char *got;	/* err 0: the secret read; else: in why */
	} cases[] = {
		{ "s3cret\n", 0600, 0, "s3cret" },
		{ "s3cret", 0400, 0, "s3cret" },
		{ "s3cret\r\nmore\n", 0600, 0, "s3cret" },
		{ "s3cret\n", 0644, -EPERM, "chmod 600" },
		{ "s3cret\n", 0640, -EPERM, "mode 640" },
		{ "s3cret\n", 0604, -EPERM, "readable by group or others" },
		{ "\n", 0600, -EINVAL, "empty" },
		{ "0123456789abcdef", 0600, -EMSGSIZE, "longer than" },
	};
	char path[128], out[16], why[256];

	cr_assert_eq(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/regkey", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unlink(path);
		put("regkey", cases[i].text, cases[i].mode);
		why[0] = 0;
		cr_assert_eq(state_read_secret(path, out, sizeof(out), why, sizeof(why)), cases[i].err, "case %zu: %s",
			     i, why);
		if (!cases[i].err)
			cr_expect_str_eq(out, cases[i].got, "case %zu", i);
		else
			cr_expect(strstr(why, cases[i].got) && !out[0], "case %zu: %s", i, why);
	}
	cr_expect(strstr(why, path), "the file is named");
	unlink(path);
	cr_expect_eq(state_read_secret(path, out, sizeof(out), why, sizeof(why)), -ENOENT);
}
