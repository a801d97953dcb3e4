/* libFuzzer target: the device's packet path. The input is one datagram for
 * wg_device_input_udp (dispatch by type, MAC checks, handshake consumption,
 * cookie replies, data lookup and decryption, inner-packet checks) and, the
 * same bytes, one TUN packet for wg_device_input_tun (routing by allowed IPs,
 * staging, initiation). Whatever the device sends or delivers is discarded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/wg/crypto.h"
#include "agent/wg/device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void drop(void *arg, const struct netio_pkt *pkts, int n)
{
	(void)arg;
	(void)pkts;
	(void)n;
}

/* data for an unknown session: the source must be a readable address */
static void lost(void *arg, const union sockaddr_any *src)
{
	volatile sa_family_t f = src->sa.sa_family;
	(void)arg;
	(void)f;
}

static const struct wg_device_ops ops = { .udp_send = drop, .tun_deliver = drop, .unknown_session = lost };
static struct wg_device *dev;

static void setup(void)
{
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN], peer_priv[WG_KEY_LEN], peer_pub[WG_KEY_LEN];
	union sockaddr_any ep;
	struct wg_peer *p;
	struct cidr all;

	if (wg_device_new(&ops, NULL, &dev) < 0)
		abort();
	memset(priv, 1, sizeof(priv));
	memset(peer_priv, 2, sizeof(peer_priv));
	wg_dh_pubkey(pub, priv);
	wg_dh_pubkey(peer_pub, peer_priv);
	if (wg_device_set_private_key(dev, priv) < 0 || wg_device_peer_add(dev, peer_pub, &p) < 0)
		abort();
	addr_parse("192.0.2.2:51820", &ep);
	wg_peer_set_endpoint(p, &ep);
	cidr_parse("0.0.0.0/0", false, &all);
	wg_peer_allowed_ip_add(p, &all);
	cidr_parse("::/0", false, &all);
	wg_peer_allowed_ip_add(p, &all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[WG_DEVICE_HEADROOM + 65536 + WG_DEVICE_TAILROOM];
	static uint64_t now = 1000000000ull;	/* the owner's clock: a fake one */
	struct netio_pkt pkt;

	if (!dev)
		setup();
	if (size > 65536)
		return 0;
	memcpy(buf, data, size);
	pkt = (struct netio_pkt){ .data = buf, .len = size, .cap = sizeof(buf) };
	addr_parse("198.51.100.9:4242", &pkt.addr);
	wg_device_input_udp(dev, &pkt, 1, now += 1000);

	memcpy(buf + WG_DEVICE_HEADROOM, data, size);
	pkt = (struct netio_pkt){ .data = buf + WG_DEVICE_HEADROOM, .len = size,
				  .cap = sizeof(buf) - WG_DEVICE_HEADROOM };
	wg_device_input_tun(dev, &pkt, 1, now += 1000);
	return 0;
}
