/* wgflood: hostile traffic for a WireGuard port, for the namespace tests
 * (tests/netns/wg_badinput.sh) and by hand. Three modes:
 *
 *   junk        random datagrams, every message type truncated, nonzero
 *               reserved bytes, and full-size handshake messages with a wrong mac1
 *   replay      re-sends the UDP payloads of a pcap capture (optionally with
 *               one ciphertext byte flipped)
 *   initiations a flood of handshake initiations whose mac1 is valid for the
 *               target's public key (the rest random), from one socket per
 *               source address; counts the cookie replies that come back
 *
 * It sends only to the --to address given, and stops by itself. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "agent/wg/crypto.h"
#include "agent/wg/messages.h"

#define MAX_SOURCES 256

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wgflood junk --to IP:PORT [--count N]\n"
		"       wgflood replay --to IP:PORT --pcap FILE [--times N] [--corrupt]\n"
		"       wgflood initiations --to IP:PORT --pubkey BASE64 --from IP[,IP...]\n"
		"                           [--rate N] [--seconds S]\n"
		"\n"
		"Hostile traffic for testing a WireGuard port (send only to your own test hosts).\n"
		"  junk         N of each: random datagrams, truncated messages of every type,\n"
		"               nonzero reserved bytes, initiations and responses with a wrong mac1\n"
		"  replay       the UDP payload of every packet in FILE, N times (default 1);\n"
		"               --corrupt moves a data packet's counter 10^6 ahead and flips a\n"
		"               byte of its Poly1305 tag first\n"
		"  initiations  handshake initiations with a valid mac1 for BASE64 (the target's\n"
		"               public key), RATE per second (default 4000) for S seconds\n"
		"               (default 10), round robin over one socket per --from address\n"
		"Prints one line of counters (key=value) at the end.\n");
}

static int open_socket(const union sockaddr_any *to, const char *from)
{
	union sockaddr_any src;
	int fd = socket(to->sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (from) {
		if (addr_parse_ip(from, 0, &src) < 0 || src.sa.sa_family != to->sa.sa_family ||
		    bind(fd, &src.sa, addr_len(&src)) < 0) {
			close(fd);
			return -EADDRNOTAVAIL;
		}
	}
	if (connect(fd, &to->sa, addr_len(to)) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void header(uint8_t *p, uint8_t type)
{
	p[0] = type;
	p[1] = p[2] = p[3] = 0;
}

static int junk(int fd, long count)
{
	static const struct { uint8_t type; size_t len; } cut[] = {
		{ WG_MSG_INITIATION, WG_MSG_INITIATION_LEN - 1 }, { WG_MSG_INITIATION, 4 },
		{ WG_MSG_RESPONSE, WG_MSG_RESPONSE_LEN - 1 }, { WG_MSG_COOKIE_REPLY, WG_MSG_COOKIE_REPLY_LEN - 1 },
		{ WG_MSG_DATA, WG_MSG_DATA_MIN_LEN - 1 }, { WG_MSG_DATA, 3 },
	};
	uint8_t buf[WG_MSG_INITIATION_LEN + 64];
	long random_n = 0, truncated = 0, reserved = 0, bad_mac = 0;

	for (long i = 0; i < count; i++) {
		size_t len = 1 + (size_t)(randombytes_uniform(sizeof(buf)));
		wg_random(buf, len);
		random_n += send(fd, buf, len, 0) >= 0;

		for (size_t c = 0; c < sizeof(cut) / sizeof(cut[0]); c++) {
			wg_random(buf, cut[c].len);
			header(buf, cut[c].type);
			truncated += send(fd, buf, cut[c].len, 0) >= 0;
		}

		wg_random(buf, WG_MSG_DATA_MIN_LEN);
		header(buf, WG_MSG_DATA);
		buf[2] = 1;
		reserved += send(fd, buf, WG_MSG_DATA_MIN_LEN, 0) >= 0;

		wg_random(buf, WG_MSG_INITIATION_LEN);
		header(buf, WG_MSG_INITIATION);
		bad_mac += send(fd, buf, WG_MSG_INITIATION_LEN, 0) >= 0;
		wg_random(buf, WG_MSG_RESPONSE_LEN);
		header(buf, WG_MSG_RESPONSE);
		bad_mac += send(fd, buf, WG_MSG_RESPONSE_LEN, 0) >= 0;
	}
	printf("wgflood: junk random=%ld truncated=%ld reserved=%ld bad_mac=%ld\n", random_n, truncated,
	       reserved, bad_mac);
	return 0;
}

/* the UDP payload of an Ethernet, Linux cooked or raw-IP frame, or NULL */
static const uint8_t *udp_payload(int linktype, const uint8_t *p, size_t caplen, size_t *len)
{
	size_t off;
	switch (linktype) {
	case DLT_EN10MB: off = 14; break;
	case DLT_LINUX_SLL: off = 16; break;
	case DLT_RAW: off = 0; break;
	default: return NULL;
	}
	if (caplen < off + 1)
		return NULL;
	const uint8_t *ip = p + off;
	size_t iplen = caplen - off, hl;
	if (ip[0] >> 4 == 4) {
		hl = (size_t)(ip[0] & 15) * 4;
		if (iplen < hl + 8 || ip[9] != IPPROTO_UDP)
			return NULL;
	} else if (ip[0] >> 4 == 6) {
		hl = 40;
		if (iplen < hl + 8 || ip[6] != IPPROTO_UDP)
			return NULL;
	} else {
		return NULL;
	}
	size_t ulen = (size_t)ip[hl + 4] << 8 | ip[hl + 5];
	if (ulen < 8 || hl + ulen > iplen)
		return NULL;
	*len = ulen - 8;
	return ip + hl + 8;
}

