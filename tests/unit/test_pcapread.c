/* pcapread, traversal-report's classic pcap reader: files built here byte by
 * byte (both byte orders, micro- and nanosecond magic) read clean, and
 * damaged ones resynchronise at exactly the record after the damage: a
 * corrupt header field (table), garbage between records (skipped == garbage
 * length), damage in the first record (no reference time), two damages, a
 * candidate that ends at the end of the file. Refused: damage in the last
 * record (no false resync), a fake header inside a payload whose successor is
 * not plausible. The limits, shown: a fake header that chains onto the real
 * next record is taken, and a good record between two damaged ones is lost.
 * Truncated files fail with the offset; other formats are left to libpcap.
 * Every file is read with windows of several sizes, each an exact-size copy
 * so ASan sees a read outside it, and every size must give the same records. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pcapread.h"

enum { SEC0 = 1700000000, NREC = 6, SNAPLEN = 65535 };

struct cap {
	uint8_t b[16384];
	size_t len;
	bool big, nano;
	size_t off[16];			/* record offsets as built */
	size_t n;
};

static void cap_put(struct cap *c, const void *p, size_t n)
{
	cr_assert_leq(c->len + n, sizeof(c->b));
	memcpy(c->b + c->len, p, n);
	c->len += n;
}

/* v in the file's byte order at c->b[at] */
static void set32(struct cap *c, size_t at, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		c->b[at + (size_t)i] = (uint8_t)(v >> (c->big ? 24 - 8 * i : 8 * i));
}

static void cap_u32(struct cap *c, uint32_t v)
{
	c->len += 4;
	cr_assert_leq(c->len, sizeof(c->b));
	set32(c, c->len - 4, v);
}

static void cap_init(struct cap *c, bool big, bool nano, uint32_t snaplen)
{
	memset(c, 0, sizeof(*c));
	c->big = big;
	c->nano = nano;
	cap_u32(c, nano ? 0xa1b23c4d : 0xa1b2c3d4);
	/* version 2.4: two 16-bit fields */
	cap_put(c, big ? (const uint8_t[]){ 0, 2, 0, 4 } : (const uint8_t[]){ 2, 0, 4, 0 }, 4);
	cap_u32(c, 0);
	cap_u32(c, 0);
	cap_u32(c, snaplen);
	cap_u32(c, 1);			/* LINKTYPE_ETHERNET */
}

static uint32_t sub_of(const struct cap *c, size_t i)
{
	return (uint32_t)(i * 1000 + 7) * (c->nano ? 1000u : 1u);
}

static uint64_t ts_of(const struct cap *c, size_t i)
{
	return (uint64_t)(SEC0 + i) * 1000000000ull + (c->nano ? sub_of(c, i) : sub_of(c, i) * 1000ull);
}

/* Payload bytes all >= 0x80: read as a header's seconds (either byte order)
 * they fall after 2038, more than a year from SEC0, and as a captured length
 * above any snaplen, so only real headers are plausible. */
static void cap_payload(struct cap *c, size_t i, uint32_t caplen)
{
	for (uint32_t j = 0; j < caplen; j++)
		cap_put(c, &(uint8_t){ (uint8_t)(0x80 | ((i * 31 + j) & 0x7f)) }, 1);
}

static void cap_rec(struct cap *c, uint32_t caplen, uint32_t len)
{
	size_t i = c->n;

	c->off[c->n++] = c->len;
	cap_u32(c, (uint32_t)(SEC0 + i));
	cap_u32(c, sub_of(c, i));
	cap_u32(c, caplen);
	cap_u32(c, len);
	cap_payload(c, i, caplen);
}

static uint32_t caplen_of(size_t i)
{
	return (uint32_t)(60 + 13 * i);
}

