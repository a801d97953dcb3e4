#include "netio.h"

#include <string.h>

void netio_udp_close(struct netio *io, struct netio_udp *u)
{
	if (u)
		io->ops->udp_close(u);
}

void netio_tun_close(struct netio *io, struct netio_tun *t)
{
	if (t)
		io->ops->tun_close(t);
}

void netio_tun_stats(struct netio *io, const struct netio_tun *t, struct netio_tun_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (io->ops->tun_stats)
		io->ops->tun_stats(t, out);
}
