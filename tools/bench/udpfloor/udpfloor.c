/* udpfloor: the kernel's floor for a UDP request/answer server, for the STUN
 * benchmark. It does no STUN work: every datagram read (recvmmsg, batches of
 * 64) goes straight back to its source (sendmmsg) with its first two bytes set
 * to 0x0101, which stunload counts as a Binding success response. What it
 * costs per answer is what the kernel's socket API costs, so no server on that
 * API (meshstun, coturn or any other) can answer faster on the same machine:
 * its rate over coturn's is the ceiling of any such server's ratio, and
 * meshstun's rate over its own is how close meshstun comes to the floor.
 *
 * It uses the same two kernel tricks as meshstun (tools/meshstun): batches,
 * and answers sent from a send-only twin socket (an SO_REUSEPORT pair whose
 * steering program always picks the receiver), unless --one-socket.
 * Not a STUN server and not installed.
 *
 *   udpfloor --listen 127.0.0.1:3478 [--one-socket]
 */
#include <errno.h>
#include <getopt.h>
#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"

enum {
	FLOOR_BATCH = 64,		/* as NETIO_BATCH_MAX, what meshstun reads at once */
	FLOOR_BATCHES_PER_WAKE = 16,	/* as meshstun's MAX_BATCHES_PER_WAKE */
	FLOOR_PKT = 2048,
};

static void usage(FILE *f)
{
	fprintf(f, "usage: udpfloor --listen IP:PORT [--one-socket]\n"
		   "Answers every UDP datagram by sending it back with its first two bytes\n"
		   "set to 0x0101 (what stunload counts as a Binding success): the kernel's\n"
		   "cost per answer and nothing else, the ceiling for any socket-API server\n"
		   "in tools/bench/stun.sh. --one-socket sends from the receiving socket\n"
		   "instead of a send-only twin. Stops on SIGTERM/SIGINT.\n");
}

/* a UDP socket on addr with 4 MiB buffers (as meshstun's); in an SO_REUSEPORT
 * group when group is set */
static int open_member(const union sockaddr_any *addr, bool group)
{
	int one = 1, bufsz = 4 << 20, fd, rc;

	fd = socket(addr->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz)) < 0 ||
	    (group && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, &addr->sa, addr->sa.sa_family == AF_INET ? sizeof(addr->in) : sizeof(addr->in6)) < 0)
		goto fail;
	return fd;
fail:
	rc = -errno;
	close(fd);
	return rc;
}

/* the group's program returns 0: the receiver (first member) gets every
 * datagram and the twin, which joins after it, none */
static int steer_to_first(int fd)
{
	struct sock_filter first[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog prog = { .len = 1, .filter = first };

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "one-socket", no_argument, NULL, '1' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static uint8_t buf[FLOOR_BATCH][FLOOR_PKT];
	static union sockaddr_any from[FLOOR_BATCH];
	struct iovec iov[FLOOR_BATCH];
	struct mmsghdr msg[FLOOR_BATCH];
	union sockaddr_any addr;
	const char *listen = NULL;
	bool twin = true;
	int opt, rx = -1, tx = -1, ep = -1, rc = 1;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': listen = optarg; break;
		case '1': twin = false; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!listen || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (addr_parse(listen, &addr) < 0) {
		fprintf(stderr, "udpfloor: --listen %s: not IP:PORT\n", listen);
		return 2;
	}
	/* claim the address alone first, so that a second server on it is
	 * refused rather than joining the SO_REUSEPORT group (as netio does) */
	int err = rx = open_member(&addr, false);
	if (rx >= 0 && twin) {
		close(rx);
		err = rx = open_member(&addr, true);
		if (err >= 0 && (err = steer_to_first(rx)) >= 0)
			err = tx = open_member(&addr, true);
	}
	if (err < 0) {
		fprintf(stderr, "udpfloor: --listen %s: %s\n", listen, strerror(-err));
		goto out;
	}
	if (!twin)
		tx = rx;
	struct epoll_event ev = { .events = EPOLLIN };
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, rx, &ev) < 0) {
		perror("udpfloor: epoll");
		goto out;
	}
	for (;;) {
		if (epoll_wait(ep, &ev, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("udpfloor: epoll_wait");
			goto out;
		}
		for (int b = 0; b < FLOOR_BATCHES_PER_WAKE; b++) {
			for (int i = 0; i < FLOOR_BATCH; i++) {
				iov[i] = (struct iovec){ .iov_base = buf[i], .iov_len = FLOOR_PKT };
				msg[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof(from[i]),
								  .msg_iov = &iov[i], .msg_iovlen = 1 };
			}
			int n = recvmmsg(rx, msg, FLOOR_BATCH, MSG_DONTWAIT, NULL);
			if (n <= 0)
				break;
			for (int i = 0; i < n; i++) {
				iov[i].iov_len = msg[i].msg_len;
				if (msg[i].msg_len >= 2)
					buf[i][0] = 0x01, buf[i][1] = 0x01;
			}
			/* a refused send (a full buffer) loses answers, as a server would */
			for (int done = 0; done < n;) {
				int s = sendmmsg(tx, msg + done, (unsigned)(n - done), MSG_DONTWAIT);
				if (s <= 0)
					break;
				done += s;
			}
			if (n < FLOOR_BATCH)
				break;
		}
	}
out:
	if (ep >= 0)
		close(ep);
	if (tx >= 0 && tx != rx)
		close(tx);
	if (rx >= 0)
		close(rx);
	return rc;
}
