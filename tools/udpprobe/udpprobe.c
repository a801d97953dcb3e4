/* udpprobe: plain UDP probes for checking NAT behaviour from namespaces
 * (tests/netns/nat_presets.sh), plus a front end that applies a NAT model or
 * link loss in the current namespace. The echo server answers every datagram
 * with the source address it saw, so a client behind a NAT learns its mapping
 * without STUN. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "nat-models/natmodel.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: udpprobe echo BIND [--timeout-ms MS]\n"
		"         answer every datagram with \"IP:PORT\" of its source; stop after MS idle (0: never)\n"
		"       udpprobe ask BIND DEST [--timeout-ms MS]\n"
		"         send from BIND to DEST (an echo server), print the reply: our address as DEST saw it\n"
		"       udpprobe wait BIND [--timeout-ms MS]\n"
		"         print the source of the first datagram that arrives on BIND\n"
		"       udpprobe send BIND DEST [--count N]\n"
		"         send N datagrams (default 3), 50 ms apart, expecting nothing\n"
		"       udpprobe tally BIND DEST [--count N] [--batch B] [--gap-ms MS] [--timeout-ms MS]\n"
		"         send N datagrams (default 3) to DEST (an echo server) in batches of B (default 64),\n"
		"         print how many replies came from DEST; before the next batch it waits until every\n"
		"         reply so far came back or none came for MS (--gap-ms, default 20), after the last\n"
		"         batch for --timeout-ms; exits 0 however many came back\n"
		"       udpprobe nat MODEL --wan IFNAME [--wan-addr IP]\n"
		"         apply a NAT model (preset name or JSON) in the current namespace: NAT44 for the\n"
		"         WAN's first IPv4 address, NAT66 for its first global IPv6 address; --wan-addr\n"
		"         (IPv4 or IPv6) translates to that address, in its family only\n"
		"       udpprobe nat --remove\n"
		"       udpprobe loss IFNAME PERCENT\n"
		"         drop PERCENT of the packets arriving on IFNAME (0 removes)\n"
		"exit status: 0 done, 1 no datagram within the timeout, 2 bad usage or error\n");
}

static int open_bound(const char *bind_s)
{
	union sockaddr_any a;
	int one = 1, fd;

	if (addr_parse(bind_s, &a) < 0) {
		fprintf(stderr, "udpprobe: bad address %s: expected IP:PORT\n", bind_s);
		return -1;
	}
	fd = socket(a.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, &a.sa, addr_len(&a)) < 0) {
		fprintf(stderr, "udpprobe: bind %s: %s\n", bind_s, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* 1 when a datagram arrived (its source in *from, payload in buf), 0 on
 * timeout, -1 on error; timeout_ms < 0 waits for ever */
static int recv_one(int fd, int timeout_ms, union sockaddr_any *from, char *buf, size_t cap)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	socklen_t sl = sizeof(*from);
	ssize_t n;
	int rc;

	for (;;) {
		rc = poll(&p, 1, timeout_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return rc < 0 ? -1 : 0;
		n = recvfrom(fd, buf, cap - 1, 0, &from->sa, &sl);
		if (n >= 0) {
			buf[n] = '\0';
			return 1;
		}
		/* an ICMP error from an earlier send; keep waiting */
		if (errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH)
			return -1;
	}
}

static int send_to(int fd, const char *dest_s, const char *payload)
{
	union sockaddr_any d;

	if (addr_parse(dest_s, &d) < 0) {
		fprintf(stderr, "udpprobe: bad address %s: expected IP:PORT\n", dest_s);
		return -1;
	}
	if (sendto(fd, payload, strlen(payload), 0, &d.sa, addr_len(&d)) < 0) {
		fprintf(stderr, "udpprobe: send to %s: %s\n", dest_s, strerror(errno));
		return -1;
	}
	return 0;
}

static int cmd_echo(int fd, int timeout_ms)
{
	union sockaddr_any from;
	char buf[512], src[ADDR_STRLEN];
	int rc;

	while ((rc = recv_one(fd, timeout_ms > 0 ? timeout_ms : -1, &from, buf, sizeof(buf))) == 1) {
		addr_format(&from, src, sizeof(src));
		if (sendto(fd, src, strlen(src), 0, &from.sa, addr_len(&from)) < 0)
			fprintf(stderr, "udpprobe: echo to %s: %s\n", src, strerror(errno));
	}
	return rc < 0 ? 2 : 0;
}

/* three tries, one per third of the timeout, in case the first is lost */
static int cmd_ask(int fd, const char *dest, int timeout_ms)
{
	union sockaddr_any from;
	char buf[512];

	for (int i = 0; i < 3; i++) {
		if (send_to(fd, dest, "ask") < 0)
			return 2;
		int rc = recv_one(fd, timeout_ms / 3, &from, buf, sizeof(buf));
		if (rc < 0)
			return 2;
		if (rc == 1) {
			printf("%s\n", buf);
			return 0;
		}
	}
	return 1;
}

static int cmd_wait(int fd, int timeout_ms)
{
	union sockaddr_any from;
	char buf[512], src[ADDR_STRLEN];
	int rc = recv_one(fd, timeout_ms, &from, buf, sizeof(buf));

	if (rc == 1)
		printf("%s\n", addr_format(&from, src, sizeof(src)));
	return rc == 1 ? 0 : rc == 0 ? 1 : 2;
}

static int cmd_send(int fd, const char *dest, int count)
{
	const struct timespec gap = { .tv_nsec = 50 * 1000 * 1000 };

	for (int i = 0; i < count; i++) {
		if (send_to(fd, dest, "probe") < 0)
			return 2;
		if (i + 1 < count)
			nanosleep(&gap, NULL);
	}
	return 0;
}

