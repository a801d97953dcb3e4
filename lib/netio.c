#include "netio.h"

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