/* n records of growing sizes, every other one snapped */
static void cap_std(struct cap *c, bool big, bool nano, size_t n)
{
	cap_init(c, big, nano, SNAPLEN);
	for (size_t i = 0; i < n; i++)
		cap_rec(c, caplen_of(i), caplen_of(i) + (i % 2 ? 20 : 0));
}

static void cap_insert(struct cap *c, size_t at, const uint8_t *p, size_t n)
{
	cr_assert_leq(c->len + n, sizeof(c->b));
	memmove(c->b + at + n, c->b + at, c->len - at);
	memcpy(c->b + at, p, n);
	c->len += n;
	for (size_t i = 0; i < c->n; i++)
		if (c->off[i] >= at)
			c->off[i] += n;
}

struct got_rec {
	uint64_t offset, ts, corrupt_at;
	uint32_t caplen, len;
	bool resynced;
};

struct got {
	struct got_rec rec[32];
	size_t n;
	int rc;
	struct pcapread r;
};

/* reads the file through windows growing by chunk bytes, dropping what the
 * reader no longer needs, as traversal-report does with its FILE */
static void read_chunked(const struct cap *c, size_t chunk, struct got *g)
{
	uint64_t base = 0;
	size_t len = chunk < c->len ? chunk : c->len;

	memset(g, 0, sizeof(*g));
	pcapread_init(&g->r);
	for (;;) {
		struct pcapread_rec rec;
		bool eof = base + len == c->len;
		uint8_t *win = malloc(len ? len : 1);
		int rc;

		cr_assert_not_null(win);
		memcpy(win, c->b + base, len);
		rc = pcapread_next(&g->r, win, len, base, eof, &rec);
		if (rc == 1) {
			struct got_rec *o = &g->rec[g->n++];

			cr_assert_leq(g->n, sizeof(g->rec) / sizeof(g->rec[0]));
			cr_assert(rec.data == win + (rec.offset + PCAPREAD_REC_HDR_LEN - base));
			cr_assert_leq(rec.offset + PCAPREAD_REC_HDR_LEN + rec.caplen, base + len);
			*o = (struct got_rec){ rec.offset, rec.ts_ns, rec.corrupt_at, rec.caplen, rec.len,
					       rec.resynced };
			if (rec.resynced)
				cr_assert_not_null(rec.why);
			free(win);
			continue;
		}
		free(win);
		if (rc == -EAGAIN) {
			cr_assert(!eof, "EAGAIN with the whole file in the window");
			cr_assert_leq(g->r.need, PCAPREAD_MAX_NEED);
			cr_assert_gt(g->r.need, base + len - g->r.pos, "asks for no more than it has");
			len -= (size_t)(g->r.pos - base);
			base = g->r.pos;
			len += chunk;
			if (base + len > c->len)
				len = (size_t)(c->len - base);
			continue;
		}
		g->rc = rc;
		return;
	}
}

/* reads the file whole and in chunks of 1, 7 and 100 bytes; all agree */
static void read_all(const struct cap *c, struct got *g)
{
	static const size_t chunks[] = { 1, 7, 100 };
	struct got *o = malloc(sizeof(*o));

	cr_assert_not_null(o);
	read_chunked(c, c->len, g);
	for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		read_chunked(c, chunks[k], o);
		cr_assert_eq(o->rc, g->rc, "chunk %zu", chunks[k]);
		cr_assert_eq(o->n, g->n, "chunk %zu", chunks[k]);
		cr_assert_arr_eq(o->rec, g->rec, g->n * sizeof(g->rec[0]), "chunk %zu", chunks[k]);
		cr_assert_eq(o->r.resyncs, g->r.resyncs);
		cr_assert_eq(o->r.skipped, g->r.skipped);
		cr_assert_eq(o->r.err_offset, g->r.err_offset);
		cr_assert_str_eq(o->r.err, g->r.err);
	}
	free(o);
}

