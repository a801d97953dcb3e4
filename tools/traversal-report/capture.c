/* capture: pcap/pcapng files -> observations. Classic pcap (what meshsim
 * and tcpdump write) is read with lib/pcapread, which resynchronises after a
 * damaged record header: the bytes up to the next plausible record are
 * skipped and reported, the records after them are kept. pcapng and the
 * other formats libpcap knows are read with libpcap, which cannot resume:
 * there the first damaged record ends the file and what came before it is
 * kept (pcapng blocks carry their length at both ends, so a resync is
 * possible in principle, but it would take a pcapng reader of our own). The
 * offset of every record is that of its header in the file (with libpcap,
 * the stream position before it is read: ftell of the FILE libpcap reads
 * through). */
#include "report.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcapread.h"

enum {
	/* the window over a classic pcap file: four times the reader's
	 * largest request, so refills are rare and move little */
	CAP_WINDOW = 1 << 20,
	/* LINKTYPE_RAW as stored in files; libpcap maps it to DLT_RAW. The
	 * other link types pktdecode knows have LINKTYPE == DLT. */
	CAP_LINKTYPE_RAW = 101,
};

_Static_assert((int)CAP_WINDOW > (int)PCAPREAD_MAX_NEED,
	       "the window holds the reader's largest request");

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
	o->key = -1;
	if (d->kind == PKT_WG) {
		o->wg = d->wg;
		if (d->wg.type == PKT_WG_INITIATION || d->wg.type == PKT_WG_RESPONSE)
			for (size_t k = 0; k < rp->nkeys; k++)
				if (wg_cookie_validate(&rp->keys[k].mac1, d->payload, d->payload_len, NULL,
						       false, 0) == WG_COOKIE_VALID_MAC_NO_COOKIE) {
					o->key = (int8_t)k;
					break;
				}
	} else {
		struct pkt_stun *s = RP_PUSH(rp->stuns, rp->nstuns, rp->stuns_cap);

		if (!s)
			return -ENOMEM;
		*s = d->stun;
		o->stun = (int32_t)(rp->nstuns - 1);
	}
	return 0;
}

/* one record, from either reader */
static int add_record(struct rp *rp, uint32_t capi, uint64_t ts, uint64_t offset, const uint8_t *data,
		      uint32_t caplen)
{
	struct rp_capture *c = &rp->caps[capi];
	struct pkt_decoded d;

	c->records++;
	if (pkt_decode(c->linktype, data, caplen, &d) < 0) {
		if (c->undecodable < RP_BAD_OFFSETS)
			c->bad_offsets[c->undecodable] = offset;
		c->undecodable++;
		return 0;
	}
	if (d.kind != PKT_STUN && d.kind != PKT_WG)
		return 0;
	if (d.kind == PKT_STUN)
		c->stun++;
	else
		c->wg++;
	return add_obs(rp, capi, ts, offset, &d);
}

static void note_resync(struct rp_capture *c, const struct pcapread_rec *rec)
{
	if (c->resyncs < RP_RESYNCS_KEPT) {
		struct rp_resync *e = &c->resync[c->resyncs];

		e->corrupt_at = rec->corrupt_at;
		e->resumed_at = rec->offset;
		snprintf(e->why, sizeof(e->why), "%s", rec->why);
	}
	c->resyncs++;
	c->skipped += rec->offset - rec->corrupt_at;
}

/* drops the window's bytes before pos, appends what the file has next */
static int fill(FILE *f, uint8_t *buf, size_t *len, uint64_t *base, uint64_t pos, bool *eof)
{
	size_t drop = (size_t)(pos - *base), n;

	memmove(buf, buf + drop, *len - drop);
	*len -= drop;
	*base = pos;
	n = fread(buf + *len, 1, CAP_WINDOW - *len, f);
	*len += n;
	if (n == 0) {
		if (ferror(f))
			return errno ? -errno : -EIO;
		*eof = true;
	}
	return 0;
}

/* 0 (damage is noted in the capture), -ENOMEM, or -EPROTONOSUPPORT: not
 * classic pcap, c->format says what it is */
