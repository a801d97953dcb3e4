/* schedule.c: meshd wakes at the earliest deadline of its cores and of its
 * own periodic work, on a fake clock: nothing is due before it, and an idle
 * agent's next wake-up is seconds away, not a tick. */
#include <criterion/criterion.h>
#include <string.h>

#include "agent/meshd/meshd.h"
#include "agent/meshd/relay.h"
#include "agent/wg/crypto.h"

#define NOW 100000u	/* loop ms */

static struct meshd m;
static struct mpeer peer, relay;
static struct svc *running = (struct svc *)&running;	/* only ever compared with NULL */

static void fake_send(void *arg, const struct netio_pkt *pkts, int n)
{
	(void)arg, (void)pkts, (void)n;
}

static const struct wg_device_ops ops = { .udp_send = fake_send, .tun_deliver = fake_send };

/* an idle agent: registered, discovery between rounds, no peers */
static void idle(void)
{
	memset(&m, 0, sizeof(m));
	memset(&peer, 0, sizeof(peer));
	memset(&relay, 0, sizeof(relay));
	cr_assert_eq(wg_device_new(&ops, NULL, &m.dev), 0);
	vec_init(&m.peers, sizeof(struct mpeer *), MESHD_MAX_PEERS, "test peers");
	disco_init(&m.disco, 0, NOW + DISCO_INTERVAL_MS);
	m.next_local_check = NOW + LOCAL_WATCHED_MS;
	m.svc = running;
}

static void teardown(void)
{
	vec_free(&m.peers);
	wg_device_free(m.dev);
}

enum part { IDLE, PATH, PING, SVC_START, RELAY_PROBE, NATD_DUE, LOCAL_CHECK };

static void add(enum part p, uint64_t at)
{
	struct mpeer *pp = &peer, *rp = &relay;

	switch (p) {
	case IDLE:
		break;
	case PATH:
		peer.use_path = true;
		peer.path.state = PATH_RELAYED;
		peer.path.retry_at = at;
		cr_assert_eq(vec_append(&m.peers, &pp), 0);
		break;
	case PING:
		m.ping.conn = (struct ctl_conn *)&m;
		m.ping.deadline = at;
		break;
	case SVC_START:
		m.svc = NULL;
		m.svc_due = at;
		break;
	case RELAY_PROBE: {
		/* disco probes the relay: the first at once, the next at `at` */
		struct disco_send out[4];

		relay.relay = relay.has_relay_addr = true;
		cr_assert_eq(addr_parse("198.51.100.7:51820", &relay.relay_addr), 0);
		cr_assert_eq(vec_append(&m.peers, &rp), 0);
		cr_assert_eq(disco_set_relays(&m.disco, &relay.relay_addr, 1), 1);
		cr_assert_leq(schedule_deadline(&m, NOW), NOW, "a new relay's probe is due at once");
		cr_assert_eq(disco_poll_relays(&m.disco, at - RELAY_PROBE_MS, out, 4), 1);
		break;
	}
	case NATD_DUE:
		m.natd[SVC_FAM_IPV4].due = true;
		break;
	case LOCAL_CHECK:
		m.next_local_check = at;
		break;
	}
}

Test(schedule, earliest_deadline, .fini = teardown)
{
	static const struct {
		const char *name;
		enum part part;
		uint64_t at;		/* the part's deadline */
		uint64_t want;		/* the next wake-up */
	} cases[] = {
		{ "idle: the next discovery round", IDLE, 0, NOW + DISCO_INTERVAL_MS },
		{ "a path's retry", PATH, NOW + 7000, NOW + 7000 },
		{ "a path's retry after the round", PATH, NOW + 60000, NOW + DISCO_INTERVAL_MS },
		{ "the ping's timeout", PING, NOW + PING_TIMEOUT_MS, NOW + PING_TIMEOUT_MS },
		{ "the service client's start", SVC_START, NOW + 1234, NOW + 1234 },
		{ "relay probes, with a relay", RELAY_PROBE, NOW + 2000, NOW + 2000 },
		{ "a NAT discovery run wanted: now", NATD_DUE, 0, NOW },
		{ "the local address check", LOCAL_CHECK, NOW + 3000, NOW + 3000 },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		idle();
		add(cases[c].part, cases[c].at);
		cr_expect_eq(schedule_deadline(&m, NOW), cases[c].want, "%s", cases[c].name);
		teardown();
	}
	idle();
}

/* nothing is due before the next deadline: an idle agent does not tick */
Test(schedule, idle_sleeps_seconds, .fini = teardown)
{
	idle();
	for (uint64_t t = NOW; t < NOW + 5000; t += 50)
		cr_assert_geq(schedule_deadline(&m, t), NOW + DISCO_INTERVAL_MS, "at %llu", (unsigned long long)t);
}

/* the WireGuard device's timers (ns on the same clock) are one of the cores */
Test(schedule, device_timers, .fini = teardown)
{
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN], ppriv[WG_KEY_LEN], ppub[WG_KEY_LEN];
	union sockaddr_any ep;
	struct wg_peer *wp;
	uint64_t dl_ns;

	idle();
	cr_assert_eq(wg_crypto_init(), 0);
	wg_dh_generate(priv, pub);
	wg_dh_generate(ppriv, ppub);
	cr_assert_eq(wg_device_set_private_key(m.dev, priv), 0);
	cr_assert_eq(wg_device_peer_add(m.dev, ppub, &wp), 0);
	cr_assert_eq(addr_parse("192.0.2.1:51820", &ep), 0);
	wg_peer_set_endpoint(wp, &ep);
	cr_assert_eq(wg_device_next_deadline(m.dev), 0, "no timer armed yet");
	/* a handshake at NOW: its retransmission is due REKEY_TIMEOUT (+ jitter) later */
	wg_peer_initiate(wp, (uint64_t)NOW * 1000000u);
	dl_ns = wg_device_next_deadline(m.dev);
	cr_assert_gt(dl_ns, (uint64_t)NOW * 1000000u);
	cr_assert_leq(dl_ns, (uint64_t)(NOW + 5000 + 334) * 1000000u);
	cr_expect_eq(schedule_deadline(&m, NOW), (dl_ns + 999999) / 1000000, "the device's deadline, rounded up");
	/* nothing is due before it: expiring earlier sends nothing and keeps it */
	wg_device_expire(m.dev, dl_ns - 1);
	cr_expect_eq(wg_device_next_deadline(m.dev), dl_ns);
}