static int replay(int fd, const char *file, long times, bool corrupt)
{
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const uint8_t *data;
	long sent = 0, packets = 0;
	pcap_t *pc = pcap_open_offline(file, err);

	if (!pc) {
		fprintf(stderr, "wgflood: cannot read %s: %s\n", file, err);
		return 1;
	}
	int linktype = pcap_datalink(pc);
	while (pcap_next_ex(pc, &h, &data) == 1) {
		size_t len;
		const uint8_t *payload = udp_payload(linktype, data, h->caplen, &len);
		if (!payload || len == 0)
			continue;
		uint8_t *copy = malloc(len);
		if (!copy)
			break;
		memcpy(copy, payload, len);
		if (corrupt && wg_msg_parse(copy, len) == WG_MSG_DATA) {
			/* a counter far ahead passes the replay window's pre-check, so the
			 * packet must fail authentication (and must not move the window) */
			struct wg_msg_data *d = (struct wg_msg_data *)copy;
			wg_le64_put(&d->counter, wg_le64_get(&d->counter) + 1000000);
			copy[len - 1] ^= 0x80;
		}
		packets++;
		for (long i = 0; i < times; i++)
			sent += send(fd, copy, len, 0) >= 0;
		free(copy);
	}
	pcap_close(pc);
	printf("wgflood: replay packets=%ld sent=%ld\n", packets, sent);
	return packets ? 0 : 1;
}

static int flood(const union sockaddr_any *to, const uint8_t pub[WG_KEY_LEN], char *from, long rate, long seconds)
{
	int fds[MAX_SOURCES], nfd = 0;
	uint8_t mac1_key[WG_HASH_LEN];
	struct wg_msg_initiation msg;
	long sent = 0, cookies = 0;

	for (char *tok = strtok(from, ","); tok; tok = strtok(NULL, ",")) {
		if (nfd == MAX_SOURCES) {
			fprintf(stderr, "wgflood: at most %d --from addresses\n", MAX_SOURCES);
			return 2;
		}
		fds[nfd] = open_socket(to, tok);
		if (fds[nfd] < 0) {
			fprintf(stderr, "wgflood: cannot send from %s: %s\n", tok, strerror(-fds[nfd]));
			return 1;
		}
		nfd++;
	}
	/* whitepaper 5.4.4: mac1 keyed with HASH(LABEL_MAC1 || S_pub_responder) */
	wg_hash2(mac1_key, WG_LABEL_MAC1, strlen(WG_LABEL_MAC1), pub, WG_KEY_LEN);

	uint64_t start = now_ms(), end = start + (uint64_t)seconds * 1000;
	for (uint64_t t = start; t < end; t = now_ms()) {
		long due = (long)((t - start) * (uint64_t)rate / 1000);
		while (sent < due) {
			wg_random(&msg, sizeof(msg));
			header(&msg.header.type, WG_MSG_INITIATION);
			memset(msg.macs.mac2, 0, sizeof(msg.macs.mac2));
			wg_mac(msg.macs.mac1, mac1_key, sizeof(mac1_key), &msg, offsetof(struct wg_msg_initiation, macs));
			if (send(fds[sent % nfd], &msg, sizeof(msg), MSG_DONTWAIT) < 0 && errno != EAGAIN &&
			    errno != ECONNREFUSED)
				break;
			sent++;
		}
		for (int i = 0; i < nfd; i++) {
			uint8_t buf[256];
			ssize_t n;
			while ((n = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT)) > 0)
				cookies += wg_msg_parse(buf, (size_t)n) == WG_MSG_COOKIE_REPLY;
		}
		usleep(1000);
	}
	/* late replies */
	usleep(200000);
	for (int i = 0; i < nfd; i++) {
		uint8_t buf[256];
		ssize_t n;
		while ((n = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT)) > 0)
			cookies += wg_msg_parse(buf, (size_t)n) == WG_MSG_COOKIE_REPLY;
		close(fds[i]);
	}
	printf("wgflood: initiations sent=%ld sources=%d seconds=%ld cookie_replies=%ld\n", sent, nfd, seconds,
	       cookies);
	return 0;
}

