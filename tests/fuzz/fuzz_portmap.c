/* libFuzzer target for meshd's port mapping core (agent/meshd/portmap.c):
 * a run against a gateway that sends arbitrary datagrams, with the UPnP
 * worker's results and the clock chosen by the input. Records:
 *
 *   0  a datagram (length byte, then bytes) from the gateway
 *   1  the same, with the run's nonce written where a PCP MAP answer has it
 *   2  the UPnP worker ends its job (arg bit 0: success)
 *   3  the clock moves on
 *
 * Beyond not crashing: every datagram it sends is a PCP (version 2) or
 * NAT-PMP (version 0) request that its own parser would take as a request;
 * its deadline is never in the past once polled; a mapping it reports has a
 * port and a lifetime it was granted. */
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/meshd/portmap.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t nonce[PCP_NONCE_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

static void pump(struct portmap *pm, uint64_t now)
{
	struct portmap_dgram d;
	int n = 0;

	while (portmap_poll(pm, now, &d) == 1) {
		if (d.len < 2 || (d.buf[0] != 2 && d.buf[0] != 0) || (d.buf[1] & 0x80) || ++n > 16)
			abort();
	}
	if (portmap_deadline(pm) < now) {
		fprintf(stderr, "DBG state=%d proto=%d dl=%llu now=%llu next_tx=%llu probe_end=%llu over=%d renewing=%d renew_at=%llu check=%llu\n", pm->state, pm->proto,
			(unsigned long long)portmap_deadline(pm), (unsigned long long)now, (unsigned long long)pm->next_tx, (unsigned long long)pm->probe_end, pm->probe_over, pm->renewing, (unsigned long long)pm->renew_at, (unsigned long long)pm->check_at);
		abort();
	}
	if (pm->state == PORTMAP_MAPPED && pm->proto != PORTMAP_UPNP && !pm->lifetime)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct portmap pm;
	union sockaddr_any gw, me, ext;
	uint8_t buf[PCP_MAX_LEN + 1];
	uint64_t now = 1000;
	size_t i = 1;

	if (size < 1)
		return 0;
	log_setup(LOG_FORMAT_TEXT, LOG_ERROR);	/* its warnings are not what is tested */
	addr_parse_ip("10.1.0.1", 0, &gw);
	addr_parse_ip("10.1.0.2", 0, &me);
	addr_parse("198.51.100.9:40000", &ext);
	portmap_init(&pm, (data[0] & 7) ? (data[0] & 7) : PORTMAP_ALL, 51820, (uint16_t)(data[0] << 8), nonce);
	portmap_start(&pm, &gw, &me, now);
	pump(&pm, now);
	while (i + 2 <= size) {
		uint8_t op = data[i], arg = data[i + 1];
		size_t n;

		i += 2;
		switch (op & 3) {
		case 0:
		case 1:
			n = arg < size - i ? arg : size - i;
			memcpy(buf, data + i, n);
			if ((op & 3) == 1 && n >= PCP_HDR_LEN + PCP_NONCE_LEN)
				memcpy(buf + PCP_HDR_LEN, nonce, PCP_NONCE_LEN);
			i += n;
			portmap_receive(&pm, buf, n, now);
			break;
		case 2:
			if (pm.upnp_job != PORTMAP_UPNP_NONE || pm.upnp_busy) {
				enum portmap_upnp_job job = pm.upnp_job;
				pm.upnp_job = PORTMAP_UPNP_NONE;
				pm.upnp_busy = false;
				if (job == PORTMAP_UPNP_DISCOVER)
					portmap_upnp_discovered(&pm, arg & 1, now);
				else if (job == PORTMAP_UPNP_MAP)
					portmap_upnp_mapped(&pm, arg & 1, &ext, 7200, now);
				else if (job == PORTMAP_UPNP_CHECK)
					portmap_upnp_checked(&pm, arg & 1, now);
			}
			break;
		default:
			now += (uint64_t)arg * (op & 0x80 ? 1000 : 10);
			break;
		}
		pump(&pm, now);
	}
	(void)portmap_release(&pm, buf, sizeof(buf));
	return 0;
}
