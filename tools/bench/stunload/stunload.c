/* stunload: a STUN Binding load generator for benchmarks. Several connected
 * UDP sockets each keep up to --window requests in flight, sent in batches and
 * collected with recvmmsg; answers are counted (a Binding success response
 * carrying this socket's transaction id prefix) over a fixed duration after a
 * warm-up. Prints one line with the rate.
 *
 * A batch leaves in one UDP GSO send (UDP_SEGMENT): the kernel cuts it into
 * ordinary 20-byte datagrams before the server's socket sees them, so servers
 * receive exactly what sendmmsg would give them, while the generator spends
 * far less CPU per request and leaves the machine to the server under test.
 * --no-gso falls back to sendmmsg.
 *
 *   stunload --server 127.0.0.1:3478 --sockets 8 --duration 5
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "stun/stun.h"

#define MAX_SOCKETS 256
#define MAX_BATCH 64
/* largest request built (SOFTWARE + FINGERPRINT) */
#define REQ_MAX 128
/* a socket that got nothing back for this long has lost its in-flight
 * requests (server or socket queues dropped them): forget them */
#define STALL_NS 20000000ull

struct lsock {
	int fd;
	uint32_t id;		/* first 4 bytes of every tid it sends */
	uint64_t seq;
	uint64_t inflight;
	uint64_t last_progress;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: stunload --server IP:PORT [--sockets N] [--duration S] [--warmup S]\n"
		"                [--window N] [--batch N] [--no-gso] [--fingerprint]\n"
		"                [--software TEXT] [--sources N]\n"
		"Sends STUN Binding requests from N connected UDP sockets (UDP GSO batches,\n"
		"at most --window in flight per socket) and counts the answers received\n"
		"during --duration seconds after --warmup seconds. Requests carry no\n"
		"attribute unless --fingerprint (FINGERPRINT) or --software (SOFTWARE).\n"
		"--sources N (server on 127.0.0.0/8 only): socket i sends from 127.0.1.(1 + i %% N),\n"
		"N client IPs, as a server sees many clients.\n"
		"Output: answered=N sent=N seconds=S rate=R (answers per second)\n");
}

