/* api_policy: who may learn of whom (issue 16). A VPC's policy view is its
 * groups (parsed by lib/policy), each group's members and, per group, its
 * JSON resolved for agents (each rule's `group_addresses`: the tunnel
 * addresses of the members of the groups it names). A view belongs to one
 * revision of the VPC: every change of a group, of a device's group and of
 * the devices themselves raises the revision, so a view is never stale. It
 * is built once per revision (outside a batch; one built while a batch is
 * pending may rest on uncommitted writes and is its request's alone) and
 * kept, one per VPC.
 *
 * Visibility: a requester sees a peer when either is a relay, or when
 * policy_visible says some packet passes both groups one way or the other.
 * Groups are matched by id (the members need not be expanded for that); when
 * no group of the VPC has ip_ranges, the answer depends on the two groups
 * alone, is computed once per pair and every member of a group gets the
 * same peer list (its "class": api_policy_class), which api_poll.c caches
 * and shares. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "log.h"
#include "policy.h"

struct view_member {
	char id[UUID_STRLEN];
	int group;		/* index into the view's groups; -1: none known */
	bool relay;
	int64_t revision;	/* of the device's last change */
	struct policy_peer peer;
};

struct policy_view {
	char vpc_id[UUID_STRLEN];
	int64_t revision, policy_revision;
	bool cached;		/* owned by api->views */
	size_t ngroups;
	struct policy_group *groups;	/* rules without members: groups match by id */
	json_t *stored;		/* the groups as stored, in the order of groups */
	json_t **addresses;	/* per group: its members' tunnel addresses; in a
				 * view without members, loaded when first needed */
	bool partial;		/* built without members: only for one device's group */
	bool by_address;	/* some rule has ip_ranges: visibility depends on addresses */
	signed char *pair;	/* ngroups x ngroups: -1 not known yet, 0, 1 */
	struct view_member *members;	/* sorted by id */
	size_t nmembers, cap;
	/* a cached view keeps the one of the VPC's previous policy, so a client
	 * that knew it gets only what the new policy changed */
	struct policy_view *prev;
	struct policy_view *next;
};

static struct policy_group none;	/* a member of no known group: no rules, sees nothing */

static void view_free(struct policy_view *v)
{
	if (!v)
		return;
	view_free(v->prev);
	for (size_t i = 0; i < v->ngroups; i++) {
		policy_group_free(&v->groups[i]);
		json_decref(v->addresses ? v->addresses[i] : NULL);
	}
	free(v->groups);
	free(v->addresses);
	free(v->pair);
	free(v->members);
	json_decref(v->stored);
	free(v);
}

static int group_index(const struct policy_view *v, const char *id)
{
	for (size_t i = 0; i < v->ngroups; i++)
		if (!strcmp(v->groups[i].id, id))
			return (int)i;
	return -1;
}

static int add_member(void *arg, const char *id, const char *tunnel_ip, const char *group_id, bool relay,
		      int64_t revision)
{
	struct policy_view *v = arg;
	struct view_member *m;

	if (v->nmembers == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 64;
		struct view_member *grown = realloc(v->members, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		v->members = grown;
		v->cap = cap;
	}
	m = &v->members[v->nmembers];
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->relay = relay;
	m->revision = revision;
	m->group = group_index(v, group_id);
	m->peer.group_id = m->group >= 0 ? v->groups[m->group].id : NULL;
	if (inet_pton(AF_INET, tunnel_ip, m->peer.addr[0].a) == 1) {
		m->peer.addr[0].family = AF_INET;
		m->peer.naddr = 1;
	}
	if (m->group >= 0 && json_array_append_new(v->addresses[m->group], json_string(tunnel_ip)) < 0)
		return -ENOMEM;
	v->nmembers++;
	return 0;
}

static int member_cmp(const void *a, const void *b)
{
	return strcmp(((const struct view_member *)a)->id, ((const struct view_member *)b)->id);
}

static bool rules_have_ranges(const struct policy_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].nranges)
			return true;
	return false;
}

