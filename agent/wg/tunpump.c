/* tunpump: the TUN read loop of meshwg and meshd (tunpump.h). */
#include "tunpump.h"

#include "loop.h"

int wg_tun_pump(struct wg_device *dev, struct netio *io, struct netio_tun *tun, struct netio_pkt *pkts,
		uint8_t *bufs, size_t buf_size)
{
	int total = 0;

	for (int b = 0; b < WG_TUN_BATCHES_PER_WAKE || netio_tun_pending(io, tun); b++) {
		for (int i = 0; i < NETIO_BATCH_MAX; i++) {
			pkts[i].data = bufs + (size_t)i * buf_size + WG_DEVICE_HEADROOM;
			pkts[i].cap = buf_size - WG_DEVICE_HEADROOM - WG_DEVICE_TAILROOM;
		}
		int n = netio_tun_read(io, tun, pkts, NETIO_BATCH_MAX);
		if (n <= 0)
			break;
		/* the device encrypts in place, into the tailroom */
		for (int i = 0; i < n; i++)
			pkts[i].cap += WG_DEVICE_TAILROOM;
		wg_device_input_tun(dev, pkts, n, clock_now_ns());
		total += n;
		if (n < NETIO_BATCH_MAX)
			break;
	}
	return total;
}