static int arg_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* one request with a tid of id and seq; its length is the same every time */
static int make_req(uint8_t *req, const struct stun_request_opts *o, uint32_t id, uint64_t seq)
{
	uint8_t tid[STUN_TID_LEN];
	memcpy(tid, &id, 4);
	memcpy(tid + 4, &seq, 8);
	return stun_build_binding_request(req, REQ_MAX, tid, o);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "sockets", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "window", required_argument, NULL, 'W' },
		{ "batch", required_argument, NULL, 'b' },
		{ "no-gso", no_argument, NULL, 'G' },
		{ "fingerprint", no_argument, NULL, 'F' },
		{ "software", required_argument, NULL, 'S' },
		{ "sources", required_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct lsock socks[MAX_SOCKETS];
	static uint8_t txbuf[MAX_BATCH][REQ_MAX], rxbuf[MAX_BATCH][256];
	struct stun_request_opts ropts = { 0 };
	struct pollfd pfd[MAX_SOCKETS];
	struct mmsghdr tx[MAX_BATCH], rx[MAX_BATCH];
	struct iovec txiov[MAX_BATCH], rxiov[MAX_BATCH];
	union sockaddr_any server;
	int have_server = 0, nsocks = 8, duration = 5, warmup = 1, window = 256, batch = 32, opt;
	int rc = 1, gso = 1, sources = 0;
	static uint8_t gsobuf[MAX_BATCH * REQ_MAX];

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (addr_parse(optarg, &server) < 0) {
				fprintf(stderr, "stunload: bad --server: %s\n", optarg);
				return 2;
			}
			have_server = 1;
			break;
		case 'n':
			if (arg_int(optarg, 1, MAX_SOCKETS, &nsocks) < 0)
				goto bad;
			break;
		case 'd':
			if (arg_int(optarg, 1, 3600, &duration) < 0)
				goto bad;
			break;
		case 'w':
			if (arg_int(optarg, 0, 600, &warmup) < 0)
				goto bad;
			break;
		case 'W':
			if (arg_int(optarg, 1, 1 << 20, &window) < 0)
				goto bad;
			break;
		case 'b':
			if (arg_int(optarg, 1, MAX_BATCH, &batch) < 0)
				goto bad;
			break;
		case 'G':
			gso = 0;
			break;
		case 'F':
			ropts.fingerprint = true;
			break;
		case 'S':
			ropts.software = optarg;
			break;
		case 'I':
			if (arg_int(optarg, 1, 254, &sources) < 0)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!have_server || optind < argc) {
		usage(stderr);
		return 2;
	}
	if (sources && (server.sa.sa_family != AF_INET ||
			(ntohl(server.in.sin_addr.s_addr) >> 24) != 127)) {
		fprintf(stderr, "stunload: --sources needs a server on 127.0.0.0/8\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	/* By default Binding requests without attributes: the cheapest valid
	 * request, so the benchmark measures the servers, not the client.
	 * --fingerprint and --software make them look like real clients'. */
	int req_len = make_req(txbuf[0], &ropts, 0, 0);
	if (req_len < 0 || req_len > 96) {
		fprintf(stderr, "stunload: request too large\n");
		return 2;
	}
	for (int i = 0; i < MAX_BATCH; i++) {
		txiov[i].iov_base = txbuf[i];
		txiov[i].iov_len = (size_t)req_len;
		rxiov[i].iov_base = rxbuf[i];
		rxiov[i].iov_len = sizeof(rxbuf[i]);
	}

	for (int i = 0; i < nsocks; i++) {
		int fd = socket(server.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int sz = 4 << 20;
		if (fd < 0) {
			perror("stunload: socket");
			goto out;
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
		int seg = req_len;
		if (gso && setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) < 0) {
			fprintf(stderr, "stunload: no UDP GSO (%s), using sendmmsg\n", strerror(errno));
			gso = 0;
		}
		if (sources) {
			struct sockaddr_in from = { .sin_family = AF_INET };
			from.sin_addr.s_addr = htonl(0x7f000101u + (uint32_t)(i % sources));
			if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0) {
				perror("stunload: bind --sources");
				close(fd);
				goto out;
			}
		}
		if (connect(fd, &server.sa, addr_len(&server)) < 0) {
			perror("stunload: connect");
			close(fd);
			goto out;
		}
		socks[i].fd = fd;
		socks[i].id = 0x5354u + (uint32_t)i * 0x01000193u;
		pfd[i].fd = fd;
		pfd[i].events = POLLIN;
	}

	uint64_t start = now_ns(), t_measure = start + (uint64_t)warmup * 1000000000ull;
	uint64_t t_end = t_measure + (uint64_t)duration * 1000000000ull;
	uint64_t answered = 0, sent = 0, answered_total = 0;
	int measuring = warmup == 0;

	for (;;) {
		uint64_t now = now_ns();
		if (!measuring && now >= t_measure) {
			measuring = 1;
			answered = sent = 0;
		}
		if (now >= t_end)
			break;
		int progress = 0;
		for (int i = 0; i < nsocks; i++) {
			struct lsock *k = &socks[i];

			if (now - k->last_progress > STALL_NS && k->inflight) {
				k->inflight = 0;
				k->last_progress = now;
			}
			if (k->inflight < (uint64_t)window) {
				int n = batch;
				if ((uint64_t)n > window - k->inflight)
					n = (int)(window - k->inflight);
				int s;
				if (gso) {
					for (int j = 0; j < n; j++)
						make_req(gsobuf + j * req_len, &ropts, k->id, k->seq + (uint64_t)j);
					ssize_t w = send(k->fd, gsobuf, (size_t)(n * req_len), MSG_DONTWAIT);
					s = w < 0 ? -1 : (int)(w / req_len);
				} else {
					for (int j = 0; j < n; j++) {
						make_req(txbuf[j], &ropts, k->id, k->seq + (uint64_t)j);
						memset(&tx[j].msg_hdr, 0, sizeof(tx[j].msg_hdr));
						tx[j].msg_hdr.msg_iov = &txiov[j];
						tx[j].msg_hdr.msg_iovlen = 1;
					}
					s = sendmmsg(k->fd, tx, (unsigned)n, MSG_DONTWAIT);
				}
				if (s > 0)
					k->seq += (uint64_t)s;
				if (s > 0) {
					k->inflight += (uint64_t)s;
					sent += (uint64_t)s;
					progress = 1;
					if (k->last_progress == 0)
						k->last_progress = now;
				}
			}
			for (int j = 0; j < MAX_BATCH; j++) {
				memset(&rx[j].msg_hdr, 0, sizeof(rx[j].msg_hdr));
				rx[j].msg_hdr.msg_iov = &rxiov[j];
				rx[j].msg_hdr.msg_iovlen = 1;
			}
			int r = recvmmsg(k->fd, rx, MAX_BATCH, MSG_DONTWAIT, NULL);
			if (r <= 0)
				continue;
			progress = 1;
			k->last_progress = now;
			for (int j = 0; j < r; j++) {
				const uint8_t *p = rxbuf[j];
				/* a Binding success response to one of our ids */
				if (rx[j].msg_len >= STUN_HEADER_LEN && stun_is_stun(p, rx[j].msg_len) &&
				    p[0] == 0x01 && p[1] == 0x01 && !memcmp(p + 8, &k->id, 4)) {
					answered++;
					answered_total++;
				}
			}
			k->inflight = k->inflight > (uint64_t)r ? k->inflight - (uint64_t)r : 0;
		}
		if (!progress)
			poll(pfd, (nfds_t)nsocks, 1);
	}
	double secs = (double)(now_ns() - t_measure) / 1e9;
	printf("answered=%llu sent=%llu seconds=%.2f rate=%.0f\n", (unsigned long long)answered,
	       (unsigned long long)sent, secs, (double)answered / secs);
	rc = answered_total > 0 ? 0 : 1;
	if (rc)
		fprintf(stderr, "stunload: no answers from the server\n");
out:
	for (int i = 0; i < nsocks; i++)
		if (socks[i].fd > 0)
			close(socks[i].fd);
	return rc;
bad:
	fprintf(stderr, "stunload: bad option value: %s\n", optarg);
	return 2;
}