/* the VPC's groups and (unless partial) members, from the store */
static int view_build(struct api *api, const char *vpc_id, int64_t revision, bool partial,
		      struct policy_view **out)
{
	char why[POLICY_ERR_MAX];
	struct policy_view *v;
	json_t *g;
	size_t i;
	int rc;

	*out = NULL;
	if (!(v = calloc(1, sizeof(*v))))
		return -ENOMEM;
	snprintf(v->vpc_id, sizeof(v->vpc_id), "%s", vpc_id);
	v->revision = revision;
	if ((rc = store_policy_revision(api->store, vpc_id, &v->policy_revision)) < 0 ||
	    (rc = store_secgroup_list(api->store, vpc_id, &v->stored)) < 0)
		goto err;
	v->ngroups = json_array_size(v->stored);
	v->groups = calloc(v->ngroups + 1, sizeof(*v->groups));
	v->addresses = calloc(v->ngroups + 1, sizeof(*v->addresses));
	v->pair = malloc(v->ngroups * v->ngroups + 1);
	if (!v->groups || !v->addresses || !v->pair) {
		rc = -ENOMEM;
		goto err;
	}
	memset(v->pair, -1, v->ngroups * v->ngroups + 1);
	json_array_foreach(v->stored, i, g) {
		/* written by the store from lib/policy's own output: a failure is a bug or a hand edit */
		if ((rc = policy_group_parse(g, 0, &v->groups[i], why, sizeof(why))) < 0) {
			log_error("api", "stored security group does not parse id=%s: %s",
				  json_string_value(json_object_get(g, "id")), why);
			goto err;
		}
		v->by_address |= rules_have_ranges(v->groups[i].in, v->groups[i].nin) ||
				 rules_have_ranges(v->groups[i].out, v->groups[i].nout);
		if (!partial && !(v->addresses[i] = json_array())) {
			rc = -ENOMEM;
			goto err;
		}
	}
	v->partial = partial;
	if (!partial && (rc = store_policy_members(api->store, vpc_id, add_member, v)) < 0)
		goto err;
	if (v->nmembers)	/* qsort(NULL, 0) is undefined */
		qsort(v->members, v->nmembers, sizeof(*v->members), member_cmp);
	*out = v;
	return 0;
err:
	view_free(v);
	return rc;
}

int api_policy_view(struct api *api, const char *vpc_id, struct policy_view **out)
{
	struct policy_view **p, *v;
	int64_t revision;
	int rc;

	*out = NULL;
	if ((rc = store_vpc_revision(api->store, vpc_id, &revision)) < 0)
		return rc;
	for (p = &api->views; *p; p = &(*p)->next)
		if (!strcmp((*p)->vpc_id, vpc_id))
			break;
	if (*p && (*p)->revision == revision && !store_batch_pending(api->store)) {
		*out = *p;
		return 0;
	}
	if ((rc = view_build(api, vpc_id, revision, false, &v)) < 0)
		return rc;
	api->policy_builds++;
	if (!store_batch_pending(api->store)) {
		struct policy_view *old = *p;

		if (old) {
			v->next = old->next;
			old->next = NULL;
			if (old->policy_revision == v->policy_revision) {
				/* the same policy: its predecessor stays the previous one */
				v->prev = old->prev;
				old->prev = NULL;
				view_free(old);
			} else {
				view_free(old->prev);
				old->prev = NULL;
				old->cached = false;
				v->prev = old;
			}
		}
		*p = v;
		v->cached = true;
	}
	*out = v;
	return 0;
}

void api_policy_view_put(struct policy_view *v)
{
	if (v && !v->cached)
		view_free(v);
}

void api_policy_drop(struct api *api, const char *vpc_id)
{
	for (struct policy_view **p = &api->views; *p; p = &(*p)->next) {
		if (strcmp((*p)->vpc_id, vpc_id))
			continue;
		struct policy_view *v = *p;
		*p = v->next;
		view_free(v);
		return;
	}
}

