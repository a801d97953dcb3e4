/* pcapread: classic pcap records, and resynchronisation after a corrupt
 * record header. Layout (draft-ietf-opsawg-pcap): a 24-byte file header
 * (magic, version 2.4, reserved, snaplen, link type), then records of a
 * 16-byte header (seconds, sub-second, captured length, wire length) and
 * the captured bytes. Nothing ties a record to the next but its captured
 * length, so one bad length loses the framing: the scan looks for an offset
 * where a plausible header is followed by a second plausible header exactly
 * where the first one's bytes end (or by the end of the file). A single
 * plausible header inside a payload is common (a captured pcap, zeros, a
 * counter); two chained by their lengths and times are not. */
#include "pcapread.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
	PCAP_MAGIC_US = 0xa1b2c3d4,
	PCAP_MAGIC_NS = 0xa1b23c4d,
	PCAP_VERSION_MAJOR = 2,
	PCAP_VERSION_MINOR = 4,
	/* the upper bits of the link type field carry the FCS length
	 * (libpcap's LT_LINKTYPE) */
	PCAP_LINKTYPE_MASK = 0x03ffffff,
};

struct window {
	const uint8_t *buf;
	size_t len;
	uint64_t base;			/* file offset of buf[0] */
	bool eof;
};

struct rec_hdr {
	uint32_t sec, sub, caplen, len;
};

static uint64_t win_end(const struct window *w)
{
	return w->base + w->len;
}

static const uint8_t *win_at(const struct window *w, uint64_t off)
{
	return w->buf + (size_t)(off - w->base);
}

