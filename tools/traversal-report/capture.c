/* capture: pcap/pcapng files -> observations. libpcap cannot resynchronise
 * after a damaged record, so the first one ends the file; what came before
 * it is kept. The offset of every record is the stream position before it is
 * read (ftell of the FILE libpcap reads through). */
#include "report.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A record whose time jumps this far from the previous one is garbage read
 * after a corrupt length field, not a packet. */
#define TIME_JUMP_NS (365ull * 24 * 3600 * 1000000000ull)

int rp_grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	void *p;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	p = realloc(*arr, ncap * sz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* FNV-1a, 64 bit: identifies one datagram's bytes across captures. The
 * first 128 bytes and the length are enough: WireGuard puts the index and
 * counter (data) or the ephemeral key (handshakes) up front, STUN its
 * transaction id. */
static uint64_t payload_hash(const uint8_t *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len && i < 128; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h ^ len;
}

static void cap_fail(struct rp_capture *c, uint64_t offset, const char *why)
{
	c->failed = true;
	c->err_offset = offset;
	snprintf(c->err, sizeof(c->err), "%s", why);
}

static int add_obs(struct rp *rp, uint32_t capi, uint64_t ts, uint64_t offset,
		   const struct pkt_decoded *d)
{
	struct rp_obs *o = RP_PUSH(rp->obs, rp->nobs, rp->obs_cap);

	if (!o)
		return -ENOMEM;
	memset(o, 0, sizeof(*o));
	o->ts_ns = ts;
	o->offset = offset;
	o->hash = payload_hash(d->payload, d->payload_len);
	o->src = d->src;
	o->dst = d->dst;
	o->cap = capi;
	o->len = (uint32_t)d->payload_len;
	o->kind = (uint8_t)d->kind;
	o->stun = -1;
	if (d->kind == PKT_WG) {
		o->wg = d->wg;
	} else {
		struct pkt_stun *s = RP_PUSH(rp->stuns, rp->nstuns, rp->stuns_cap);

		if (!s)
			return -ENOMEM;
		*s = d->stun;
		o->stun = (int32_t)(rp->nstuns - 1);
	}
	return 0;
}

static int read_records(struct rp *rp, uint32_t capi, pcap_t *p)
{
	struct rp_capture *c = &rp->caps[capi];
	FILE *f = pcap_file(p);
	uint64_t last_ts = 0;

	for (;;) {
		struct pcap_pkthdr *h;
		const u_char *data;
		struct pkt_decoded d;
		long pos = f ? ftell(f) : -1;
		uint64_t offset = pos < 0 ? 0 : (uint64_t)pos;
		uint64_t ts;
		int rc = pcap_next_ex(p, &h, &data);

		if (rc == PCAP_ERROR_BREAK)
			return 0;
		if (rc != 1) {
			cap_fail(c, offset, pcap_geterr(p));
			return 0;
		}
		ts = (uint64_t)h->ts.tv_sec * 1000000000ull + (uint64_t)h->ts.tv_usec;
		if (h->caplen > h->len ||
		    (last_ts && (ts > last_ts + TIME_JUMP_NS || ts + TIME_JUMP_NS < last_ts))) {
			char why[128];

			snprintf(why, sizeof(why),
				 "corrupt record header (captured %u of %u bytes, time %+.3f s from the previous)",
				 h->caplen, h->len, ((double)ts - (double)last_ts) / 1e9);
			cap_fail(c, offset, why);
			return 0;
		}
		last_ts = ts;
		c->records++;
		if (pkt_decode(c->linktype, data, h->caplen, &d) < 0) {
			if (c->undecodable < RP_BAD_OFFSETS)
				c->bad_offsets[c->undecodable] = offset;
			c->undecodable++;
			continue;
		}
		if (d.kind != PKT_STUN && d.kind != PKT_WG)
			continue;
		if (d.kind == PKT_STUN)
			c->stun++;
		else
			c->wg++;
		if (add_obs(rp, capi, ts, offset, &d) < 0)
			return -ENOMEM;
	}
}

int rp_read_pcap(struct rp *rp, const char *path)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	struct rp_capture *c;
	const char *slash;
	uint32_t capi;
	pcap_t *p;
	int rc;

	c = RP_PUSH(rp->caps, rp->ncaps, rp->caps_cap);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	capi = (uint32_t)(rp->ncaps - 1);
	c->path = strdup(path);
	if (!c->path)
		return -ENOMEM;
	slash = strrchr(c->path, '/');
	c->name = slash ? slash + 1 : c->path;
	c->linktype = -1;

	p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!p) {
		cap_fail(c, 0, errbuf);
		return 0;
	}
	c->linktype = pcap_datalink(p);
	rc = read_records(rp, capi, p);
	pcap_close(p);
	return rc;
}
