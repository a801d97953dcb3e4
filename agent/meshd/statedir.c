/* statedir: the private key and the saved state of meshd (see statedir.h). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "statedir.h"

#define KEY_B64LEN 45

void state_clear(struct state *st)
{
	sodium_memzero(st, sizeof(*st));
}

static int load_key(const char *path, struct state *st, char *why, size_t whylen)
{
	char b64[KEY_B64LEN + 8];
	struct stat sb;
	ssize_t n;
	size_t len;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		/* first start: a fresh key (X25519 clamping as WireGuard does) */
		randombytes_buf(st->priv, sizeof(st->priv));
		st->priv[0] &= 248;
		st->priv[31] = (st->priv[31] & 127) | 64;
		sodium_bin2base64(b64, sizeof(b64), st->priv, sizeof(st->priv),
				  sodium_base64_VARIANT_ORIGINAL);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = -errno;
			snprintf(why, whylen, "%s: cannot create: %s", path, strerror(errno));
			goto out;
		}
		len = strlen(b64);
		b64[len++] = '\n';
		if (write(fd, b64, len) != (ssize_t)len || fsync(fd) < 0) {
			rc = -EIO;
			snprintf(why, whylen, "%s: cannot write the new key", path);
			unlink(path);
		}
		goto out;
	}
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) < 0 || (sb.st_mode & 077)) {
		rc = -EPERM;
		snprintf(why, whylen, "%s: readable by group or others (mode %03o); run chmod 600 %s",
			 path, (unsigned)(sb.st_mode & 0777), path);
		goto out;
	}
	n = read(fd, b64, sizeof(b64) - 1);
	if (n < 0) {
		rc = -errno;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto out;
	}
	b64[n] = 0;
	len = strcspn(b64, "\r\n");
	b64[len] = 0;
	if (len != KEY_B64LEN - 1 ||
	    sodium_base642bin(st->priv, sizeof(st->priv), b64, len, NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || len != sizeof(st->priv)) {
		rc = -EINVAL;
		snprintf(why, whylen, "%s: not a base64 WireGuard private key", path);
	}
out:
	sodium_memzero(b64, sizeof(b64));
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		crypto_scalarmult_base(st->pub, st->priv);
	return rc;
}

static int load_json(const char *path, struct state *st, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *j, *v;
	int rc = -EINVAL;

	j = json_load_file(path, 0, &jerr);
	if (!j) {
		if (access(path, F_OK) < 0 && errno == ENOENT)
			return 0;
		snprintf(why, whylen, "%s: line %d: %s", path, jerr.line, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(j)) {
		snprintf(why, whylen, "%s: not a JSON object", path);
		goto out;
	}
	if ((v = json_object_get(j, "listen_port"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535) {
			snprintf(why, whylen, "%s: listen_port: not a port 1..65535", path);
			goto out;
		}
		st->listen_port = (uint16_t)json_integer_value(v);
	}
	if ((v = json_object_get(j, "tunnel_ip"))) {
		if (!json_is_string(v) || addr_parse_ip(json_string_value(v), 0, &st->tunnel_ip) < 0) {
			snprintf(why, whylen, "%s: tunnel_ip: not an IP address", path);
			goto out;
		}
		st->has_tunnel_ip = true;
	}
	if ((v = json_object_get(j, "vpc_cidr"))) {
		if (!json_is_string(v) || cidr_parse(json_string_value(v), false, &st->vpc_cidr) < 0) {
			snprintf(why, whylen, "%s: vpc_cidr: not a CIDR", path);
			goto out;
		}
		st->has_vpc_cidr = true;
	}
	if ((v = json_object_get(j, "device_id"))) {
		if (!json_is_string(v) || json_string_length(v) >= sizeof(st->device_id)) {
			snprintf(why, whylen, "%s: device_id: not a short string", path);
			goto out;
		}
		snprintf(st->device_id, sizeof(st->device_id), "%s", json_string_value(v));
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

int state_load(const char *dir, struct state *st, char *why, size_t whylen)
{
	char path[4096];
	int rc;

	memset(st, 0, sizeof(*st));
	/* parents as needed (/var/lib/meshd), the directory itself 0700 */
	snprintf(path, sizeof(path), "%s", dir);
	for (char *s = path + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			break;
		*s = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(why, whylen, "%s: cannot create: %s", dir, strerror(errno));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/private.key", dir);
	if ((rc = load_key(path, st, why, whylen)) < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/state.json", dir);
	if ((rc = load_json(path, st, why, whylen)) < 0)
		state_clear(st);
	return rc;
}

int state_save(const char *dir, const struct state *st, char *why, size_t whylen)
{
	char path[4096], tmp[4096 + 8], buf[CIDR_STRLEN];
	json_t *j = json_object();
	int fd = -1, rc = 0;
	char *text = NULL;
	size_t len;

	if (!j)
		return -ENOMEM;
	if (st->listen_port)
		json_object_set_new(j, "listen_port", json_integer(st->listen_port));
	if (st->has_tunnel_ip)
		json_object_set_new(j, "tunnel_ip", json_string(addr_format_ip(&st->tunnel_ip, buf, sizeof(buf))));
	if (st->has_vpc_cidr)
		json_object_set_new(j, "vpc_cidr", json_string(cidr_format(&st->vpc_cidr, buf, sizeof(buf))));
	if (st->device_id[0])
		json_object_set_new(j, "device_id", json_string(st->device_id));
	text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(j);
	if (!text)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/state.json", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	len = strlen(text);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) < 0 || rename(tmp, path) < 0) {
		rc = -errno ? -errno : -EIO;
		snprintf(why, whylen, "%s: cannot write: %s", path, strerror(errno));
		unlink(tmp);
	}
	if (fd >= 0)
		close(fd);
	free(text);
	return rc;
}

int state_read_secret(const char *path, char *out, size_t cap, char *why, size_t whylen)
{
	struct stat sb;
	size_t len;
	ssize_t n;
	int fd, rc = 0;

	out[0] = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = -errno;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		rc = -EINVAL;
		snprintf(why, whylen, "%s: not a regular file", path);
		goto out;
	}
	if (sb.st_mode & 077) {
		rc = -EPERM;
		snprintf(why, whylen, "%s: readable by group or others (mode %03o); run chmod 600 %s", path,
			 (unsigned)(sb.st_mode & 0777), path);
		goto out;
	}
	if ((n = read(fd, out, cap - 1)) < 0) {
		rc = -errno;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto out;
	}
	out[n] = 0;
	len = strcspn(out, "\r\n");
	out[len] = 0;
	if (!out[0]) {
		rc = -EINVAL;
		snprintf(why, whylen, "%s: empty", path);
	} else if (len == (size_t)n && len == cap - 1) {
		rc = -EMSGSIZE;	/* no line end in sight: maybe cut */
		snprintf(why, whylen, "%s: a first line longer than %zu bytes", path, cap - 2);
	}
out:
	if (rc < 0)
		sodium_memzero(out, cap);
	close(fd);
	return rc;
}