static int parse_long(const char *s, const char *what, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > max) {
		fprintf(stderr, "wgflood: bad %s: %s (1..%ld)\n", what, s, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'c' },
		{ "pcap", required_argument, NULL, 'p' },
		{ "times", required_argument, NULL, 'n' },
		{ "corrupt", no_argument, NULL, 'x' },
		{ "pubkey", required_argument, NULL, 'k' },
		{ "from", required_argument, NULL, 'f' },
		{ "rate", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	union sockaddr_any to = { 0 };
	const char *pcap = NULL, *mode;
	char *from = NULL;
	uint8_t pub[WG_KEY_LEN];
	bool has_to = false, has_pub = false, corrupt = false;
	long count = 100, times = 1, rate = 4000, seconds = 10;
	int opt, fd, rc;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (addr_parse(optarg, &to) < 0) {
				fprintf(stderr, "wgflood: bad --to address: %s\n", optarg);
				return 2;
			}
			has_to = true;
			break;
		case 'c':
			if (parse_long(optarg, "--count", 1000000, &count) < 0)
				return 2;
			break;
		case 'p':
			pcap = optarg;
			break;
		case 'n':
			if (parse_long(optarg, "--times", 1000000, &times) < 0)
				return 2;
			break;
		case 'x':
			corrupt = true;
			break;
		case 'k':
			if (wg_key_from_base64(pub, optarg) < 0) {
				fprintf(stderr, "wgflood: bad --pubkey: %s\n", optarg);
				return 2;
			}
			has_pub = true;
			break;
		case 'f':
			from = optarg;
			break;
		case 'r':
			if (parse_long(optarg, "--rate", 1000000, &rate) < 0)
				return 2;
			break;
		case 's':
			if (parse_long(optarg, "--seconds", 3600, &seconds) < 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || !has_to) {
		usage(stderr);
		return 2;
	}
	if (wg_crypto_init() < 0) {
		fprintf(stderr, "wgflood: libsodium init failed\n");
		return 1;
	}
	mode = argv[optind];
	if (!strcmp(mode, "initiations")) {
		if (!has_pub || !from) {
			fprintf(stderr, "wgflood: initiations needs --pubkey and --from\n");
			return 2;
		}
		return flood(&to, pub, from, rate, seconds);
	}
	if (strcmp(mode, "junk") && strcmp(mode, "replay")) {
		fprintf(stderr, "wgflood: unknown mode: %s\n", mode);
		return 2;
	}
	fd = open_socket(&to, NULL);
	if (fd < 0) {
		fprintf(stderr, "wgflood: cannot open a socket: %s\n", strerror(-fd));
		return 1;
	}
	if (!strcmp(mode, "junk")) {
		rc = junk(fd, count);
	} else if (!pcap) {
		fprintf(stderr, "wgflood: replay needs --pcap\n");
		rc = 2;
	} else {
		rc = replay(fd, pcap, times, corrupt);
	}
	close(fd);
	return rc;
}
