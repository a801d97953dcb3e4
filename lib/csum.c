/* csum: the Internet checksum (csum.h) */
#include <string.h>

#include "csum.h"

uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
	uint32_t a, b;
	uint16_t h;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&a, p, 4);
		memcpy(&b, p + 4, 4);
		sum += (uint64_t)a + b;
	}
	if (len >= 4) {
		memcpy(&a, p, 4);
		sum += a;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&h, p, 2);
		sum += h;
		p += 2;
		len -= 2;
	}
	if (len) {
		/* the odd byte is the first of a word padded with zero */
		h = 0;
		memcpy(&h, p, 1);
		sum += h;
	}
	return sum;
}

uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

uint16_t csum_ip(const uint8_t *p, size_t len)
{
	return (uint16_t)~csum_fold(csum_add(0, p, len));
}
