#include "ipam.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ipam_init(struct ipam *ipam, const struct cidr *cidr)
{
	memset(ipam, 0, sizeof(*ipam));
	if (cidr->family != AF_INET || cidr->prefix > 30)
		return -EINVAL;
	ipam->cidr = *cidr;
	ipam->hint = 1; /* index 0 is the network address */
	return 0;
}

void ipam_fini(struct ipam *ipam)
{
	free(ipam->bits);
	memset(ipam, 0, sizeof(*ipam));
}

uint64_t ipam_capacity(const struct ipam *ipam)
{
	return cidr_size(&ipam->cidr) - 2;
}

static bool is_host(const struct ipam *ipam, uint64_t index)
{
	return index >= 1 && index <= ipam_capacity(ipam);
}

static bool test_bit(const struct ipam *ipam, uint64_t index)
{
	size_t w = index / 64;
	return w < ipam->nwords && (ipam->bits[w] >> (index % 64)) & 1;
}

static int grow(struct ipam *ipam, uint64_t index)
{
	size_t need = index / 64 + 1;
	if (need <= ipam->nwords)
		return 0;
	size_t n = ipam->nwords ? ipam->nwords : 16;
	while (n < need)
		n *= 2;
	uint64_t *b = realloc(ipam->bits, n * sizeof(*b));
	if (!b)
		return -ENOMEM;
	memset(b + ipam->nwords, 0, (n - ipam->nwords) * sizeof(*b));
	ipam->bits = b;
	ipam->nwords = n;
	return 0;
}

/* the first clear bit at or above from; beyond the bitmap everything is clear */
static uint64_t first_clear(const struct ipam *ipam, uint64_t from)
{
	size_t w = from / 64;
	if (w >= ipam->nwords)
		return from;
	uint64_t word = ~ipam->bits[w] & (~(uint64_t)0 << (from % 64));
	while (!word) {
		if (++w >= ipam->nwords)
			return (uint64_t)w * 64;
		word = ~ipam->bits[w];
	}
	return (uint64_t)w * 64 + (uint64_t)__builtin_ctzll(word);
}

int ipam_reserve(struct ipam *ipam, uint64_t index)
{
	int rc;
	if (!is_host(ipam, index))
		return -ERANGE;
	if (test_bit(ipam, index))
		return -EEXIST;
	if ((rc = grow(ipam, index)) < 0)
		return rc;
	ipam->bits[index / 64] |= (uint64_t)1 << (index % 64);
	ipam->used++;
	if (index == ipam->hint)
		ipam->hint = first_clear(ipam, index + 1);
	return 0;
}

int ipam_alloc(struct ipam *ipam, uint64_t *index, union sockaddr_any *addr)
{
	uint64_t i = ipam->hint;
	int rc;
	if (!is_host(ipam, i))
		return -ENOSPC;
	if ((rc = ipam_reserve(ipam, i)) < 0)
		return rc;
	*index = i;
	return addr ? cidr_host(&ipam->cidr, i, addr) : 0;
}

int ipam_release(struct ipam *ipam, uint64_t index)
{
	if (!test_bit(ipam, index))
		return -ENOENT;
	ipam->bits[index / 64] &= ~((uint64_t)1 << (index % 64));
	ipam->used--;
	if (index < ipam->hint)
		ipam->hint = index;
	return 0;
}