/* the record got[k] is built record i, untouched */
static void expect_rec(const struct cap *c, const struct got *g, size_t k, size_t i)
{
	cr_assert_lt(k, g->n);
	cr_assert_eq(g->rec[k].offset, c->off[i], "record %zu: offset %llu, want %zu", k,
		     (unsigned long long)g->rec[k].offset, c->off[i]);
	cr_assert_eq(g->rec[k].ts, ts_of(c, i), "record %zu", k);
	cr_assert_eq(g->rec[k].caplen, caplen_of(i));
	cr_assert_eq(g->rec[k].len, caplen_of(i) + (i % 2 ? 20 : 0));
}

/* got holds the built records except those in skip, in order, then rc */
static void expect_recs_except(const struct cap *c, const struct got *g, uint32_t skip_mask)
{
	size_t k = 0;

	for (size_t i = 0; i < c->n; i++)
		if (!(skip_mask & (1u << i)))
			expect_rec(c, g, k++, i);
	cr_assert_eq(g->n, k, "%zu records, want %zu", g->n, k);
}

Test(pcapread, clean_files_in_every_byte_order_and_precision)
{
	static const struct {
		bool big, nano;
	} v[] = { { false, false }, { false, true }, { true, false }, { true, true } };
	struct cap c;
	struct got g;

	for (size_t t = 0; t < sizeof(v) / sizeof(v[0]); t++) {
		cap_std(&c, v[t].big, v[t].nano, NREC);
		read_all(&c, &g);
		cr_assert_eq(g.rc, 0, "variant %zu: rc %d (%s)", t, g.rc, g.r.err);
		expect_recs_except(&c, &g, 0);
		cr_assert_eq(g.r.big_endian, v[t].big);
		cr_assert_eq(g.r.nano, v[t].nano);
		cr_assert_eq(g.r.snaplen, SNAPLEN);
		cr_assert_eq(g.r.linktype, 1);
		cr_assert_eq(g.r.resyncs, 0);
		cr_assert_eq(g.r.skipped, 0);
		cr_assert_eq(g.r.records, NREC);
		for (size_t k = 0; k < g.n; k++)
			cr_assert_not(g.rec[k].resynced);
	}
	/* no records at all */
	cap_init(&c, false, false, 0);
	read_all(&c, &g);
	cr_assert_eq(g.rc, 0);
	cr_assert_eq(g.n, 0);
	cr_assert_eq(g.r.max_caplen, PCAPREAD_MAX_SNAPLEN, "snaplen 0 means the maximum");
}

/* One header field of record 2 overwritten: the records before and after it
 * are read, the damaged one is skipped whole. */
Test(pcapread, corrupt_header_field_resyncs_at_the_next_record)
{
	static const struct {
		size_t field;		/* byte offset in the record header */
		uint32_t value;		/* 0: keep, see below */
		int64_t sec_delta;
		const char *why;
	} t[] = {
		{ 8, 0x7fffffff, 0, "captured length 2147483647 above the snaplen 65535" },
		{ 8, 0xffffffff, 0, "captured length 4294967295 above the snaplen 65535" },
		{ 8, 86 + 1, 0, "captured length 87 above the wire length 86" },
		{ 4, 1000000, 0, "sub-second field 1000000 not below 1000000" },
		{ 0, 0, 2 * 365 * 86400, "time +63072001.001 s from the previous record" },
		{ 0, 0, -2 * 365 * 86400, "time -63071998.999 s from the previous record" },
	};

	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		for (int big = 0; big < 2; big++) {
			struct cap c;
			struct got g;

			cap_std(&c, big, false, NREC);
			if (t[k].sec_delta)
				set32(&c, c.off[2], (uint32_t)(SEC0 + 2 + t[k].sec_delta));
			else
				set32(&c, c.off[2] + t[k].field, t[k].value);
			read_all(&c, &g);
			cr_assert_eq(g.rc, 0, "case %zu: rc %d (%s)", k, g.rc, g.r.err);
			expect_recs_except(&c, &g, 1u << 2);
			cr_assert(g.rec[2].resynced, "case %zu", k);
			cr_assert_not(g.rec[1].resynced || g.rec[3].resynced);
			cr_assert_eq(g.rec[2].corrupt_at, c.off[2]);
			cr_assert_eq(g.r.resyncs, 1);
			cr_assert_eq(g.r.skipped, c.off[3] - c.off[2], "case %zu: skipped %llu", k,
				     (unsigned long long)g.r.skipped);
			cr_assert_str_eq(g.r.why, t[k].why, "case %zu", k);
		}
	}
}