static int read_classic(struct rp *rp, uint32_t capi, FILE *f)
{
	struct rp_capture *c = &rp->caps[capi];
	uint8_t *buf = malloc(CAP_WINDOW);
	uint64_t base = 0;
	size_t len = 0;
	bool eof = false;
	struct pcapread r;
	int rc;

	if (!buf)
		return -ENOMEM;
	pcapread_init(&r);
	for (;;) {
		struct pcapread_rec rec;

		rc = pcapread_next(&r, buf, len, base, eof, &rec);
		if (c->linktype < 0 && r.state != PCAPREAD_FILE_HEADER && r.state != PCAPREAD_FOREIGN) {
			c->format = "pcap";
			c->resynchronises = true;
			c->linktype = r.linktype == CAP_LINKTYPE_RAW ? DLT_RAW : (int)r.linktype;
		}
		if (rc == 1) {
			if (rec.resynced)
				note_resync(c, &rec);
			rc = add_record(rp, capi, rec.ts_ns, rec.offset, rec.data, rec.caplen);
			if (rc < 0)
				break;
			continue;
		}
		if (rc == -EAGAIN) {
			rc = fill(f, buf, &len, &base, r.pos, &eof);
			if (rc == 0)
				continue;
			cap_fail(c, base + len, strerror(-rc));
			rc = 0;
			break;
		}
		if (rc == -EPROTONOSUPPORT)
			c->format = len >= 4 && !memcmp(buf, "\x0a\x0d\x0d\x0a", 4) ? "pcapng" : "other";
		else if (rc < 0)
			cap_fail(c, r.err_offset, r.err);
		if (rc != -EPROTONOSUPPORT)
			rc = 0;
		break;
	}
	free(buf);
	return rc;
}

static void cap_fail_libpcap(struct rp_capture *c, uint64_t offset, const char *why)
{
	char msg[sizeof(c->err)];

	snprintf(msg, sizeof(msg),
		 "%s (%s: read by libpcap, which cannot resynchronise; the rest of the file is not read)",
		 why, c->format);
	cap_fail(c, offset, msg);
}

static int read_libpcap_records(struct rp *rp, uint32_t capi, pcap_t *p)
{
	struct rp_capture *c = &rp->caps[capi];
	FILE *f = pcap_file(p);
	uint64_t last_ts = 0;

	for (;;) {
		struct pcap_pkthdr *h;
		const u_char *data;
		long pos = f ? ftell(f) : -1;
		uint64_t offset = pos < 0 ? 0 : (uint64_t)pos;
		uint64_t ts;
		int rc = pcap_next_ex(p, &h, &data);

		if (rc == PCAP_ERROR_BREAK)
			return 0;
		if (rc != 1) {
			cap_fail_libpcap(c, offset, pcap_geterr(p));
			return 0;
		}
		ts = (uint64_t)h->ts.tv_sec * 1000000000ull + (uint64_t)h->ts.tv_usec;
		if (h->caplen > h->len ||
		    (last_ts && (ts > last_ts + PCAPREAD_TIME_JUMP_NS || ts + PCAPREAD_TIME_JUMP_NS < last_ts))) {
			char why[128];

			snprintf(why, sizeof(why),
				 "corrupt record header (captured %u of %u bytes, time %+.3f s from the previous)",
				 h->caplen, h->len, ((double)ts - (double)last_ts) / 1e9);
			cap_fail_libpcap(c, offset, why);
			return 0;
		}
		last_ts = ts;
		if (add_record(rp, capi, ts, offset, data, h->caplen) < 0)
			return -ENOMEM;
	}
}

static int read_libpcap(struct rp *rp, uint32_t capi)
{
	struct rp_capture *c = &rp->caps[capi];
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p;
	int rc;

	p = pcap_open_offline_with_tstamp_precision(c->path, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!p) {
		cap_fail(c, 0, errbuf);
		return 0;
	}
	c->linktype = pcap_datalink(p);
	rc = read_libpcap_records(rp, capi, p);
	pcap_close(p);
	return rc;
}

int rp_read_pcap(struct rp *rp, const char *path)
{
	struct rp_capture *c;
	const char *slash;
	uint32_t capi;
	FILE *f;
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
	c->format = "other";

	f = fopen(path, "rb");
	if (!f) {
		cap_fail(c, 0, strerror(errno));
		return 0;
	}
	rc = read_classic(rp, capi, f);
	fclose(f);
	if (rc != -EPROTONOSUPPORT)
		return rc;
	return read_libpcap(rp, capi);
}