static uint32_t get32(const struct pcapread *r, const uint8_t *p)
{
	if (r->big_endian)
		return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint16_t get16(const struct pcapread *r, const uint8_t *p)
{
	return r->big_endian ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static void parse_hdr(const struct pcapread *r, const uint8_t *p, struct rec_hdr *h)
{
	h->sec = get32(r, p);
	h->sub = get32(r, p + 4);
	h->caplen = get32(r, p + 8);
	h->len = get32(r, p + 12);
}

static uint64_t hdr_ts(const struct pcapread *r, const struct rec_hdr *h)
{
	return (uint64_t)h->sec * 1000000000ull + (r->nano ? h->sub : h->sub * 1000ull);
}

/* Whether a record header can be what it claims; why (if not NULL) says
 * what is wrong. ref: the time of the previous good record, NULL for none.
 * A resync candidate (strict) also needs the wire length of a real frame:
 * after damage, zeros and payload bytes must not pass. */
static bool hdr_plausible(const struct pcapread *r, const struct rec_hdr *h, const uint64_t *ref,
			  bool strict, char *why, size_t whylen)
{
	uint32_t sub_max = r->nano ? 1000000000u : 1000000u;
	uint64_t ts = hdr_ts(r, h);

	if (h->caplen > r->max_caplen) {
		if (why)
			snprintf(why, whylen, "captured length %u above the snaplen %u", h->caplen,
				 r->max_caplen);
		return false;
	}
	if (h->caplen > h->len) {
		if (why)
			snprintf(why, whylen, "captured length %u above the wire length %u", h->caplen,
				 h->len);
		return false;
	}
	if (strict && (h->len == 0 || h->len > PCAPREAD_MAX_LEN))
		return false;
	if (h->sub >= sub_max) {
		if (why)
			snprintf(why, whylen, "sub-second field %u not below %u", h->sub, sub_max);
		return false;
	}
	if (ref && (ts > *ref + PCAPREAD_TIME_JUMP_NS || ts + PCAPREAD_TIME_JUMP_NS < *ref)) {
		if (why)
			snprintf(why, whylen, "time %+.3f s from the previous record",
				 ((double)ts - (double)*ref) / 1e9);
		return false;
	}
	return true;
}

static int want(struct pcapread *r, uint64_t upto)
{
	r->need = (size_t)(upto - r->pos);
	return -EAGAIN;
}

__attribute__((format(printf, 3, 4)))
static int fail(struct pcapread *r, uint64_t offset, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	r->err_offset = offset;
	r->state = PCAPREAD_FAILED;
	return -EBADMSG;
}

static void emit(struct pcapread *r, const struct window *w, const struct rec_hdr *h,
		 struct pcapread_rec *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->offset = r->pos;
	rec->ts_ns = hdr_ts(r, h);
	rec->caplen = h->caplen;
	rec->len = h->len;
	rec->data = win_at(w, r->pos + PCAPREAD_REC_HDR_LEN);
	r->pos += PCAPREAD_REC_HDR_LEN + h->caplen;
	r->last_ts_ns = rec->ts_ns;
	r->have_ts = true;
	r->records++;
}

/* FILE_HEADER -> RECORDS, FOREIGN or FAILED */
static int read_file_header(struct pcapread *r, const struct window *w)
{
	uint64_t have = win_end(w) - r->pos;
	const uint8_t *p = win_at(w, r->pos);
	static const struct {
		uint8_t b[4];
		bool big_endian, nano;
	} magics[] = {
		{ { 0xd4, 0xc3, 0xb2, 0xa1 }, false, false },
		{ { 0x4d, 0x3c, 0xb2, 0xa1 }, false, true },
		{ { 0xa1, 0xb2, 0xc3, 0xd4 }, true, false },
		{ { 0xa1, 0xb2, 0x3c, 0x4d }, true, true },
	};
	size_t i;

	if (have < 4) {
		if (!w->eof)
			return want(r, r->pos + 4);
		r->state = PCAPREAD_FOREIGN;
		return -EPROTONOSUPPORT;
	}
	for (i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (!memcmp(p, magics[i].b, 4))
			break;
	if (i == sizeof(magics) / sizeof(magics[0])) {
		r->state = PCAPREAD_FOREIGN;
		return -EPROTONOSUPPORT;
	}
	if (have < PCAPREAD_FILE_HDR_LEN) {
		if (!w->eof)
			return want(r, r->pos + PCAPREAD_FILE_HDR_LEN);
		return fail(r, r->pos, "truncated file header: %u of %u bytes", (unsigned)have,
			    PCAPREAD_FILE_HDR_LEN);
	}
	r->big_endian = magics[i].big_endian;
	r->nano = magics[i].nano;
	/* 2.0-2.3 stored the two lengths in other orders; libpcap knows how */
	if (get16(r, p + 4) != PCAP_VERSION_MAJOR || get16(r, p + 6) != PCAP_VERSION_MINOR) {
		r->state = PCAPREAD_FOREIGN;
		return -EPROTONOSUPPORT;
	}
	r->snaplen = get32(r, p + 16);
	r->max_caplen = r->snaplen && r->snaplen <= PCAPREAD_MAX_SNAPLEN ? r->snaplen
									: PCAPREAD_MAX_SNAPLEN;
	r->linktype = get32(r, p + 20) & PCAP_LINKTYPE_MASK;
	r->pos += PCAPREAD_FILE_HDR_LEN;
	r->state = PCAPREAD_RECORDS;
	return 0;
}

/* SCANNING -> RECORDS: the record at pos is the first after the damage */
static int resync(struct pcapread *r, const struct window *w, const struct rec_hdr *h,
		  struct pcapread_rec *rec)
{
	uint64_t corrupt_at = r->corrupt_at;

	r->resyncs++;
	r->skipped += r->pos - corrupt_at;
	emit(r, w, h, rec);
	rec->resynced = true;
	rec->corrupt_at = corrupt_at;
	rec->why = r->why;
	r->state = PCAPREAD_RECORDS;
	return 1;
}

/* SCANNING: one candidate offset after another, from pos on. A candidate
 * cut short by the end of the file cannot be confirmed and is passed over. */
static int scan(struct pcapread *r, const struct window *w, struct pcapread_rec *rec)
{
	uint64_t end = win_end(w);

	for (;; r->pos++) {
		struct rec_hdr h1, h2;
		uint64_t next, ts1;

		if (end - r->pos < PCAPREAD_REC_HDR_LEN) {
			if (!w->eof)
				return want(r, r->pos + PCAPREAD_REC_HDR_LEN);
			return fail(r, r->corrupt_at,
				    "corrupt record header (%s), and no plausible record in the %llu bytes after it",
				    r->why, (unsigned long long)(end - r->corrupt_at));
		}
		parse_hdr(r, win_at(w, r->pos), &h1);
		if (!hdr_plausible(r, &h1, r->have_ts ? &r->last_ts_ns : NULL, true, NULL, 0))
			continue;
		next = r->pos + PCAPREAD_REC_HDR_LEN + h1.caplen;
		if (next == end && w->eof)
			return resync(r, w, &h1, rec);
		if (next + PCAPREAD_REC_HDR_LEN > end) {
			if (!w->eof)
				return want(r, next + PCAPREAD_REC_HDR_LEN);
			continue;
		}
		parse_hdr(r, win_at(w, next), &h2);
		ts1 = hdr_ts(r, &h1);
		if (hdr_plausible(r, &h2, &ts1, true, NULL, 0))
			return resync(r, w, &h1, rec);
	}
}

/* RECORDS: the record at pos; RECORDS -> SCANNING on a corrupt header,
 * -> END at the end of the file, -> FAILED when it is cut short */
static int read_record(struct pcapread *r, const struct window *w, struct pcapread_rec *rec)
{
	uint64_t have = win_end(w) - r->pos;
	struct rec_hdr h;

	if (have == 0 && w->eof) {
		r->state = PCAPREAD_END;
		return 0;
	}
	if (have < PCAPREAD_REC_HDR_LEN) {
		if (!w->eof)
			return want(r, r->pos + PCAPREAD_REC_HDR_LEN);
		return fail(r, r->pos, "truncated record header: %u of %u bytes before the end of the file",
			    (unsigned)have, PCAPREAD_REC_HDR_LEN);
	}
	parse_hdr(r, win_at(w, r->pos), &h);
	if (!hdr_plausible(r, &h, r->have_ts ? &r->last_ts_ns : NULL, false, r->why, sizeof(r->why))) {
		r->corrupt_at = r->pos;
		r->pos++;
		r->state = PCAPREAD_SCANNING;
		return scan(r, w, rec);
	}
	if (have < PCAPREAD_REC_HDR_LEN + (uint64_t)h.caplen) {
		if (!w->eof)
			return want(r, r->pos + PCAPREAD_REC_HDR_LEN + h.caplen);
		return fail(r, r->pos, "truncated record: %llu of %u captured bytes before the end of the file",
			    (unsigned long long)(have - PCAPREAD_REC_HDR_LEN), h.caplen);
	}
	emit(r, w, &h, rec);
	return 1;
}

void pcapread_init(struct pcapread *r)
{
	memset(r, 0, sizeof(*r));
	r->state = PCAPREAD_FILE_HEADER;
}

int pcapread_next(struct pcapread *r, const uint8_t *buf, size_t len, uint64_t base, bool eof,
		  struct pcapread_rec *rec)
{
	const struct window w = { buf, len, base, eof };
	int rc;

	if (r->pos < base || r->pos - base > len)
		return -EINVAL;
	r->need = 0;
	switch (r->state) {
	case PCAPREAD_FILE_HEADER:
		rc = read_file_header(r, &w);
		if (rc < 0)
			return rc;
		return read_record(r, &w, rec);
	case PCAPREAD_RECORDS:
		return read_record(r, &w, rec);
	case PCAPREAD_SCANNING:
		return scan(r, &w, rec);
	case PCAPREAD_END:
		return 0;
	case PCAPREAD_FAILED:
		return -EBADMSG;
	case PCAPREAD_FOREIGN:
		return -EPROTONOSUPPORT;
	}
	return -EINVAL;
}