void api_policy_free(struct api *api)
{
	while (api->views) {
		struct policy_view *v = api->views;
		api->views = v->next;
		view_free(v);
	}
}

int64_t api_policy_revision(const struct policy_view *v)
{
	return v->policy_revision;
}

/* The view of the policy a client that asks since knew, if kept: the
 * previous policy's view, built at a revision no policy changed before since
 * it took effect, and not before since (so every answer the client had
 * rested on it). */
struct policy_view *api_policy_prev(struct policy_view *v, int64_t since)
{
	struct policy_view *p = v->prev;

	return p && p->policy_revision <= since && since <= p->revision ? p : NULL;
}

const struct view_member *api_policy_member(const struct policy_view *v, const char *device_id)
{
	struct view_member key;

	snprintf(key.id, sizeof(key.id), "%s", device_id);
	return bsearch(&key, v->members, v->nmembers, sizeof(*v->members), member_cmp);
}

static const struct policy_group *group_of(const struct policy_view *v, const struct view_member *m)
{
	return m->group >= 0 ? &v->groups[m->group] : &none;
}

bool api_policy_sees(struct policy_view *v, const struct view_member *who, const struct view_member *peer)
{
	signed char *pair;

	if (who->relay || peer->relay)
		return true;
	if (who->group < 0 || peer->group < 0)
		return false;
	if (v->by_address)
		return policy_visible(group_of(v, who), &who->peer, group_of(v, peer), &peer->peer);
	/* the same answer for every pair of members of these two groups */
	pair = &v->pair[(size_t)who->group * v->ngroups + (size_t)peer->group];
	if (*pair < 0)
		*pair = policy_visible(group_of(v, who), &who->peer, group_of(v, peer), &peer->peer);
	return *pair;
}

