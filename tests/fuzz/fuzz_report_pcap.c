/* libFuzzer target for traversal-report's classic pcap reader (pcapread):
 * the first input byte picks the window step, the rest is the file. The file
 * is read whole and through windows that grow by the step, each window an
 * exact-size heap copy so ASan sees any read outside it. Both readings must
 * agree; records must lie inside the file and the window, in order, with
 * lengths that passed the checks; skipped bytes must fit between them. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pcapread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct summary {
	int64_t rc;
	uint64_t records, resyncs, skipped, err_offset, last_offset;
	uint64_t nonzero;		/* record bytes that are not 0 */
};

static void read_file(const uint8_t *file, size_t size, size_t step, struct summary *s)
{
	struct pcapread r;
	uint64_t base = 0, next = PCAPREAD_FILE_HDR_LEN;
	size_t len = step < size ? step : size;

	memset(s, 0, sizeof(*s));
	pcapread_init(&r);
	for (;;) {
		struct pcapread_rec rec;
		bool eof = base + len == size;
		uint8_t *win = malloc(len ? len : 1);
		int rc;

		if (!win)
			abort();
		memcpy(win, file + base, len);
		rc = pcapread_next(&r, win, len, base, eof, &rec);
		if (rc == 1) {
			/* a record starts where the last one ended, or after
			 * skipped bytes that start there */
			if (rec.resynced ? rec.corrupt_at != next || rec.offset <= next : rec.offset != next)
				abort();
			if (rec.offset + PCAPREAD_REC_HDR_LEN + rec.caplen > base + len)
				abort();
			if (rec.data != win + (rec.offset + PCAPREAD_REC_HDR_LEN - base))
				abort();
			if (rec.caplen > rec.len || rec.caplen > r.max_caplen)
				abort();
			/* the bytes reached through the record's pointer: ASan checks them */
			for (uint32_t i = 0; i < rec.caplen; i++)
				s->nonzero += rec.data[i] != 0;
			next = rec.offset + PCAPREAD_REC_HDR_LEN + rec.caplen;
			s->last_offset = rec.offset;
			free(win);
			continue;
		}
		free(win);
		if (rc == -EAGAIN) {
			if (eof || r.need > PCAPREAD_MAX_NEED || r.need <= base + len - r.pos)
				abort();
			len -= (size_t)(r.pos - base);
			base = r.pos;
			len += step;
			if (base + len > size)
				len = (size_t)(size - base);
			continue;
		}
		if (rc != 0 && rc != -EBADMSG && rc != -EPROTONOSUPPORT)
			abort();
		if (rc == -EBADMSG && (r.err[0] == '\0' || r.err_offset > size))
			abort();
		if (r.skipped > size || r.resyncs > r.records)
			abort();
		s->rc = rc;
		s->records = r.records;
		s->resyncs = r.resyncs;
		s->skipped = r.skipped;
		s->err_offset = r.err_offset;
		return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct summary whole, stepped;
	size_t step;

	if (size < 1)
		return 0;
	step = (size_t)data[0] + 1;
	read_file(data + 1, size - 1, size - 1, &whole);
	read_file(data + 1, size - 1, step, &stepped);
	if (memcmp(&whole, &stepped, sizeof(whole)))
		abort();
	return 0;
}
