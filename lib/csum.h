/* csum: the Internet checksum (RFC 1071), for the TSO/GSO code and for the
 * few packets the agent makes itself. Sums are taken over memory as it lies
 * (words in network order read as native ones), so a folded result goes into
 * a header with memcpy, never with a byte swap. */
#ifndef NATMESH_CSUM_H
#define NATMESH_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* adds len bytes at p, which must start at an even offset of the summed range */
uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len);
/* the 16-bit one's complement sum */
uint16_t csum_fold(uint64_t sum);
/* the checksum field of len bytes at p whose own field is zero (an IPv4
 * header, an ICMP message): the complement of the folded sum */
uint16_t csum_ip(const uint8_t *p, size_t len);

#endif
