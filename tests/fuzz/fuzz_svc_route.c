/* libFuzzer target: meshsvc's way in for a request line, "METHOD TARGET"
 * (no space: a GET of the whole input); a byte 0x01 stands for a lowercase
 * UUID, which random bytes would hardly spell. The path goes through
 * api_route_of, unescaped first as libmicrohttpd hands it over
 * (MHD_http_unescape); the method through api_method_of; both through
 * api_endpoint_find; the query string, split and unescaped as libmicrohttpd
 * does ('&', the first '=', '+' as space, %XX), through api_query_arg_check
 * and the long poll's validate_since and validate_wait. Beyond not crashing:
 * a path routes to a route exactly when it spells that route's pattern with
 * a lowercase UUID for {id} (checked against every pattern), and the {id}
 * kept is that UUID; a method has its own name; an endpoint found is of that
 * route and method, and the Allow list names exactly the methods the route
 * has; only since and wait pass the query check, and the first other key is
 * the one named; an accepted since or wait is the decimal number written,
 * within its bounds, and a refusal names its parameter. */
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/wire.h"
#include "service/api_internal.h"
#include "service/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* does path spell pattern, with a lowercase UUID where it says {id}? */
static bool spells(const char *pattern, const char *path)
{
	const char *hole = strstr(pattern, "{id}");
	char id[UUID_STRLEN];
	size_t head;

	if (!hole)
		return !strcmp(pattern, path);
	head = (size_t)(hole - pattern);
	if (strncmp(pattern, path, head) || strlen(path + head) < UUID_STRLEN - 1)
		return false;
	memcpy(id, path + head, UUID_STRLEN - 1);
	id[UUID_STRLEN - 1] = 0;
	return validate_uuid(id) && !strcmp(hole + 4, path + head + UUID_STRLEN - 1);
}

static void check_route(const char *path)
{
	char id[UUID_STRLEN];
	enum route_id r = api_route_of(path, id);

	if (r < 0 || r >= R_COUNT)
		abort();
	for (int k = 0; k < R_UNKNOWN; k++)
		if (spells(api_route_names[k], path) != (r == (enum route_id)k))
			abort();
	if (r == R_UNKNOWN)
		return;
	if (strstr(api_route_names[r], "{id}")) {
		if (!validate_uuid(id) || !strstr(path, id))
			abort();
	} else if (id[0]) {
		abort();
	}
}

/* is name one of allow's ", "-separated tokens? */
static bool listed(const char *allow, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = allow; (p = strstr(p, name)); p += n)
		if ((p == allow || p[-1] == ' ') && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

static void check_method(const char *method, const char *path)
{
	enum method_id m = api_method_of(method);
	char id[UUID_STRLEN], allow[64];
	enum route_id r = api_route_of(path, id);
	const struct endpoint *ep;

	if (m < 0 || m >= M_COUNT)
		abort();
	for (int k = 0; k < M_OTHER; k++)
		if (!strcmp(method, api_method_names[k]) != (m == (enum method_id)k))
			abort();
	memset(allow, 'x', sizeof(allow));
	ep = api_endpoint_find(r, m, allow, sizeof(allow));
	if (!memchr(allow, 0, sizeof(allow)))
		abort();
	if (r == R_UNKNOWN ? ep || allow[0] : !allow[0])
		abort();
	if (ep && (ep->route != r || ep->method != m))
		abort();
	for (int k = 0; k < M_OTHER; k++) {
		const struct endpoint *e = api_endpoint_find(r, (enum method_id)k, NULL, 0);
		if (!!e != listed(allow, api_method_names[k]))
			abort();
	}
}

static void check_long_poll(const char *key, const char *value)
{
	struct verr err;
	int64_t since = -1;
	int wait = -1;
	bool digits = *value && strspn(value, "0123456789") == strlen(value) && strlen(value) <= 18;

	memset(&err, 0, sizeof(err));
	if (!strcmp(key, "since")) {
		if (validate_since(value, &since, &err) == 0) {
			if (!digits || since < 0 || since > INT64_MAX / 16 || since != strtoll(value, NULL, 10))
				abort();
		} else if (strcmp(err.field, "since") || (digits && strtoll(value, NULL, 10) <= INT64_MAX / 16)) {
			abort();
		}
	} else {
		if (validate_wait(value, &wait, &err) == 0) {
			if (!digits || wait < 0 || wait > WIRE_WAIT_MAX_S || wait != strtoll(value, NULL, 10))
				abort();
		} else if (strcmp(err.field, "wait") || (digits && strtoll(value, NULL, 10) <= WIRE_WAIT_MAX_S)) {
			abort();
		}
	}
}

/* splits and unescapes the query in place, as libmicrohttpd does */
static void check_query(char *q)
{
	const char *first_bad = NULL, *bad = NULL;
	bool stopped = false;

	while (q) {
		char *next = strchr(q, '&'), *value;

		if (next)
			*next++ = 0;
		if ((value = strchr(q, '=')))
			*value++ = 0;
		for (char *p = q; *p; p++)
			if (*p == '+')
				*p = ' ';
		MHD_http_unescape(q);
		if (value) {
			for (char *p = value; *p; p++)
				if (*p == '+')
					*p = ' ';
			MHD_http_unescape(value);
		}
		if (!stopped) {
			bool known = !strcmp(q, "since") || !strcmp(q, "wait");
			enum MHD_Result rc = api_query_arg_check(&bad, MHD_GET_ARGUMENT_KIND, q, value);
			if ((rc == MHD_YES) != known || (known ? bad != first_bad : bad != q))
				abort();
			if (!known) {
				first_bad = q;
				stopped = true;	/* the walk ends there */
			}
		}
		if (value && (!strcmp(q, "since") || !strcmp(q, "wait")))
			check_long_poll(q, value);
		q = next;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char uuid[] = "0123abcd-4567-89ef-0123-456789abcdef";
	char *line = malloc(size * (UUID_STRLEN - 1) + 1), *method = "GET", *target, *query, *sp;
	size_t n = 0;

	if (!line)
		return 0;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == 0x01) {
			memcpy(line + n, uuid, UUID_STRLEN - 1);
			n += UUID_STRLEN - 1;
		} else {
			line[n++] = (char)data[i];
		}
	}
	line[n] = 0;
	target = line;
	if ((sp = strchr(line, ' '))) {
		*sp = 0;
		method = line;
		target = sp + 1;
	}
	if ((query = strchr(target, '?')))
		*query++ = 0;
	MHD_http_unescape(target);
	check_route(target);
	check_method(method, target);
	if (query)
		check_query(query);
	free(line);
	return 0;
}
