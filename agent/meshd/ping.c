/* ping: `meshctl ping PEER`, an ICMP echo from our tunnel address put into
 * the data plane as if read from the TUN; the reply is taken out of what the
 * data plane delivers before it reaches the TUN. One at a time. */
#include <string.h>
#include <unistd.h>

#include "csum.h"
#include "meshd.h"

/* Issue 17: the echo that tells a peer we lost the direct path (peerpath.c,
 * PATH_ACT_TELL). It goes through the relay, whose data plane checked that
 * its inner source is ours; the peer's data plane refuses it while its path
 * to us is direct (which is the message), and when it is not, its agent
 * takes it here before the TUN: no reply. A relay forwards it (it is not
 * for the relay's own address). */
#define TELL_ID 0x6e6c		/* "nl" */
static const char tell_data[16] = "natmesh lostpath";
static const char ping_data[16] = "natmesh meshctl!";

static bool is_tell(const struct meshd *m, const uint8_t *ip, size_t len, size_t ihl)
{
	return !memcmp(ip + 16, &m->tip.in.sin_addr, 4) && len >= ihl + 8 + sizeof(tell_data) && (ip[ihl] == 8 || ip[ihl] == 0) &&
	       (uint16_t)(ip[ihl + 4] << 8 | ip[ihl + 5]) == TELL_ID &&
	       !memcmp(ip + ihl + 8, tell_data, sizeof(tell_data));
}

bool ping_take_reply(struct meshd *m, const uint8_t *ip, size_t len)
{
	struct ping *pg = &m->ping;
	size_t ihl;

	if (len < 20 || (ip[0] >> 4) != 4 || ip[9] != 1)
		return false;
	ihl = (size_t)(ip[0] & 15) * 4;
	if (is_tell(m, ip, len, ihl))
		return true;
	if (!pg->conn || len < ihl + 8 || ip[ihl] != 0)
		return false;
	if ((uint16_t)(ip[ihl + 4] << 8 | ip[ihl + 5]) != pg->id ||
	    (uint16_t)(ip[ihl + 6] << 8 | ip[ihl + 7]) != pg->seq)
		return false;
	pg->peer->ping_ms = (double)(meshd_mono_us() - pg->sent) / 1000.0;
	ctl_reply(pg->conn, json_pack("{s:s, s:f, s:s}", "peer", pg->peer->name, "rtt_ms",
				      pg->peer->ping_ms, "path", peerpath_name(pg->peer)));
	pg->conn = NULL;
	return true;
}

/* RFC 791 header and RFC 792 echo request, 16 bytes of data */
static size_t build_echo(uint8_t *ip, const struct meshd *m, const struct mpeer *p, uint16_t id, uint16_t seq,
			 const char data[16])
{
	const size_t len = 20 + 8 + 16;
	uint16_t sum;

	memset(ip, 0, len);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(len >> 8);
	ip[3] = (uint8_t)len;
	ip[8] = 64;
	ip[9] = 1;
	memcpy(ip + 12, &m->tip.in.sin_addr, 4);
	memcpy(ip + 16, &p->tunnel_ip.in.sin_addr, 4);
	sum = csum_ip(ip, 20);
	memcpy(ip + 10, &sum, 2);
	ip[20] = 8;
	ip[24] = (uint8_t)(id >> 8);
	ip[25] = (uint8_t)id;
	ip[26] = (uint8_t)(seq >> 8);
	ip[27] = (uint8_t)seq;
	memcpy(ip + 28, data, 16);
	sum = csum_ip(ip + 20, 8 + 16);
	memcpy(ip + 22, &sum, 2);
	return len;
}

void ping_start(struct meshd *m, struct ctl_conn *c, struct mpeer *p)
{
	uint8_t *ip = m->ctl_buf + WG_DEVICE_HEADROOM;
	struct netio_pkt pkt = { .data = ip, .cap = BUF_SIZE - WG_DEVICE_HEADROOM };

	if (m->ping.conn) {
		ctl_reply_error(c, "a ping is in progress");
		return;
	}
	if (!m->registered) {
		ctl_reply_error(c, "not registered yet: no tunnel address");
		return;
	}
	m->ping.id = (uint16_t)(0x6d00 | (getpid() & 0xff));
	m->ping.seq = ++m->ping_seq;
	pkt.len = build_echo(ip, m, p, m->ping.id, m->ping.seq, ping_data);
	m->ping.conn = c;
	m->ping.peer = p;
	m->ping.sent = meshd_mono_us();
	m->ping.deadline = meshd_now(m) + PING_TIMEOUT_MS;
	wg_device_input_tun(m->dev, &pkt, 1, clock_now_ns());
}

void ping_tell(struct meshd *m, const struct mpeer *p)
{
	uint8_t buf[WG_DEVICE_HEADROOM + 64 + WG_DEVICE_TAILROOM];
	struct netio_pkt pkt = { .data = buf + WG_DEVICE_HEADROOM, .cap = sizeof(buf) - WG_DEVICE_HEADROOM };

	if (!m->registered)
		return;
	pkt.len = build_echo(pkt.data, m, p, TELL_ID, ++m->ping_seq, tell_data);
	wg_device_input_tun(m->dev, &pkt, 1, clock_now_ns());
}

void ping_expire(struct meshd *m, uint64_t now)
{
	if (m->ping.conn && now >= m->ping.deadline) {
		ctl_reply(m->ping.conn, json_pack("{s:s, s:s}", "peer", m->ping.peer->name, "error", "timeout"));
		m->ping.conn = NULL;
	}
}

void ping_cancel(struct meshd *m, const struct mpeer *p, const char *why)
{
	if (!m->ping.conn || (p && m->ping.peer != p))
		return;
	ctl_reply_error(m->ping.conn, why);
	m->ping.conn = NULL;
}