int api_policy_flips(struct api *api, struct policy_view *v, struct policy_view *old,
		     const struct view_member *who, int64_t since, json_t *shown, json_t *hidden)
{
	const struct view_member *w = api_policy_member(old, who->id);
	json_t *d;
	int rc;

	if (!w)
		return -ENOENT;
	for (size_t i = 0; i < v->nmembers; i++) {
		const struct view_member *m = &v->members[i], *o;
		bool sees;

		/* a device changed after since is in the changes, judged there */
		if (m->revision > since)
			continue;
		/* unchanged since, so it was there when the client asked: old knows it */
		if (!(o = api_policy_member(old, m->id)))
			return -ENOENT;
		sees = api_policy_sees(v, who, m);
		if (sees == api_policy_sees(old, w, o))
			continue;
		if (!sees) {
			rc = json_array_append_new(hidden, json_string(m->id));
		} else if ((rc = store_device_get(api->store, m->id, &d, NULL)) == 0) {
			rc = json_array_append_new(shown, d);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

void api_policy_class(struct policy_view *v, const struct view_member *who, int64_t since,
		      char out[API_CLASS_LEN])
{
	struct policy_view *old = since < v->policy_revision ? api_policy_prev(v, since) : NULL;
	const struct view_member *w = old ? api_policy_member(old, who->id) : NULL;

	/* told what changed since an older policy: the same list only for the
	 * devices that were where who was (its own move is news for it alone) */
	if (old && (!w || w->relay != who->relay || (w->group < 0) != (who->group < 0) ||
		    (w->group >= 0 && strcmp(old->groups[w->group].id, v->groups[who->group].id)))) {
		snprintf(out, API_CLASS_LEN, "device:%s", who->id);
		return;
	}
	/* a relay's answer carries its own group too: relays of one group share */
	if (who->relay && who->group >= 0)
		snprintf(out, API_CLASS_LEN, "relay:%.36s", v->groups[who->group].id);
	else if (!who->relay && !v->by_address && who->group >= 0)
		snprintf(out, API_CLASS_LEN, "group:%.36s", v->groups[who->group].id);
	else
		snprintf(out, API_CLASS_LEN, "device:%s", who->id);
}

/* group k's member addresses, loaded now in a partial view */
static json_t *addresses_of(struct store *st, const struct policy_view *v, int k)
{
	if (!v->addresses[k] && st && (v->addresses[k] = json_array()) &&
	    store_policy_group_addresses(st, v->groups[k].id, v->addresses[k]) < 0) {
		json_decref(v->addresses[k]);
		v->addresses[k] = NULL;
	}
	return v->addresses[k];
}

/* a rule with group_addresses: every member address of the groups it names */
static int resolve_rule(struct store *st, const struct policy_view *v, json_t *rule)
{
	json_t *addrs = json_array(), *g, *a;
	size_t i;
	int k;

	if (!addrs)
		return -ENOMEM;
	json_array_foreach(json_object_get(rule, "groups"), i, g) {
		if (!json_is_string(g) || (k = group_index(v, json_string_value(g))) < 0)
			continue;
		if (!(a = addresses_of(st, v, k)) || json_array_extend(addrs, a) < 0) {
			json_decref(addrs);
			return -ENOMEM;
		}
	}
	return json_object_set_new(rule, "group_addresses", addrs) < 0 ? -ENOMEM : 0;
}

/* group k's JSON as an agent gets it: each rule resolved */
static json_t *resolved_group(struct store *st, const struct policy_view *v, size_t k)
{
	static const char *const keys[] = { "inbound_rules", "outbound_rules" };
	json_t *g = json_deep_copy(json_array_get(v->stored, k)), *r;
	size_t i;

	for (size_t d = 0; g && d < 2; d++)
		json_array_foreach(json_object_get(g, keys[d]), i, r)
			if (resolve_rule(st, v, r) < 0) {
				json_decref(g);
				return NULL;
			}
	return g;
}

/* the answer of a device in group k (-1: none known), a relay or not */
static int annotate_as(struct store *st, const struct policy_view *v, int k, bool relay, json_t *answer)
{
	json_t *all, *g;

	if (k >= 0) {
		if (!(g = resolved_group(st, v, (size_t)k)) || json_object_set_new(answer, "security_group", g) < 0)
			return -ENOMEM;
	} else if (json_object_set_new(answer, "security_group", json_null()) < 0) {
		return -ENOMEM;
	}
	if (!relay)
		return 0;
	/* a relay judges every pair of the VPC */
	if (!(all = json_array()) || json_object_set_new(answer, "security_groups", all) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < v->ngroups; i++)
		if (!(g = resolved_group(st, v, i)) || json_array_append_new(all, g) < 0)
			return -ENOMEM;
	return 0;
}

int api_policy_annotate(const struct policy_view *v, const struct view_member *who, json_t *answer)
{
	return who ? annotate_as(NULL, v, who->group, who->relay, answer) : 0;
}

/* The registration answer: the VPC's view when it is current, else one of
 * its groups alone, with the addresses of only the groups the rules name
 * (none for a default group): a registration is a write, so its answer is
 * built while the batch is pending, and a whole view per registration would
 * read every device of the VPC each time. */
int api_policy_annotate_device(struct api *api, json_t *device)
{
	const char *vpc_id = json_string_value(json_object_get(device, "vpc_id"));
	const char *group_id = json_string_value(json_object_get(device, "security_group_id"));
	bool relay = json_is_true(json_object_get(device, "relay"));
	struct policy_view *v = NULL, *p;
	int64_t revision;
	int rc;

	if (!vpc_id || !group_id || (rc = store_vpc_revision(api->store, vpc_id, &revision)) < 0)
		return -EINVAL;
	for (p = api->views; p; p = p->next)
		if (!strcmp(p->vpc_id, vpc_id) && p->revision == revision && !store_batch_pending(api->store))
			v = p;
	if (!v && (rc = view_build(api, vpc_id, revision, true, &v)) < 0)
		return rc;
	rc = annotate_as(api->store, v, group_index(v, group_id), relay, device);
	api_policy_view_put(v);
	return rc;
}
