/* csum: the Internet checksum against known vectors: RFC 1071 3's example
 * sum, an IPv4 header whose checksum is known, odd lengths, and a header
 * that carries its right checksum summing to all ones. */
#include <criterion/criterion.h>
#include <string.h>

#include "csum.h"

Test(csum, vectors)
{
	static const struct {
		const char *name;
		uint8_t in[24];
		size_t len;
		uint8_t want[2];	/* the checksum field as it goes on the wire */
	} cases[] = {
		/* RFC 1071 3: the sum is ddf2, the checksum its complement */
		{ "RFC 1071 3", { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 }, 8, { 0x22, 0x0d } },
		{ "IPv4 header", { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
				   0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 }, 20, { 0xb8, 0x61 } },
		/* the odd byte is the high half of a word padded with zero */
		{ "odd length", { 0x01, 0x02, 0x03 }, 3, { 0xfb, 0xfd } },
		{ "nothing", { 0 }, 0, { 0xff, 0xff } },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint16_t s = csum_ip(cases[c].in, cases[c].len);
		uint8_t got[2];

		memcpy(got, &s, 2);
		cr_expect(got[0] == cases[c].want[0] && got[1] == cases[c].want[1], "%s: %02x%02x, want %02x%02x",
			  cases[c].name, got[0], got[1], cases[c].want[0], cases[c].want[1]);
	}
}

Test(csum, header_with_its_checksum_sums_to_ones)
{
	uint8_t h[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
			  0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
	uint16_t s = csum_ip(h, sizeof(h));

	memcpy(h + 10, &s, 2);
	cr_expect_eq(csum_fold(csum_add(0, h, sizeof(h))), 0xffff);
	cr_expect_eq(csum_ip(h, sizeof(h)), 0);
	h[0] ^= 1;
	cr_expect_neq(csum_fold(csum_add(0, h, sizeof(h))), 0xffff, "a flipped bit is seen");
}