/* Batches keep the queues on the way (socket buffers, the veth backlog) far
 * shorter than they are, so that with no loss on the path every reply comes
 * back; the echo server's replies carry no sequence number, so this counts
 * replies from DEST and nothing else. */
static int cmd_tally(int fd, const char *dest_s, int count, int batch, int gap_ms, int timeout_ms)
{
	union sockaddr_any d, from;
	char buf[512];
	int sent = 0, got = 0, rc;

	if (addr_parse(dest_s, &d) < 0) {
		fprintf(stderr, "udpprobe: bad address %s: expected IP:PORT\n", dest_s);
		return 2;
	}
	while (sent < count) {
		for (int i = 0; i < batch && sent < count; i++, sent++) {
			if (sendto(fd, "tally", 5, 0, &d.sa, addr_len(&d)) < 0) {
				fprintf(stderr, "udpprobe: send to %s: %s\n", dest_s, strerror(errno));
				return 2;
			}
		}
		while (got < sent) {
			rc = recv_one(fd, sent < count ? gap_ms : timeout_ms, &from, buf, sizeof(buf));
			if (rc < 0) {
				fprintf(stderr, "udpprobe: receive from %s: %s\n", dest_s, strerror(errno));
				return 2;
			}
			if (rc == 0)
				break;
			if (addr_equal(&from, &d))
				got++;
		}
	}
	printf("%d\n", got);
	return 0;
}

static int report(int rc, const struct natmodel_error *err)
{
	if (rc == 0)
		return 0;
	fprintf(stderr, "udpprobe: %s%s%s\n", err->field, err->field[0] ? ": " : "", err->reason);
	return 2;
}

static int cmd_nat(int argc, char **argv, const char *wan, const char *wan_addr_s, bool remove)
{
	struct natmodel_error err = { "", "" };
	struct natmodel m;
	struct natmodel_wan wa = { 0 };
	char buf[NATMODEL_STRLEN];

	if (remove)
		return report(natmodel_remove(&err), &err);
	if (argc != 1 || !wan) {
		usage(stderr);
		return 2;
	}
	if (wan_addr_s) {
		wa.has_v4 = inet_pton(AF_INET, wan_addr_s, &wa.v4) == 1;
		wa.has_v6 = !wa.has_v4 && inet_pton(AF_INET6, wan_addr_s, &wa.v6) == 1;
		if (!wa.has_v4 && !wa.has_v6) {
			fprintf(stderr, "udpprobe: --wan-addr %s: not an IPv4 or IPv6 address\n", wan_addr_s);
			return 2;
		}
	}
	if (report(natmodel_parse(argv[0], &m, &err), &err))
		return 2;
	if (report(natmodel_apply(&m, wan, wan_addr_s ? &wa : NULL, &err), &err))
		return 2;
	printf("%s\n", natmodel_format(&m, buf, sizeof(buf)));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'c' },
		{ "batch", required_argument, NULL, 'b' },
		{ "gap-ms", required_argument, NULL, 'g' },
		{ "wan", required_argument, NULL, 'w' },
		{ "wan-addr", required_argument, NULL, 'a' },
		{ "remove", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *wan = NULL, *wan_addr = NULL;
	int timeout_ms = 2000, count = 3, batch = 64, gap_ms = 20, c, fd, rc;
	bool remove = false;
	char *end;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
		case 'c':
		case 'b':
		case 'g': {
			long v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 0 || v > 3600000) {
				fprintf(stderr, "udpprobe: bad number %s\n", optarg);
				return 2;
			}
			if (c == 'b' && v == 0) {
				fprintf(stderr, "udpprobe: --batch 0: a batch holds at least 1 datagram\n");
				return 2;
			}
			*(c == 't' ? &timeout_ms : c == 'c' ? &count : c == 'b' ? &batch : &gap_ms) = (int)v;
			break;
		}
		case 'w': wan = optarg; break;
		case 'a': wan_addr = optarg; break;
		case 'r': remove = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	const char *verb = argv[0];
	if (!strcmp(verb, "nat"))
		return cmd_nat(argc - 1, argv + 1, wan, wan_addr, remove);
	if (!strcmp(verb, "loss")) {
		struct natmodel_error err = { "", "" };
		long pct = argc == 3 ? strtol(argv[2], &end, 10) : -1;
		if (argc != 3 || *end || pct < 0 || pct > 100) {
			fprintf(stderr, "udpprobe: loss IFNAME PERCENT (0..100)\n");
			return 2;
		}
		return report(natmodel_loss_apply(argv[1], (unsigned int)pct, &err), &err);
	}

	int want = !strcmp(verb, "ask") || !strcmp(verb, "send") || !strcmp(verb, "tally") ? 3 :
		   !strcmp(verb, "echo") || !strcmp(verb, "wait") ? 2 : 0;
	if (!want || argc != want) {
		usage(stderr);
		return 2;
	}
	fd = open_bound(argv[1]);
	if (fd < 0)
		return 2;
	if (!strcmp(verb, "echo"))
		rc = cmd_echo(fd, timeout_ms);
	else if (!strcmp(verb, "ask"))
		rc = cmd_ask(fd, argv[2], timeout_ms);
	else if (!strcmp(verb, "wait"))
		rc = cmd_wait(fd, timeout_ms);
	else if (!strcmp(verb, "tally"))
		rc = cmd_tally(fd, argv[2], count, batch, gap_ms, timeout_ms);
	else
		rc = cmd_send(fd, argv[2], count);
	close(fd);
	return rc;
}