/* A captured length 4 too short but still plausible: the record is taken
 * as it claims, the misaligned header after it is refused, and reading
 * resumes 4 bytes later at the real record 3. */
Test(pcapread, plausible_but_short_length_loses_four_bytes)
{
	struct cap c;
	struct got g;

	cap_std(&c, false, true, NREC);
	set32(&c, c.off[2] + 8, caplen_of(2) - 4);
	read_all(&c, &g);
	cr_assert_eq(g.rc, 0);
	cr_assert_eq(g.n, NREC);
	cr_assert_eq(g.rec[2].offset, c.off[2]);
	cr_assert_eq(g.rec[2].caplen, caplen_of(2) - 4);
	cr_assert(g.rec[3].resynced);
	cr_assert_eq(g.rec[3].corrupt_at, c.off[3] - 4);
	cr_assert_eq(g.rec[3].offset, c.off[3]);
	cr_assert_eq(g.r.skipped, 4);
	for (size_t i = 3; i < NREC; i++)
		expect_rec(&c, &g, i, i);
}

Test(pcapread, garbage_between_records_is_skipped_exactly)
{
	static const size_t lens[] = { 1, 3, 15, 16, 17, 100, 1000 };
	uint8_t garbage[1000];
	uint32_t x = 12345;

	/* no 4 bytes of it are a time near SEC0 in either byte order */
	for (size_t i = 0; i < sizeof(garbage); i++) {
		x = x * 1103515245u + 12345u;
		garbage[i] = (uint8_t)(0x80 | (x >> 16));
	}
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		for (int big = 0; big < 2; big++) {
			struct cap c;
			struct got g;
			size_t at;

			cap_std(&c, big, big, NREC);
			at = c.off[3];
			cap_insert(&c, at, garbage, lens[k]);
			read_all(&c, &g);
			cr_assert_eq(g.rc, 0, "%zu bytes: rc %d (%s)", lens[k], g.rc, g.r.err);
			expect_recs_except(&c, &g, 0);
			cr_assert(g.rec[3].resynced);
			cr_assert_eq(g.rec[3].corrupt_at, at);
			cr_assert_eq(g.r.resyncs, 1);
			cr_assert_eq(g.r.skipped, lens[k], "%zu bytes of garbage, %llu skipped", lens[k],
				     (unsigned long long)g.r.skipped);
		}
	}
}

/* Damage in the first record: no earlier time to compare with, so only the
 * two-record confirmation finds record 1. */
Test(pcapread, corrupt_first_record_resyncs_without_a_reference_time)
{
	struct cap c;
	struct got g;

	cap_std(&c, true, false, NREC);
	set32(&c, c.off[0] + 8, 0x7fffffff);
	read_all(&c, &g);
	cr_assert_eq(g.rc, 0);
	expect_recs_except(&c, &g, 1u << 0);
	cr_assert(g.rec[0].resynced);
	cr_assert_eq(g.r.skipped, c.off[1] - c.off[0]);
}

Test(pcapread, two_damages_two_resyncs)
{
	struct cap c;
	struct got g;

	cap_std(&c, false, false, NREC);
	set32(&c, c.off[1] + 8, 0x7fffffff);
	set32(&c, c.off[4] + 12, 1);	/* wire length below the captured one */
	read_all(&c, &g);
	cr_assert_eq(g.rc, 0);
	expect_recs_except(&c, &g, 1u << 1 | 1u << 4);
	cr_assert(g.rec[1].resynced && g.rec[3].resynced);
	cr_assert_eq(g.r.resyncs, 2);
	cr_assert_eq(g.r.skipped, (c.off[2] - c.off[1]) + (c.off[5] - c.off[4]));
}

