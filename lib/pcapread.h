/* pcapread: a reader of classic pcap files (the format of tcpdump, libpcap's
 * pcap_dump and so meshsim: magic 0xa1b2c3d4 for microsecond or 0xa1b23c4d
 * for nanosecond stamps, either byte order, version 2.4) that, unlike
 * libpcap, resynchronises after a damaged record header: it scans forward
 * byte by byte for the next offset where two plausible record headers follow
 * each other, and reports the bytes it skipped. traversal-report reads
 * captures with it; pcapng and other formats stay with libpcap.
 *
 * Sans-I/O: the caller hands over the file's bytes as a window (buf, len,
 * base = file offset of buf[0]) and says when the window reaches the end of
 * the file; the reader never reads, allocates or keeps a pointer past a
 * call. Records point into the caller's window. */
#ifndef NATMESH_PCAPREAD_H
#define NATMESH_PCAPREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	PCAPREAD_FILE_HDR_LEN = 24,
	PCAPREAD_REC_HDR_LEN = 16,
	/* libpcap's MAXIMUM_SNAPLEN: the largest snaplen tcpdump writes, and
	 * the bound used when the file header's snaplen is 0 or larger */
	PCAPREAD_MAX_SNAPLEN = 262144,
	/* a resync point's wire length bound: a frame on Linux is at most a
	 * 64 KiB GSO/GRO super-packet plus link headers; only BIG TCP (not
	 * used by the lab) goes beyond 256 KiB */
	PCAPREAD_MAX_LEN = 262144,
	/* the most bytes from pcapread.pos a call can ask for: a record of
	 * the largest snaplen and the header after it */
	PCAPREAD_MAX_NEED = 2 * PCAPREAD_REC_HDR_LEN + PCAPREAD_MAX_SNAPLEN,
};

/* A record whose time is this far from the previous good one is garbage
 * read after a corrupt length field, not a packet. */
#define PCAPREAD_TIME_JUMP_NS (365ull * 24 * 3600 * 1000000000ull)

enum pcapread_state {
	PCAPREAD_FILE_HEADER,	/* nothing read yet */
	PCAPREAD_RECORDS,	/* at a record boundary */
	PCAPREAD_SCANNING,	/* after a corrupt header: looking for the next record */
	PCAPREAD_END,		/* the file ended at a record boundary */
	PCAPREAD_FAILED,	/* truncated, or no record after a corrupt header */
	PCAPREAD_FOREIGN,	/* not classic pcap 2.4 */
};

struct pcapread {
	enum pcapread_state state;
	/* from the file header */
	bool big_endian;		/* the file's byte order */
	bool nano;			/* sub-second field in ns, not us */
	uint32_t snaplen;		/* as the header says */
	uint32_t max_caplen;		/* snaplen, or PCAPREAD_MAX_SNAPLEN if 0 or above */
	uint32_t linktype;		/* LINKTYPE_* without the FCS bits */
	/* position: bytes before pos are no longer needed; after -EAGAIN the
	 * call wants need bytes from pos in its window (or the end of the file) */
	uint64_t pos;
	size_t need;
	uint64_t last_ts_ns;		/* of the last good record */
	bool have_ts;
	/* SCANNING: where the corrupt header was, and why it was refused */
	uint64_t corrupt_at;
	char why[96];
	/* totals over the file */
	uint64_t records, resyncs, skipped;
	/* FAILED */
	uint64_t err_offset;
	char err[192];
};

struct pcapread_rec {
	uint64_t offset;		/* of its record header in the file */
	uint64_t ts_ns;			/* ns since the epoch */
	uint32_t caplen, len;		/* bytes captured, bytes on the wire */
	const uint8_t *data;		/* caplen bytes inside the caller's window */
	/* the first record after a resynchronisation: the corrupt header was
	 * at corrupt_at, why says what was wrong with it, and the skipped
	 * bytes are offset - corrupt_at */
	bool resynced;
	uint64_t corrupt_at;
	const char *why;		/* inside struct pcapread; valid until the next call */
};

void pcapread_init(struct pcapread *r);

/* Reads what comes next from the window buf[0..len), which holds the file's
 * bytes from offset base (base <= r->pos <= base + len); eof says the window
 * ends where the file does. Returns
 *   1                 a record in *rec (first the file header is read silently);
 *   0                 the file ended at a record boundary;
 *   -EAGAIN           the window must hold r->need bytes from r->pos, or reach
 *                     the end of the file (never more than PCAPREAD_MAX_NEED);
 *   -EPROTONOSUPPORT  the file is not classic pcap 2.4: leave it to libpcap;
 *   -EBADMSG          damaged beyond recovery: r->err and r->err_offset say
 *                     where and why (a truncated file header or record, or a
 *                     corrupt header with no plausible record after it);
 *   -EINVAL           a window that does not hold r->pos.
 * After 0, -EPROTONOSUPPORT or -EBADMSG every further call returns the same. */
int pcapread_next(struct pcapread *r, const uint8_t *buf, size_t len, uint64_t base, bool eof,
		  struct pcapread_rec *rec);

#endif
