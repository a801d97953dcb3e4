#include "scenario.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nat-models/natmodel.h"
#include "portmapd.h"

/* The parser walks the document with a JSON path kept beside it, so the
 * first error found is reported as "FILE: PATH: reason" and parsing stops. */
struct pctx {
	const char *file;
	char path[256];
	size_t plen;
	char *err;
	size_t errlen;
	struct sim_scenario *s;
};

static size_t path_push(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(struct pctx *c, const char *fmt, ...)
{
	size_t old = c->plen;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(c->path + c->plen, sizeof(c->path) - c->plen, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->plen += (size_t)n < sizeof(c->path) - c->plen ? (size_t)n : sizeof(c->path) - c->plen - 1;
	return old;
}

static void path_pop(struct pctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

static int fail(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct pctx *c, const char *fmt, ...)
{
	char why[SIM_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	const char *p = c->path[0] == '.' ? c->path + 1 : c->path;
	snprintf(c->err, c->errlen, "%s: %s: %s", c->file, p[0] ? p : "(top level)", why);
	return -EINVAL;
}

static const char *s_node(const struct pctx *c, size_t i)
{
	return c->s->nodes[i].name;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

/* every key of obj must be in allowed (NULL-terminated) */
static int check_keys(struct pctx *c, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			ok = ok || !strcmp(key, allowed[i]);
		if (!ok) {
			size_t old = path_push(c, ".%s", key);
			int rc = fail(c, "unknown key");
			path_pop(c, old);
			return rc;
		}
	}
	return 0;
}

static int need_object(struct pctx *c, json_t *v)
{
	return json_is_object(v) ? 0 : fail(c, "must be an object, not %s", type_name(v));
}

/* optional string member; *out stays as it is when absent */
static int get_str(struct pctx *c, json_t *obj, const char *key, bool required, const char **out)
{
	json_t *v = json_object_get(obj, key);
	size_t old;
	int rc = 0;
	if (!v) {
		if (!required)
			return 0;
		old = path_push(c, ".%s", key);
		rc = fail(c, "missing (required)");
		path_pop(c, old);
		return rc;
	}
	old = path_push(c, ".%s", key);
	if (!json_is_string(v))
		rc = fail(c, "must be a string, not %s", type_name(v));
	else
		*out = json_string_value(v);
	path_pop(c, old);
	return rc;
}

static int get_int(struct pctx *c, json_t *obj, const char *key, long lo, long hi, int *out)
{
	json_t *v = json_object_get(obj, key);
	size_t old;
	int rc = 0;
	if (!v)
		return 0;
	old = path_push(c, ".%s", key);
	if (!json_is_integer(v))
		rc = fail(c, "must be an integer, not %s", type_name(v));
	else if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		rc = fail(c, "%lld is out of range %ld..%ld", (long long)json_integer_value(v), lo, hi);
	else
		*out = (int)json_integer_value(v);
	path_pop(c, old);
	return rc;
}

static int get_bool(struct pctx *c, json_t *obj, const char *key, bool *out)
{
	json_t *v = json_object_get(obj, key);
	size_t old;
	int rc = 0;
	if (!v)
		return 0;
	old = path_push(c, ".%s", key);
	if (!json_is_boolean(v))
		rc = fail(c, "must be true or false, not %s", type_name(v));
	else
		*out = json_is_true(v);
	path_pop(c, old);
	return rc;
}

/* optional array member; *out is NULL when absent */
static int get_array(struct pctx *c, json_t *obj, const char *key, json_t **out)
{
	json_t *v = json_object_get(obj, key);
	size_t old;
	int rc = 0;
	*out = NULL;
	if (!v)
		return 0;
	old = path_push(c, ".%s", key);
	if (!json_is_array(v))
		rc = fail(c, "must be an array, not %s", type_name(v));
	else
		*out = v;
	path_pop(c, old);
	return rc;
}

static int check_name(struct pctx *c, const char *name, size_t max, const char *extra)
{
	size_t n = strlen(name);
	if (n == 0)
		return fail(c, "must not be empty");
	if (n > max)
		return fail(c, "\"%s\" is longer than %zu characters", name, max);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!isalnum(ch) && ch != '-' && ch != '_' && !(extra && strchr(extra, ch)))
			return fail(c, "\"%s\": only letters, digits, '-' and '_'%s are allowed",
				    name, extra ? " and '.'" : "");
	}
	return 0;
}

/* --- variables in strings ------------------------------------------------ */

static bool is_tls_var(const char *name, size_t n)
{
	return (n == 2 && !memcmp(name, "ca", 2)) || (n == 8 && !memcmp(name, "tls_cert", 8)) ||
	       (n == 7 && !memcmp(name, "tls_key", 7));
}

/* what a NODE[/IFNAME] reference lacks, for errors; var names the ${ip:...}
 * it stands in, or is NULL */
static int ref_fail(struct pctx *c, int rc, const char *ref, size_t n, bool var)
{
	const char *slash = memchr(ref, '/', n);
	int nl = slash ? (int)(slash - ref) : (int)n;
	char pre[96] = "";
	if (var)
		snprintf(pre, sizeof(pre), "${ip:%.*s}: ", (int)n, ref);
	if (rc == -ENOENT)
		return fail(c, "%sunknown node \"%.*s\"", pre, nl, ref);
	return fail(c, "%snode \"%.*s\" has no %s%.*s", pre, nl, ref, slash ? "interface " : "links",
		    slash ? (int)n - nl - 1 : 0, slash ? slash + 1 : "");
}

/* every ${...} in str must name a variable meshsim knows */
static int check_vars(struct pctx *c, const char *str, bool node_ctx)
{
	static const char *const plain[] = { "run", "build", "lab", NULL };
	static const char *const per_node[] = { "node", "ns", "ip", NULL };
	for (const char *p = strstr(str, "${"); p; p = strstr(p, "${")) {
		const char *name = p + 2, *end = strchr(name, '}');
		if (!end)
			return fail(c, "\"%s\": unterminated ${", str);
		size_t n = (size_t)(end - name);
		bool ok = false;
		for (size_t i = 0; plain[i]; i++)
			ok = ok || (strlen(plain[i]) == n && !memcmp(name, plain[i], n));
		for (size_t i = 0; node_ctx && per_node[i]; i++)
			ok = ok || (strlen(per_node[i]) == n && !memcmp(name, per_node[i], n));
		if (is_tls_var(name, n)) {
			if (!node_ctx && n != 2)
				return fail(c, "${%.*s} is only known inside a node", (int)n, name);
			c->s->uses_tls = true;
			ok = true;
		}
		if (n > 3 && !memcmp(name, "ip:", 3)) {
			const struct sim_link *k;
			int rc = sim_scenario_ref(c->s, name + 3, n - 3, &k);
			if (rc)
				return ref_fail(c, rc, name + 3, n - 3, true);
			ok = true;
		}
		if (!ok)
			return fail(c, "unknown variable ${%.*s}%s", (int)n, name,
				    !node_ctx && n <= 4 ? " (only ${run}, ${build}, ${lab}, ${ca}, ${ip:NODE} here)" : "");
		p = end + 1;
	}
	return 0;
}

/* a command: "sh text" becomes sh -c text; an array is argv as is */
static int parse_argv(struct pctx *c, json_t *v, bool shell_ok, bool node_ctx, struct sim_argv *out)
{
	if (json_is_string(v) && shell_ok) {
		if (!json_string_length(v))
			return fail(c, "must not be empty");
		out->v = calloc(4, sizeof(char *));
		if (!out->v)
			return -ENOMEM;
		out->n = 3;
		out->v[0] = strdup("/bin/sh");
		out->v[1] = strdup("-c");
		out->v[2] = strdup(json_string_value(v));
		if (!out->v[0] || !out->v[1] || !out->v[2])
			return -ENOMEM;
		return check_vars(c, out->v[2], node_ctx);
	}
	if (!json_is_array(v))
		return fail(c, "must be %s, not %s", shell_ok ? "a string or an array of strings" : "an array of strings",
			    type_name(v));
	if (json_array_size(v) == 0)
		return fail(c, "must not be empty");
	out->v = calloc(json_array_size(v) + 1, sizeof(char *));
	if (!out->v)
		return -ENOMEM;
	size_t i;
	json_t *a;
	json_array_foreach(v, i, a) {
		size_t old = path_push(c, "[%zu]", i);
		int rc = json_is_string(a) ? 0 : fail(c, "must be a string, not %s", type_name(a));
		if (!rc && !(out->v[i] = strdup(json_string_value(a))))
			rc = -ENOMEM;
		if (!rc)
			out->n = i + 1;
		if (!rc)
			rc = check_vars(c, out->v[i], node_ctx);
		path_pop(c, old);
		if (rc)
			return rc;
	}
	if (!out->v[0][0])
		return fail(c, "[0]: must not be empty");
	return 0;
}

static void argv_free(struct sim_argv *a)
{
	for (size_t i = 0; a->v && i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

/* --- lookups -------------------------------------------------------------- */

int sim_scenario_node(const struct sim_scenario *s, const char *name)
{
	for (size_t i = 0; i < s->nnodes; i++)
		if (!strcmp(s->nodes[i].name, name))
			return (int)i;
	return -ENOENT;
}

static int find_net(const struct sim_scenario *s, const char *name)
{
	for (size_t i = 0; i < s->nnets; i++)
		if (!strcmp(s->nets[i].name, name))
			return (int)i;
	return -ENOENT;
}

const struct sim_link *sim_scenario_link(const struct sim_scenario *s, size_t node, const char *ifname)
{
	for (size_t i = 0; i < s->nlinks; i++)
		if (s->links[i].node == node && (!ifname || !strcmp(s->links[i].ifname, ifname)))
			return &s->links[i];
	return NULL;
}

/* "NODE/PROC", or "PROC" when only one node runs a process of that name */
static int find_proc(struct pctx *c, const char *ref, size_t *out)
{
	const struct sim_scenario *s = c->s;
	const char *slash = strchr(ref, '/');
	size_t hits = 0;
	for (size_t i = 0; i < s->nprocs; i++) {
		const struct sim_proc *p = &s->procs[i];
		const char *node = s->nodes[p->node].name;
		bool match = slash ? (strlen(node) == (size_t)(slash - ref) && !strncmp(node, ref, (size_t)(slash - ref)) &&
				      !strcmp(p->name, slash + 1))
				   : !strcmp(p->name, ref);
		if (match) {
			*out = i;
			hits++;
		}
	}
	if (hits == 0)
		return fail(c, "unknown process \"%s\" (write NODE/NAME)", ref);
	if (hits > 1)
		return fail(c, "\"%s\" names processes on several nodes; write NODE/NAME", ref);
	return 0;
}

/* --- sections ------------------------------------------------------------- */

static int parse_networks(struct pctx *c, json_t *arr)
{
	static const char *const keys[] = { "name", "cidr", NULL };
	struct sim_scenario *s = c->s;
	size_t i;
	json_t *v;
	s->nets = calloc(json_array_size(arr) + 1, sizeof(*s->nets));
	if (!s->nets)
		return -ENOMEM;
	json_array_foreach(arr, i, v) {
		size_t old = path_push(c, ".networks[%zu]", i);
		struct sim_network *n = &s->nets[i];
		const char *name = NULL, *cidr = NULL;
		int rc = need_object(c, v);
		if (!rc)
			rc = check_keys(c, v, keys);
		if (!rc)
			rc = get_str(c, v, "name", true, &name);
		if (!rc) {
			size_t o2 = path_push(c, ".name");
			rc = check_name(c, name, SIM_NAME_MAX, NULL);
			if (!rc && find_net(s, name) >= 0)
				rc = fail(c, "network \"%s\" is defined twice", name);
			path_pop(c, o2);
		}
		if (!rc)
			rc = get_str(c, v, "cidr", false, &cidr);
		if (!rc && cidr) {
			size_t o2 = path_push(c, ".cidr");
			if (cidr_parse(cidr, false, &n->cidr) < 0)
				rc = fail(c, "\"%s\" is not a network prefix (like 10.0.1.0/24, host bits zero)", cidr);
			path_pop(c, o2);
			n->has_cidr = true;
		}
		if (!rc) {
			snprintf(n->name, sizeof(n->name), "%s", name);
			s->nnets = i + 1;
		}
		path_pop(c, old);
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_kind(struct pctx *c, json_t *v, struct sim_node *n)
{
	const char *kind = "host";
	int rc = get_str(c, v, "kind", false, &kind);
	if (rc)
		return rc;
	size_t old = path_push(c, ".kind");
	if (!strcmp(kind, "host"))
		n->kind = SIM_NODE_HOST;
	else if (!strcmp(kind, "router"))
		n->kind = SIM_NODE_ROUTER;
	else if (!strcmp(kind, "nat"))
		n->kind = SIM_NODE_NAT;
	else
		rc = fail(c, "\"%s\" is not one of host, router, nat", kind);
	path_pop(c, old);
	return rc;
}

int sim_scenario_ref(const struct sim_scenario *s, const char *ref, size_t len, const struct sim_link **out)
{
	const char *slash = memchr(ref, '/', len);
	size_t nl = slash ? (size_t)(slash - ref) : len;
	char node[SIM_NAME_MAX + 1], ifname[IFNAMSIZ];
	int n = -ENOENT;

	*out = NULL;
	if (nl < sizeof(node)) {
		memcpy(node, ref, nl);
		node[nl] = '\0';
		n = sim_scenario_node(s, node);
	}
	if (n < 0)
		return -ENOENT;
	if (slash && len - nl - 1 >= sizeof(ifname))
		return -ENODEV;
	if (slash) {
		memcpy(ifname, slash + 1, len - nl - 1);
		ifname[len - nl - 1] = '\0';
	}
	*out = sim_scenario_link(s, (size_t)n, slash ? ifname : NULL);
	return *out ? 0 : -ENODEV;
}

void sim_link_ip(const struct sim_link *k, union sockaddr_any *out)
{
	memset(out, 0, sizeof(*out));
	out->sa.sa_family = (sa_family_t)k->addr.family;
	if (k->addr.family == AF_INET)
		memcpy(&out->in.sin_addr, k->addr.addr, 4);
	else
		memcpy(&out->in6.sin6_addr, k->addr.addr, 16);
}

static bool addr_taken(const struct sim_scenario *s, size_t net, const uint8_t *a, int family, size_t *who)
{
	for (size_t j = 0; j < s->nlinks; j++)
		if (s->links[j].network == net && s->links[j].addr.family == family &&
		    !memcmp(s->links[j].addr.addr, a, family == AF_INET ? 4 : 16)) {
			*who = j;
			return true;
		}
	return false;
}

/* "10.0.1.2" (the network's prefix) or "10.0.1.2/24": inside the network,
 * neither its network nor its broadcast address, and not taken */
static int parse_address(struct pctx *c, struct sim_link *k, const char *addr)
{
	const struct sim_scenario *s = c->s;
	const struct sim_network *n = &s->nets[k->network];
	union sockaddr_any a;
	uint64_t idx;
	size_t who;

	const char *slash = strchr(addr, '/');
	if (slash) {
		char host[INET6_ADDRSTRLEN + 1];
		size_t hl = (size_t)(slash - addr), len;
		if (hl < sizeof(host)) {
			memcpy(host, addr, hl);
			host[hl] = '\0';
		}
		if (hl >= sizeof(host) || addr_parse_ip(host, 0, &a) < 0 || cidr_parse(addr, true, &k->addr) < 0)
			return fail(c, "\"%s\" is not an address with a prefix (like 10.0.1.2/24)", addr);
		/* cidr_parse keeps the network part only; the host is the text's */
		const uint8_t *b = addr_ip_bytes(&a, &len);
		memcpy(k->addr.addr, b, len);
	} else if (addr_parse_ip(addr, 0, &a) < 0) {
		return fail(c, "\"%s\" is not an IP address", addr);
	} else if (!n->has_cidr) {
		return fail(c, "\"%s\" has no /prefix and network \"%s\" has no cidr", addr, n->name);
	} else {
		size_t len;
		const uint8_t *b = addr_ip_bytes(&a, &len);
		k->addr.family = a.sa.sa_family;
		memcpy(k->addr.addr, b, len);
		k->addr.prefix = n->cidr.prefix;
	}
	sim_link_ip(k, &a);
	if (n->has_cidr && (!cidr_contains(&n->cidr, &a) || k->addr.prefix != n->cidr.prefix))
		return fail(c, "%s is not inside network \"%s\" (%s)", addr, n->name,
			    cidr_format(&n->cidr, (char[CIDR_STRLEN]){ 0 }, CIDR_STRLEN));
	if (n->has_cidr && cidr_index(&n->cidr, &a, &idx) == 0 &&
	    (idx == 0 || (k->addr.family == AF_INET && idx == cidr_size(&n->cidr) - 1 && n->cidr.prefix < 31)))
		return fail(c, "%s is the network or broadcast address of \"%s\"", addr, n->name);
	if (addr_taken(s, k->network, k->addr.addr, k->addr.family, &who))
		return fail(c, "%s is already the address of %s/%s", addr, s->nodes[s->links[who].node].name,
			    s->links[who].ifname);
	return 0;
}

/* first pass over nodes: names, kinds, and all their links (so that later
 * references to any node's addresses resolve) */
/* an impair_update() refusal as "FILE: PATH: reason" (its path is absolute) */
static int impair_fail(struct pctx *c, const struct impair_err *err)
{
	const char *p = err->path[0] == '.' ? err->path + 1 : err->path;
	snprintf(c->err, c->errlen, "%s: %s: %s", c->file, p, err->reason);
	return -EINVAL;
}

/* a link's "egress" and "ingress" */
static int parse_link_impair(struct pctx *c, json_t *l, struct sim_link *k)
{
	json_t *eg = json_object_get(l, "egress"), *in = json_object_get(l, "ingress");
	struct impair_err err = { "", "" };
	if (!eg && !in)
		return 0;
	if (json_object_get(l, "loss_percent")) {
		size_t old = path_push(c, ".loss_percent");
		int rc = fail(c, "not with egress/ingress: give their loss_percent instead");
		path_pop(c, old);
		return rc;
	}
	json_t *both = json_object();
	if (!both)
		return -ENOMEM;
	if (eg)
		json_object_set(both, "egress", eg);
	if (in)
		json_object_set(both, "ingress", in);
	int rc = impair_update(both, c->path, NULL, k->impair, &err);
	json_decref(both);
	if (rc)
		return impair_fail(c, &err);
	k->impaired = true;
	return 0;
}

static int parse_node_links(struct pctx *c, size_t ni, json_t *v)
{
	struct sim_scenario *s = c->s;
	json_t *arr, *l;
	size_t i;
	int rc = get_array(c, v, "links", &arr);
	if (rc || !arr)
		return rc;
	json_array_foreach(arr, i, l) {
		static const char *const keys[] = { "network", "ifname", "address", "loss_percent", "egress",
						    "ingress", NULL };
		size_t old = path_push(c, ".links[%zu]", i);
		struct sim_link *k = &s->links[s->nlinks];
		const char *net = NULL, *ifname = NULL, *addr = NULL;
		rc = need_object(c, l);
		if (!rc)
			rc = check_keys(c, l, keys);
		if (!rc)
			rc = get_str(c, l, "network", true, &net);
		if (!rc) {
			size_t o2 = path_push(c, ".network");
			int ix = find_net(s, net);
			if (ix < 0)
				rc = fail(c, "unknown network \"%s\"", net);
			for (size_t j = 0; !rc && j < s->nlinks; j++)
				if (s->links[j].node == ni && s->links[j].network == (size_t)ix)
					rc = fail(c, "node \"%s\" is already linked to \"%s\"", s->nodes[ni].name, net);
			k->network = (size_t)ix;
			path_pop(c, o2);
		}
		if (!rc)
			rc = get_str(c, l, "ifname", false, &ifname);
		if (!rc) {
			size_t o2 = path_push(c, ".ifname");
			char dflt[IFNAMSIZ];
			size_t nth = 0;
			for (size_t j = 0; j < s->nlinks; j++)
				nth += s->links[j].node == ni;
			snprintf(dflt, sizeof(dflt), "eth%zu", nth);
			rc = check_name(c, ifname ? ifname : dflt, IFNAMSIZ - 1, NULL);
			if (!rc && (!strcmp(ifname ? ifname : dflt, "lo")))
				rc = fail(c, "\"lo\" is the loopback interface");
			snprintf(k->ifname, sizeof(k->ifname), "%s", ifname ? ifname : dflt);
			for (size_t j = 0; !rc && j < s->nlinks; j++)
				if (s->links[j].node == ni && !strcmp(s->links[j].ifname, k->ifname))
					rc = fail(c, "interface \"%s\" is used twice on node \"%s\"", k->ifname,
						  s->nodes[ni].name);
			path_pop(c, o2);
		}
		if (!rc)
			rc = get_str(c, l, "address", false, &addr);
		if (!rc && addr) {
			size_t o2 = path_push(c, ".address");
			rc = parse_address(c, k, addr);
			path_pop(c, o2);
		} else if (!rc && !s->nets[k->network].has_cidr) {
			rc = fail(c, "needs an \"address\": network \"%s\" has no cidr to pick one from",
				  s->nets[k->network].name);
		}
		if (!rc)
			rc = get_int(c, l, "loss_percent", 0, 100, &k->loss_percent);
		if (!rc)
			rc = parse_link_impair(c, l, k);
		if (!rc) {
			k->node = ni;
			if (!addr)
				k->addr.family = 0;	/* assigned later */
			s->nlinks++;
		}
		path_pop(c, old);
		if (rc)
			return rc;
	}
	return 0;
}

/* links without an address get the lowest free host of their network */
static int assign_addresses(struct pctx *c)
{
	struct sim_scenario *s = c->s;
	for (size_t i = 0; i < s->nlinks; i++) {
		struct sim_link *k = &s->links[i];
		if (k->addr.family)
			continue;
		const struct sim_network *n = &s->nets[k->network];
		uint64_t size = cidr_size(&n->cidr);
		bool done = false;
		for (uint64_t h = 1; h + 1 < size && !done; h++) {
			union sockaddr_any a;
			size_t len;
			cidr_host(&n->cidr, h, &a);
			const uint8_t *b = addr_ip_bytes(&a, &len);
			size_t who;
			if (addr_taken(s, k->network, b, n->cidr.family, &who))
				continue;
			k->addr = n->cidr;
			memcpy(k->addr.addr, b, len);
			done = true;
		}
		if (!done)
			return fail(c, "network \"%s\" has no free address left for %s/%s", n->name,
				    s->nodes[k->node].name, k->ifname);
	}
	return 0;
}

static int parse_routes(struct pctx *c, size_t ni, json_t *v)
{
	struct sim_scenario *s = c->s;
	struct sim_node *n = &s->nodes[ni];
	json_t *arr, *r;
	size_t i;
	int rc = get_array(c, v, "routes", &arr);
	if (rc || !arr)
		return rc;
	n->routes = calloc(json_array_size(arr) + 1, sizeof(*n->routes));
	if (!n->routes)
		return -ENOMEM;
	json_array_foreach(arr, i, r) {
		static const char *const keys[] = { "dst", "via", NULL };
		size_t old = path_push(c, ".routes[%zu]", i);
		struct sim_route *rt = &n->routes[i];
		const char *dst = NULL, *via = NULL;
		rc = need_object(c, r);
		if (!rc)
			rc = check_keys(c, r, keys);
		if (!rc)
			rc = get_str(c, r, "dst", true, &dst);
		if (!rc)
			rc = get_str(c, r, "via", true, &via);
		/* "default" takes the family of via: 0.0.0.0/0 or ::/0 */
		bool dflt = !rc && !strcmp(dst, "default");
		if (!rc && !dflt) {
			size_t o2 = path_push(c, ".dst");
			if (cidr_parse(dst, false, &rt->dst) < 0)
				rc = fail(c, "\"%s\" is neither \"default\" nor a network prefix", dst);
			path_pop(c, o2);
		}
		if (!rc) {
			size_t o2 = path_push(c, ".via");
			int peer = sim_scenario_node(s, via);
			if (peer >= 0) {
				/* the peer's address on a network both are on, of dst's
				 * family when several are shared (one IPv4, one IPv6) */
				bool found = false;
				for (int pass = 0; pass < 2 && !found; pass++)
					for (size_t a = 0; a < s->nlinks && !found; a++)
						for (size_t b = 0; b < s->nlinks && !found; b++)
							if (s->links[a].node == ni && s->links[b].node == (size_t)peer &&
							    s->links[a].network == s->links[b].network &&
							    (pass || dflt || s->links[b].addr.family == rt->dst.family)) {
								sim_link_ip(&s->links[b], &rt->via);
								snprintf(rt->dev, sizeof(rt->dev), "%s", s->links[a].ifname);
								found = true;
							}
				if (!found)
					rc = fail(c, "node \"%s\" shares no network with \"%s\"", via, n->name);
			} else if (addr_parse_ip(via, 0, &rt->via) < 0) {
				rc = fail(c, "\"%s\" is neither a node nor an IP address", via);
			} else {
				bool onlink = false;
				for (size_t a = 0; a < s->nlinks; a++) {
					struct cidr net = s->links[a].addr;
					if (s->links[a].node == ni && cidr_contains(&net, &rt->via) && !onlink) {
						snprintf(rt->dev, sizeof(rt->dev), "%s", s->links[a].ifname);
						onlink = true;
					}
				}
				if (!onlink)
					rc = fail(c, "%s is not on any network of node \"%s\"", via, n->name);
			}
			if (!rc && dflt)
				cidr_parse(rt->via.sa.sa_family == AF_INET6 ? "::/0" : "0.0.0.0/0", false, &rt->dst);
			if (!rc && rt->via.sa.sa_family != rt->dst.family)
				rc = fail(c, "the gateway's address family differs from dst's");
			path_pop(c, o2);
		}
		if (!rc)
			n->nroutes = i + 1;
		path_pop(c, old);
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_nat(struct pctx *c, size_t ni, json_t *v)
{
	struct sim_scenario *s = c->s;
	struct sim_node *n = &s->nodes[ni];
	json_t *nat = json_object_get(v, "nat");
	const char *wan = NULL;
	size_t old;
	int rc = 0;
	if (n->kind != SIM_NODE_NAT) {
		if (nat) {
			old = path_push(c, ".%s", "nat");
			rc = fail(c, "only a node of kind \"nat\" has a NAT model");
			path_pop(c, old);
			return rc;
		}
		if (json_object_get(v, "wan")) {
			old = path_push(c, ".%s", "wan");
			rc = fail(c, "only a node of kind \"nat\" has a WAN interface");
			path_pop(c, old);
			return rc;
		}
		return 0;
	}
	if (!nat)
		return fail(c, "a node of kind \"nat\" needs \"nat\" (a preset name or a model object)");
	old = path_push(c, ".%s", "nat");
	struct natmodel model;
	struct natmodel_error nerr = { { 0 }, { 0 } };
	if (!json_is_string(nat) && !json_is_object(nat)) {
		rc = fail(c, "must be a preset name or a model object, not %s", type_name(nat));
	} else if (natmodel_from_json(nat, &model, &nerr) < 0) {
		size_t o2 = nerr.field[0] && json_is_object(nat) ? path_push(c, ".%s", nerr.field) : c->plen;
		rc = fail(c, "%s", nerr.reason[0] ? nerr.reason : "not a valid NAT model");
		path_pop(c, o2);
	}
	path_pop(c, old);
	if (rc)
		return rc;
	n->nat = json_incref(nat);
	rc = get_str(c, v, "wan", false, &wan);
	if (rc)
		return rc;
	const struct sim_link *k = sim_scenario_link(s, ni, wan);
	if (!k) {
		if (!wan)
			return fail(c, "a node of kind \"nat\" needs at least one link");
		old = path_push(c, ".%s", "wan");
		rc = fail(c, "node \"%s\" has no interface \"%s\"", n->name, wan);
		path_pop(c, old);
		return rc;
	}
	/* nat-models translates in the WAN address's family (NAT44 or NAT66),
	 * and a link here has one address: an inside link of the other family
	 * would be routed around the model, untranslated */
	for (size_t j = 0, nth = 0; j < s->nlinks; j++) {
		const struct sim_link *l = &s->links[j];
		if (l->node != ni)
			continue;
		if (l->addr.family != k->addr.family) {
			char a[CIDR_STRLEN], w[CIDR_STRLEN];
			old = path_push(c, ".links[%zu]", nth);
			rc = fail(c, "%s on network \"%s\" is %s, but the WAN %s (%s) is %s: a node of kind "
				  "\"nat\" translates one family (no NAT46/NAT64, no dual-stack gateway)",
				  cidr_format(&l->addr, a, sizeof(a)), s->nets[l->network].name,
				  l->addr.family == AF_INET6 ? "IPv6" : "IPv4", k->ifname,
				  cidr_format(&k->addr, w, sizeof(w)), k->addr.family == AF_INET6 ? "IPv6" : "IPv4");
			path_pop(c, old);
			return rc;
		}
		nth++;
	}
	snprintf(n->wan, sizeof(n->wan), "%s", k->ifname);
	if (!model.port_mapping)
		return 0;
	if (k->addr.family != AF_INET) {
		old = path_push(c, ".nat.port_mapping");
		rc = fail(c, "miniupnpd maps IPv4 (NAT44) only; the WAN %s is IPv6", k->ifname);
		path_pop(c, old);
		return rc;
	}
	return sim_portmapd_add_procs(v, n->name, n->wan, model.port_mapping);
}

static int parse_ready(struct pctx *c, json_t *v, struct sim_ready *r)
{
	static const char *const keys[] = { "udp", "tcp", "file", "command", NULL };
	json_t *x;
	int rc = need_object(c, v);
	if (!rc)
		rc = check_keys(c, v, keys);
	if (rc)
		return rc;
	if (json_object_size(v) != 1)
		return fail(c, "needs exactly one of udp, tcp, file, command");
	if ((x = json_object_get(v, "udp")) || (x = json_object_get(v, "tcp"))) {
		r->kind = json_object_get(v, "udp") ? SIM_READY_UDP : SIM_READY_TCP;
		return get_int(c, v, r->kind == SIM_READY_UDP ? "udp" : "tcp", 1, 65535, &r->port);
	}
	size_t old;
	if ((x = json_object_get(v, "file"))) {
		const char *path = NULL;
		r->kind = SIM_READY_FILE;
		rc = get_str(c, v, "file", true, &path);
		if (rc)
			return rc;
		old = path_push(c, ".%s", "file");
		rc = check_vars(c, path, true);
		path_pop(c, old);
		if (!rc && !(r->path = strdup(path)))
			rc = -ENOMEM;
		return rc;
	}
	r->kind = SIM_READY_COMMAND;
	old = path_push(c, ".%s", "command");
	rc = parse_argv(c, json_object_get(v, "command"), true, true, &r->argv);
	path_pop(c, old);
	return rc;
}

static int parse_procs(struct pctx *c, size_t ni, json_t *v)
{
	struct sim_scenario *s = c->s;
	json_t *arr, *p;
	size_t i;
	int rc = get_array(c, v, "processes", &arr);
	if (rc || !arr)
		return rc;
	json_array_foreach(arr, i, p) {
		static const char *const keys[] = { "name", "argv", "after", "oneshot", "ready", "ready_timeout_ms",
						    NULL };
		size_t old = path_push(c, ".processes[%zu]", i);
		struct sim_proc *pr = &s->procs[s->nprocs++];	/* counted now, so that a failure frees it */
		const char *name = NULL;
		json_t *argv;
		pr->node = ni;
		pr->ready.timeout_ms = 10000;
		rc = need_object(c, p);
		if (!rc)
			rc = check_keys(c, p, keys);
		if (!rc && !(argv = json_object_get(p, "argv")))
			rc = fail(c, "needs \"argv\" (an array of strings)");
		if (!rc) {
			size_t o2 = path_push(c, ".argv");
			rc = parse_argv(c, argv, false, true, &pr->argv);
			path_pop(c, o2);
		}
		if (!rc)
			rc = get_str(c, p, "name", false, &name);
		if (!rc) {
			const char *base = strrchr(pr->argv.v[0], '/');
			base = base ? base + 1 : pr->argv.v[0];
			size_t o2 = path_push(c, name ? ".name" : ".argv[0]");
			rc = check_name(c, name ? name : base, sizeof(pr->name) - 1, ".");
			snprintf(pr->name, sizeof(pr->name), "%s", name ? name : base);
			for (size_t j = 0; !rc && j + 1 < s->nprocs; j++)
				if (s->procs[j].node == ni && !strcmp(s->procs[j].name, pr->name))
					rc = fail(c, "node \"%s\" already runs a process named \"%s\"%s",
						  s->nodes[ni].name, pr->name, name ? "" : " (add a \"name\")");
			path_pop(c, o2);
		}
		if (!rc)
			rc = get_bool(c, p, "oneshot", &pr->oneshot);
		if (!rc && json_object_get(p, "ready")) {
			size_t o2 = path_push(c, ".ready");
			rc = parse_ready(c, json_object_get(p, "ready"), &pr->ready);
			if (!rc && pr->oneshot)
				rc = fail(c, "a oneshot process is ready when it exits 0; drop \"ready\"");
			path_pop(c, o2);
		}
		if (!rc)
			rc = get_int(c, p, "ready_timeout_ms", 1, 600000, &pr->ready.timeout_ms);
		path_pop(c, old);
		if (rc)
			return rc;
	}
	return 0;
}

/* "after" lists, resolved once every process is known, and no cycles */
static int parse_after(struct pctx *c, json_t *nodes)
{
	struct sim_scenario *s = c->s;
	size_t pi = 0, ni;
	json_t *nv;
	json_array_foreach(nodes, ni, nv) {
		json_t *arr = json_object_get(nv, "processes"), *p;
		size_t i;
		json_array_foreach(arr, i, p) {
			struct sim_proc *pr = &s->procs[pi++];
			json_t *after = json_object_get(p, "after"), *a;
			size_t j, old = path_push(c, ".nodes[%zu].processes[%zu].after", ni, i);
			int rc = 0;
			if (after && !json_is_array(after))
				rc = fail(c, "must be an array of process names, not %s", type_name(after));
			if (!rc && after && !(pr->after = calloc(json_array_size(after) + 1, sizeof(size_t))))
				rc = -ENOMEM;
			json_array_foreach(after, j, a) {
				if (rc)
					break;
				size_t o2 = path_push(c, "[%zu]", j);
				if (!json_is_string(a))
					rc = fail(c, "must be a string, not %s", type_name(a));
				else
					rc = find_proc(c, json_string_value(a), &pr->after[pr->nafter]);
				if (!rc && pr->after[pr->nafter] == pi - 1)
					rc = fail(c, "a process cannot wait for itself");
				if (!rc)
					pr->nafter++;
				path_pop(c, o2);
			}
			path_pop(c, old);
			if (rc)
				return rc;
		}
	}
	/* depth-first search for a cycle: 0 unseen, 1 on the stack, 2 done */
	unsigned char *mark = calloc(s->nprocs + 1, 1);
	size_t *stack = calloc(s->nprocs + 1, sizeof(size_t)), *next = calloc(s->nprocs + 1, sizeof(size_t));
	int rc = (!mark || !stack || !next) ? -ENOMEM : 0;
	for (size_t root = 0; !rc && root < s->nprocs; root++) {
		size_t sp = 0;
		if (mark[root])
			continue;
		stack[sp++] = root;
		mark[root] = 1;
		next[root] = 0;
		while (sp && !rc) {
			size_t top = stack[sp - 1];
			if (next[top] == s->procs[top].nafter) {
				mark[top] = 2;
				sp--;
				continue;
			}
			size_t d = s->procs[top].after[next[top]++];
			if (mark[d] == 1) {
				const struct sim_proc *a = &s->procs[top], *b = &s->procs[d];
				size_t nth = 0;
				for (size_t q = 0; q < top; q++)
					nth += s->procs[q].node == a->node;
				size_t o2 = path_push(c, ".nodes[%zu].processes[%zu].after", a->node, nth);
				rc = fail(c, "processes wait for each other in a cycle (%s/%s after %s/%s)",
					  s->nodes[a->node].name, a->name, s->nodes[b->node].name, b->name);
				path_pop(c, o2);
			} else if (!mark[d]) {
				mark[d] = 1;
				next[d] = 0;
				stack[sp++] = d;
			}
		}
	}
	free(mark);
	free(stack);
	free(next);
	return rc;
}

static int node_ref(struct pctx *c, json_t *v, size_t *out)
{
	if (!json_is_string(v))
		return fail(c, "must be a node name, not %s", type_name(v));
	int n = sim_scenario_node(c->s, json_string_value(v));
	if (n < 0)
		return fail(c, "unknown node \"%s\"", json_string_value(v));
	*out = (size_t)n;
	return 0;
}

/* a ping target: NODE, NODE/IFNAME or an IP */
static int check_target(struct pctx *c, const char *to)
{
	union sockaddr_any a;
	const struct sim_link *k;
	if (addr_parse_ip(to, 0, &a) == 0)
		return 0;
	int rc = sim_scenario_ref(c->s, to, strlen(to), &k);
	if (rc == -ENOENT)
		return fail(c, "\"%s\" is neither a node, NODE/IFNAME nor an IP address", to);
	return rc ? ref_fail(c, rc, to, strlen(to), false) : 0;
}

static int parse_ping(struct pctx *c, json_t *v, struct sim_expect *e)
{
	json_t *ping = json_object_get(v, "ping");
	const char *path = NULL;
	size_t old;
	int rc = get_str(c, v, "path", false, &path);
	if (rc)
		return rc;
	old = path_push(c, ".%s", "ping");
	if (!json_is_array(ping) || json_array_size(ping) != 2)
		rc = fail(c, "must be [FROM, TO]");
	for (size_t i = 0; !rc && i < 2; i++) {
		size_t o2 = path_push(c, "[%zu]", i);
		json_t *x = json_array_get(ping, i);
		if (i == 0 || path)
			rc = node_ref(c, x, i == 0 ? &e->from : &e->to_node);
		else if (!json_is_string(x))
			rc = fail(c, "must be a string, not %s", type_name(x));
		else
			rc = check_target(c, json_string_value(x));
		if (!rc && i == 1 && !(e->to = strdup(json_string_value(x))))
			rc = -ENOMEM;
		path_pop(c, o2);
	}
	if (!rc && path && e->from == e->to_node)
		rc = fail(c, "a node has no mesh path to itself");
	path_pop(c, old);
	if (rc)
		return rc;
	e->kind = path ? SIM_EXPECT_PATH : SIM_EXPECT_PING;
	e->count = 1;
	e->reachable = true;
	e->within_ms = 5000;
	if (path) {
		old = path_push(c, ".%s", "path");
		if (strcmp(path, "direct") && strcmp(path, "relayed"))
			rc = fail(c, "\"%s\" is not one of direct, relayed", path);
		snprintf(e->path, sizeof(e->path), "%s", path);
		path_pop(c, old);
		if (!rc && json_object_get(v, "reachable")) {
			old = path_push(c, ".%s", "reachable");
			rc = fail(c, "a mesh path expectation is always reachable");
			path_pop(c, old);
		}
	}
	if (!rc)
		rc = get_int(c, v, "count", 1, 1000, &e->count);
	if (!rc)
		rc = get_int(c, v, "within_ms", 1, 600000, &e->within_ms);
	if (!rc)
		rc = get_bool(c, v, "reachable", &e->reachable);
	if (!rc && path)
		snprintf(e->label, sizeof(e->label), "ping %s -> %s %s", s_node(c, e->from), e->to, path);
	else if (!rc)
		snprintf(e->label, sizeof(e->label), "ping %s -> %s%s", s_node(c, e->from), e->to,
			 e->reachable ? "" : " (unreachable)");
	return rc;
}

static int parse_command(struct pctx *c, json_t *v, struct sim_expect *e)
{
	const char *re = NULL;
	size_t old;
	int rc;
	e->kind = SIM_EXPECT_COMMAND;
	old = path_push(c, ".%s", "node");
	rc = json_object_get(v, "node") ? node_ref(c, json_object_get(v, "node"), &e->from)
					 : fail(c, "missing (required: the node the command runs in)");
	path_pop(c, old);
	if (rc)
		return rc;
	old = path_push(c, ".%s", "command");
	rc = parse_argv(c, json_object_get(v, "command"), true, true, &e->argv);
	path_pop(c, old);
	if (!rc)
		rc = get_int(c, v, "expect_exit", 0, 255, &e->expect_exit);
	if (!rc)
		rc = get_int(c, v, "within_ms", 0, 600000, &e->within_ms);
	if (!rc)
		rc = get_str(c, v, "expect_output", false, &re);
	if (!rc && re) {
		char why[128];
		old = path_push(c, ".%s", "expect_output");
		int r = regcomp(&e->regex, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
		if (r) {
			regerror(r, &e->regex, why, sizeof(why));
			rc = fail(c, "bad regular expression \"%s\": %s", re, why);
		} else {
			e->has_regex = true;
		}
		path_pop(c, old);
	}
	if (!rc) {
		const char *text = e->argv.n == 3 && !strcmp(e->argv.v[1], "-c") ? e->argv.v[2] : e->argv.v[0];
		snprintf(e->label, sizeof(e->label), "%s: %.60s%s", s_node(c, e->from), text,
			 strlen(text) > 60 ? "..." : "");
	}
	return rc;
}

static int parse_action(struct pctx *c, json_t *v, const char *key, struct sim_expect *e)
{
	const char *ref = NULL;
	size_t old;
	int rc = get_str(c, v, key, true, &ref);
	if (rc)
		return rc;
	old = path_push(c, ".%s", key);
	rc = find_proc(c, ref, &e->proc);
	path_pop(c, old);
	if (!rc && json_object_get(v, "if")) {
		old = path_push(c, ".%s", "node");
		rc = json_object_get(v, "node") ? node_ref(c, json_object_get(v, "node"), &e->from)
						 : fail(c, "missing (required with \"if\": the node the condition runs in)");
		path_pop(c, old);
		if (!rc) {
			old = path_push(c, ".%s", "if");
			rc = parse_argv(c, json_object_get(v, "if"), true, true, &e->argv);
			path_pop(c, old);
		}
		e->has_cond = !rc;
	} else if (!rc && json_object_get(v, "node")) {
		old = path_push(c, ".%s", "node");
		rc = fail(c, "goes with \"if\" (the node an action's condition runs in)");
		path_pop(c, old);
	}
	e->kind = !strcmp(key, "stop") ? SIM_EXPECT_STOP : !strcmp(key, "start") ? SIM_EXPECT_START : SIM_EXPECT_RESTART;
	snprintf(e->label, sizeof(e->label), "%s %s", key, ref);
	return rc;
}

/* {"impair": "NODE/IFNAME", ...}: checked against the link's impairment as
 * the steps before it leave it */
static int parse_impair_step(struct pctx *c, json_t *v, struct impair_conf (*now)[IMPAIR_NDIRS],
			     struct sim_expect *e)
{
	static const char *const extra[] = { "impair", "name", NULL };
	const struct sim_link *k;
	const char *ref = NULL;
	struct impair_err err = { "", "" };
	int rc = get_str(c, v, "impair", true, &ref);
	if (rc)
		return rc;
	size_t old = path_push(c, ".impair");
	rc = sim_scenario_ref(c->s, ref, strlen(ref), &k);
	if (rc)
		rc = ref_fail(c, rc, ref, strlen(ref), false);
	else if (k->loss_percent)
		rc = fail(c, "link %s has loss_percent, which is nftables, not a delay line; give its "
			  "egress/ingress loss_percent instead", ref);
	path_pop(c, old);
	if (rc)
		return rc;
	e->kind = SIM_EXPECT_IMPAIR;
	e->link = (size_t)(k - c->s->links);
	if (impair_update(v, c->path, extra, now[e->link], &err))
		return impair_fail(c, &err);
	c->s->links[e->link].impaired = true;
	json_t *u = json_deep_copy(v);
	if (!u)
		return -ENOMEM;
	json_object_del(u, "impair");
	json_object_del(u, "name");
	e->update = json_dumps(u, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(u);
	if (!e->update)
		return -ENOMEM;
	snprintf(e->label, sizeof(e->label), "impair %.30s %.50s", ref, e->update);
	return 0;
}

/* {"reboot": "NODE"}: a NAT gateway with port mapping (sim/portmapd.h) */
static int parse_reboot_step(struct pctx *c, json_t *v, struct sim_expect *e)
{
	const struct sim_scenario *s = c->s;
	size_t old = path_push(c, ".reboot");
	int rc = node_ref(c, json_object_get(v, "reboot"), &e->from);
	bool found = false;
	/* the gateway's own miniupnpd: its model declares port mapping */
	if (!rc && sim_portmapd_nprocs_of(&s->nodes[e->from]))
		for (size_t i = 0; i < s->nprocs && !found; i++)
			if (s->procs[i].node == e->from && !strcmp(s->procs[i].name, SIM_PORTMAPD_PROC)) {
				e->proc = i;
				found = true;
			}
	if (!rc && !found)
		rc = fail(c, "node \"%s\" is not a NAT gateway with \"port_mapping\" in its model",
			  s_node(c, e->from));
	path_pop(c, old);
	e->kind = SIM_EXPECT_REBOOT;
	snprintf(e->label, sizeof(e->label), "reboot %s", s_node(c, e->from));
	return rc;
}

static int parse_expectations(struct pctx *c, json_t *arr)
{
	static const char *const kinds[] = { "ping", "command", "stop", "start", "restart", "sleep_ms", "impair",
					     "reboot", NULL };
	static const char *const reboot_keys[] = { "name", "reboot", NULL };
	static const char *const ping_keys[] = { "name", "ping", "path", "count", "within_ms", "reachable", NULL };
	static const char *const cmd_keys[] = { "name", "command", "node", "expect_exit", "expect_output",
						"within_ms", NULL };
	static const char *const act_keys[] = { "name", "stop", "start", "restart", "if", "node", NULL };
	static const char *const sleep_keys[] = { "name", "sleep_ms", NULL };
	struct sim_scenario *s = c->s;
	size_t i;
	json_t *v;
	s->expects = calloc(json_array_size(arr) + 1, sizeof(*s->expects));
	/* each link's impairment as the impair steps so far leave it */
	struct impair_conf (*now)[IMPAIR_NDIRS] = calloc(s->nlinks + 1, sizeof(*now));
	if (!s->expects || !now) {
		free(now);
		return -ENOMEM;
	}
	for (size_t k = 0; k < s->nlinks; k++)
		memcpy(now[k], s->links[k].impair, sizeof(now[k]));
	json_array_foreach(arr, i, v) {
		size_t old = path_push(c, ".expectations[%zu]", i);
		struct sim_expect *e = &s->expects[i];
		const char *kind = NULL, *name = NULL;
		int rc = need_object(c, v);
		for (size_t k = 0; !rc && kinds[k]; k++) {
			if (!json_object_get(v, kinds[k]))
				continue;
			if (kind)
				rc = fail(c, "has both \"%s\" and \"%s\"; one kind per expectation", kind, kinds[k]);
			kind = kinds[k];
		}
		if (!rc && !kind)
			rc = fail(c, "needs one of ping, command, stop, start, restart, sleep_ms, impair, reboot");
		s->nexpects = i + 1;	/* so that sim_scenario_free sees partial entries */
		if (!rc && !strcmp(kind, "ping"))
			rc = check_keys(c, v, ping_keys) ?: parse_ping(c, v, e);
		else if (!rc && !strcmp(kind, "command"))
			rc = check_keys(c, v, cmd_keys) ?: parse_command(c, v, e);
		else if (!rc && !strcmp(kind, "sleep_ms")) {
			rc = check_keys(c, v, sleep_keys);
			e->kind = SIM_EXPECT_SLEEP;
			e->sleep_ms = -1;
			if (!rc)
				rc = get_int(c, v, "sleep_ms", 0, 600000, &e->sleep_ms);
			if (!rc && e->sleep_ms < 0) {
				size_t o2 = path_push(c, ".sleep_ms");
				rc = fail(c, "must be an integer");
				path_pop(c, o2);
			}
			snprintf(e->label, sizeof(e->label), "sleep %d ms", e->sleep_ms);
		} else if (!rc && !strcmp(kind, "impair")) {
			rc = parse_impair_step(c, v, now, e);
		} else if (!rc && !strcmp(kind, "reboot")) {
			rc = check_keys(c, v, reboot_keys) ?: parse_reboot_step(c, v, e);
		} else if (!rc)
			rc = check_keys(c, v, act_keys) ?: parse_action(c, v, kind, e);
		if (!rc)
			rc = get_str(c, v, "name", false, &name);
		if (!rc && name)
			snprintf(e->label, sizeof(e->label), "%s", name);
		path_pop(c, old);
		if (rc) {
			free(now);
			return rc;
		}
	}
	free(now);
	return 0;
}

static int parse_nodes(struct pctx *c, json_t *arr)
{
	static const char *const keys[] = { "name", "kind", "nat", "wan", "links", "routes", "processes", NULL };
	struct sim_scenario *s = c->s;
	size_t i, nlinks = 0, nprocs = 0;
	json_t *v;
	int rc = 0;
	s->nodes = calloc(json_array_size(arr) + 1, sizeof(*s->nodes));
	if (!s->nodes)
		return -ENOMEM;
	/* names first: links, routes and variables refer to any node */
	json_array_foreach(arr, i, v) {
		size_t old = path_push(c, ".nodes[%zu]", i);
		const char *name = NULL;
		json_t *x;
		rc = need_object(c, v);
		if (!rc)
			rc = check_keys(c, v, keys);
		if (!rc)
			rc = get_str(c, v, "name", true, &name);
		if (!rc) {
			size_t o2 = path_push(c, ".name");
			rc = check_name(c, name, SIM_NAME_MAX, NULL);
			if (!rc && sim_scenario_node(s, name) >= 0)
				rc = fail(c, "node \"%s\" is defined twice", name);
			if (!rc && find_net(s, name) >= 0)
				rc = fail(c, "\"%s\" is already a network's name (each names a namespace)", name);
			path_pop(c, o2);
		}
		if (!rc)
			rc = parse_kind(c, v, &s->nodes[i]);
		if (!rc && !(rc = get_array(c, v, "links", &x)) && x)
			nlinks += json_array_size(x);
		if (!rc && !(rc = get_array(c, v, "processes", &x)) && x)
			nprocs += json_array_size(x);
		nprocs += sim_portmapd_nprocs(v);
		if (!rc) {
			snprintf(s->nodes[i].name, sizeof(s->nodes[i].name), "%s", name);
			s->nnodes = i + 1;
		}
		path_pop(c, old);
		if (rc)
			return rc;
	}
	s->links = calloc(nlinks + 1, sizeof(*s->links));
	s->procs = calloc(nprocs + 1, sizeof(*s->procs));
	if (!s->links || !s->procs)
		return -ENOMEM;
	json_array_foreach(arr, i, v) {
		size_t old = path_push(c, ".nodes[%zu]", i);
		rc = parse_node_links(c, i, v);
		path_pop(c, old);
		if (rc)
			return rc;
	}
	rc = assign_addresses(c);
	json_array_foreach(arr, i, v) {
		if (rc)
			break;
		size_t old = path_push(c, ".nodes[%zu]", i);
		rc = parse_routes(c, i, v);
		if (!rc)
			rc = parse_nat(c, i, v);
		if (!rc)
			rc = parse_procs(c, i, v);
		path_pop(c, old);
	}
	if (!rc)
		rc = parse_after(c, arr);
	return rc;
}

int sim_scenario_parse(const char *file, const char *text, struct sim_scenario **out, char *err, size_t errlen)
{
	static const char *const keys[] = { "name", "description", "timeout_s", "networks", "nodes", "expectations",
					    "seed", NULL };
	struct pctx c = { .file = file, .err = err, .errlen = errlen };
	json_error_t jerr;
	json_t *root, *arr;
	const char *name = NULL, *desc = NULL;
	int timeout_s = 120, rc;

	*out = NULL;
	err[0] = '\0';
	root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: %s", file, jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	c.s = calloc(1, sizeof(*c.s));
	if (!c.s) {
		rc = -ENOMEM;
		goto out;
	}
	rc = need_object(&c, root);
	if (!rc)
		rc = check_keys(&c, root, keys);
	if (!rc)
		rc = get_str(&c, root, "name", true, &name);
	if (!rc) {
		size_t old = path_push(&c, ".name");
		rc = check_name(&c, name, SIM_SCENARIO_NAME_MAX, ".");
		path_pop(&c, old);
	}
	if (!rc)
		rc = get_str(&c, root, "description", false, &desc);
	if (!rc)
		rc = get_int(&c, root, "timeout_s", 1, 3600, &timeout_s);
	if (!rc && !(c.s->file = strdup(file)))
		rc = -ENOMEM;
	if (!rc && !(c.s->name = strdup(name)))
		rc = -ENOMEM;
	if (!rc && desc && !(c.s->description = strdup(desc)))
		rc = -ENOMEM;
	c.s->timeout_ms = timeout_s * 1000;
	c.s->seed = 1;
	if (!rc && json_object_get(root, "seed")) {
		json_t *seed = json_object_get(root, "seed");
		size_t old = path_push(&c, ".seed");
		if (!json_is_integer(seed) || json_integer_value(seed) < 0)
			rc = fail(&c, "must be an integer 0..2^63-1");
		else
			c.s->seed = (uint64_t)json_integer_value(seed);
		path_pop(&c, old);
	}
	if (!rc && !(rc = get_array(&c, root, "networks", &arr)) && arr)
		rc = parse_networks(&c, arr);
	if (!rc && !(rc = get_array(&c, root, "nodes", &arr))) {
		if (!arr || json_array_size(arr) == 0) {
			size_t old = path_push(&c, ".nodes");
			rc = fail(&c, arr ? "must list at least one node" : "missing (required)");
			path_pop(&c, old);
		} else {
			rc = parse_nodes(&c, arr);
		}
	}
	if (!rc && !(rc = get_array(&c, root, "expectations", &arr)) && arr)
		rc = parse_expectations(&c, arr);
out:
	if (rc == -ENOMEM && !err[0])
		snprintf(err, errlen, "%s: out of memory", file);
	if (rc) {
		sim_scenario_free(c.s);
		c.s = NULL;
	}
	json_decref(root);
	*out = c.s;
	return rc;
}

int sim_scenario_load(const char *file, struct sim_scenario **out, char *err, size_t errlen)
{
	FILE *f = fopen(file, "r");
	char *text = NULL;
	size_t len = 0;
	int rc;
	*out = NULL;
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", file, strerror(-rc));
		return rc;
	}
	FILE *m = open_memstream(&text, &len);
	char buf[8192];
	size_t n;
	while (m && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, m);
	rc = ferror(f) ? -EIO : 0;
	fclose(f);
	if (!m)
		return -ENOMEM;
	fclose(m);
	if (rc)
		snprintf(err, errlen, "%s: read error", file);
	else
		rc = sim_scenario_parse(file, text, out, err, errlen);
	free(text);
	return rc;
}

void sim_scenario_free(struct sim_scenario *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nnodes; i++) {
		json_decref(s->nodes[i].nat);
		free(s->nodes[i].routes);
	}
	for (size_t i = 0; i < s->nprocs; i++) {
		argv_free(&s->procs[i].argv);
		argv_free(&s->procs[i].ready.argv);
		free(s->procs[i].ready.path);
		free(s->procs[i].after);
	}
	for (size_t i = 0; i < s->nexpects; i++) {
		argv_free(&s->expects[i].argv);
		free(s->expects[i].to);
		free(s->expects[i].update);
		if (s->expects[i].has_regex)
			regfree(&s->expects[i].regex);
	}
	free(s->nets);
	free(s->nodes);
	free(s->links);
	free(s->procs);
	free(s->expects);
	free(s->file);
	free(s->name);
	free(s->description);
	free(s);
}