/* The limit of the confirmation: a good record between two damaged ones has
 * no plausible successor, so it is skipped with them, in one resync. */
Test(pcapread, good_record_between_two_damages_is_lost)
{
	struct cap c;
	struct got g;

	cap_std(&c, false, false, NREC);
	set32(&c, c.off[1] + 8, 0x7fffffff);
	set32(&c, c.off[3] + 12, 1);
	read_all(&c, &g);
	cr_assert_eq(g.rc, 0);
	expect_recs_except(&c, &g, 1u << 1 | 1u << 2 | 1u << 3);
	cr_assert_eq(g.r.resyncs, 1);
	cr_assert_eq(g.r.skipped, c.off[4] - c.off[1]);
}

/* The record after the damage is the last one: it has no successor to
 * confirm it, but it ends exactly at the end of the file. */
Test(pcapread, resync_onto_the_last_record)
{
	struct cap c;
	struct got g;

	cap_std(&c, false, false, NREC);
	set32(&c, c.off[NREC - 2] + 8, 0x7fffffff);
	read_all(&c, &g);
	cr_assert_eq(g.rc, 0);
	expect_recs_except(&c, &g, 1u << (NREC - 2));
	cr_assert(g.rec[NREC - 2].resynced);
}

/* Damage in the last record: nothing after it, and its payload must not
 * produce a record. */
Test(pcapread, corrupt_last_record_fails_without_false_resync)
{
	static const size_t fields[] = { 8, 0 };

	for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
		struct cap c;
		struct got g;

		cap_std(&c, false, false, NREC);
		set32(&c, c.off[NREC - 1] + fields[k], fields[k] == 8 ? 0x7fffffff : 0);
		read_all(&c, &g);
		cr_assert_eq(g.rc, -EBADMSG);
		expect_recs_except(&c, &g, 1u << (NREC - 1));
		cr_assert_eq(g.r.resyncs, 0);
		cr_assert_eq(g.r.err_offset, c.off[NREC - 1]);
		cr_assert(strstr(g.r.err, "no plausible record in the"), "%s", g.r.err);
		cr_assert_eq(g.r.state, PCAPREAD_FAILED);
	}
}

/* A header planted in the damaged record's payload: plausible (time, lengths)
 * but the 16 bytes where its record would end are payload, not a header. The
 * confirmation refuses it; without it, it would be taken, since it comes
 * before record 3. */
Test(pcapread, fake_header_in_payload_is_refused)
{
	struct cap c;
	struct got g;
	size_t fake;

	cap_std(&c, false, false, NREC);
	set32(&c, c.off[2] + 8, 0x7fffffff);
	fake = c.off[2] + 16 + 10;
	set32(&c, fake, SEC0 + 2);
	set32(&c, fake + 4, 0);
	set32(&c, fake + 8, 8);
	set32(&c, fake + 12, 8);
	read_all(&c, &g);
	cr_assert_eq(g.rc, 0);
	expect_recs_except(&c, &g, 1u << 2);
	cr_assert(g.rec[2].resynced);
	cr_assert_eq(g.r.skipped, c.off[3] - c.off[2]);
}

/* The limit: a planted header whose length ends exactly at the real record 3
 * is confirmed by it and cannot be told from a real record. Reading resumes
 * at the fake (a record made of record 2's last 30 payload bytes), then
 * record 3 follows normally; what is lost is record 2 up to the fake. */
