/* tunpump: the TUN side of a data plane's event loop, one for meshwg and
 * meshd: when the TUN is readable, batches of IP packets are read into the
 * owner's buffers (laid out with the device's headroom and tailroom) and
 * handed to wg_device_input_tun(). */
#ifndef NATMESH_WG_TUNPUMP_H
#define NATMESH_WG_TUNPUMP_H

#include <stddef.h>
#include <stdint.h>

#include "device.h"
#include "netio.h"

/* batches read per wake-up before the loop looks at other descriptors */
#define WG_TUN_BATCHES_PER_WAKE 8

/* pkts: NETIO_BATCH_MAX packets; bufs: NETIO_BATCH_MAX buffers of buf_size
 * bytes each (buf_size > WG_DEVICE_HEADROOM + WG_DEVICE_TAILROOM). Reads
 * until a read comes back short, at most WG_TUN_BATCHES_PER_WAKE batches
 * unless netio still holds segments of a super-packet (the descriptor does
 * not signal those). Returns the packets handed to the device. */
int wg_tun_pump(struct wg_device *dev, struct netio *io, struct netio_tun *tun, struct netio_pkt *pkts,
		uint8_t *bufs, size_t buf_size);

#endif