Test(pcapread, fake_header_chained_to_the_next_record_is_taken)
{
	struct cap c;
	struct got g;
	size_t fake;

	cap_std(&c, false, false, NREC);
	set32(&c, c.off[2] + 8, 0x7fffffff);
	fake = c.off[3] - 16 - 30;
	set32(&c, fake, SEC0 + 2);
	set32(&c, fake + 4, 5);
	set32(&c, fake + 8, 30);
	set32(&c, fake + 12, 30);
	read_all(&c, &g);
	cr_assert_eq(g.rc, 0);
	cr_assert_eq(g.n, NREC);
	expect_rec(&c, &g, 0, 0);
	expect_rec(&c, &g, 1, 1);
	cr_assert(g.rec[2].resynced);
	cr_assert_eq(g.rec[2].offset, fake);
	cr_assert_eq(g.rec[2].caplen, 30);
	cr_assert_eq(g.rec[2].ts, (SEC0 + 2) * 1000000000ull + 5000);
	for (size_t i = 3; i < NREC; i++)
		expect_rec(&c, &g, i, i);
	cr_assert_eq(g.r.skipped, fake - c.off[2]);
}

Test(pcapread, truncated_files_fail_with_the_offset)
{
	static const struct {
		size_t cut;		/* bytes cut off the end */
		const char *err;
	} t[] = {
		{ 10, "truncated record: 115 of 125 captured bytes before the end of the file" },
		{ 125 + 5, "truncated record header: 11 of 16 bytes before the end of the file" },
	};
	struct cap c;
	struct got g;

	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		cap_std(&c, false, false, NREC);
		cr_assert_eq(caplen_of(NREC - 1), 125);
		c.len -= t[k].cut;
		read_all(&c, &g);
		cr_assert_eq(g.rc, -EBADMSG);
		expect_recs_except(&c, &g, 1u << (NREC - 1));
		cr_assert_eq(g.r.err_offset, c.off[NREC - 1]);
		cr_assert_str_eq(g.r.err, t[k].err);
	}
	cap_std(&c, true, false, 1);
	c.len = 10;
	read_all(&c, &g);
	cr_assert_eq(g.rc, -EBADMSG);
	cr_assert_eq(g.r.err_offset, 0);
	cr_assert_str_eq(g.r.err, "truncated file header: 10 of 24 bytes");
}

Test(pcapread, other_formats_are_left_to_libpcap)
{
	static const uint8_t pcapng[] = { 0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a };
	static const uint8_t modified[] = { 0x34, 0xcd, 0xb2, 0xa1, 2, 0, 4, 0 };
	struct cap c;
	struct got g;

	memset(&c, 0, sizeof(c));
	cap_put(&c, pcapng, sizeof(pcapng));
	read_all(&c, &g);
	cr_assert_eq(g.rc, -EPROTONOSUPPORT);
	memset(&c, 0, sizeof(c));
	cap_put(&c, modified, sizeof(modified));
	read_all(&c, &g);
	cr_assert_eq(g.rc, -EPROTONOSUPPORT);
	memset(&c, 0, sizeof(c));
	cap_put(&c, "\xd4\xc3", 2);
	read_all(&c, &g);
	cr_assert_eq(g.rc, -EPROTONOSUPPORT);
	/* version 2.3 stored the lengths in another order */
	cap_std(&c, false, false, 2);
	c.b[6] = 3;
	read_all(&c, &g);
	cr_assert_eq(g.rc, -EPROTONOSUPPORT);
	cr_assert_eq(g.n, 0);
}

Test(pcapread, window_without_the_position_is_refused)
{
	struct cap c;
	struct pcapread r;
	struct pcapread_rec rec;

	cap_std(&c, false, false, 2);
	pcapread_init(&r);
	cr_assert_eq(pcapread_next(&r, c.b + 30, 10, 30, false, &rec), -EINVAL);
	cr_assert_eq(pcapread_next(&r, c.b, c.len, 0, true, &rec), 1);
	cr_assert_eq(pcapread_next(&r, c.b, 10, 0, false, &rec), -EINVAL);
}
