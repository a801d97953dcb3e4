#include "impairline.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum {
	BATCH = 64,
	SLOT_DATA = 2032,	/* virtio_net_hdr + frame; a slot is 2 KiB */
	VNET = sizeof(struct virtio_net_hdr),
	SOCK_BUF = 8 << 20,
	CTL_MAX = 16384,
	RECV_ROUNDS = 16,	/* batches read from one socket before the other gets a turn */
	/* the timer fires this early and the loop polls the rest of the way: a
	 * wake-up from sleep costs 30-100 us here, more than the spin */
	SPIN_NS = 50000,
};

volatile sig_atomic_t impair_line_stop;

struct slot {
	uint64_t due;
	uint32_t len;		/* bytes of data: vnet header and frame */
	uint32_t pad;
	uint8_t data[SLOT_DATA];
};

struct line_dir {
	struct impair_dir dec;
	struct slot *ring;	/* IMPAIR_QUEUE_PACKETS_MAX slots in the order they leave */
	size_t head, n;
	struct slot held;
	unsigned held_copies;
	int in, out;		/* sockets: frames come in on in, leave on out */
};

struct line {
	const struct impair_line_opts *o;
	struct line_dir dir[IMPAIR_NDIRS];
	int fd_a, fd_b, tfd, ctl, ep;
	uint8_t stage[BATCH][SLOT_DATA];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* --- sockets ------------------------------------------------------------- */

static int packet_socket(const char *dev, int *out)
{
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL)), one = 1,
	    buf = SOCK_BUF;
	unsigned idx = if_nametoindex(dev);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)idx };

	*out = -1;
	if (fd < 0)
		return -errno;
	if (!idx) {
		close(fd);
		return -ENODEV;
	}
	if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	/* as root past rmem_max; without root the default stays */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	*out = fd;
	return 0;
}

static socklen_t ctl_addr(const char *dev_a, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	int n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1, IMPAIR_CTL_PREFIX "%s", dev_a);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* --- the ring ------------------------------------------------------------ */

static struct slot *ring_push(struct line_dir *d)
{
	if (d->n == IMPAIR_QUEUE_PACKETS_MAX) {
		d->dec.cnt.overflow++;
		return NULL;
	}
	struct slot *s = &d->ring[(d->head + d->n) % IMPAIR_QUEUE_PACKETS_MAX];
	d->n++;
	return s;
}

static void ring_put(struct line_dir *d, const uint8_t *data, uint32_t len, uint64_t due, unsigned copies)
{
	for (unsigned i = 0; i < copies; i++) {
		struct slot *s = ring_push(d);
		if (!s)
			return;
		s->due = due;
		s->len = len;
		memcpy(s->data, data, len);
	}
}

/* sends every frame of d that is due at now */
static void flush_due(struct line_dir *d, uint64_t now)
{
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	while (d->n && d->ring[d->head].due <= now) {
		unsigned k = 0;
		for (size_t i = d->head; k < BATCH && k < d->n; i = (i + 1) % IMPAIR_QUEUE_PACKETS_MAX, k++) {
			struct slot *s = &d->ring[i];
			if (s->due > now)
				break;
			iov[k] = (struct iovec){ s->data, s->len };
			msgs[k] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[k], .msg_iovlen = 1 } };
		}
		int sent = sendmmsg(d->out, msgs, k, 0);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			sent = 0;
		}
		d->dec.cnt.passed += (uint64_t)sent;
		d->dec.cnt.overflow += k - (unsigned)sent;	/* not sent: dropped, counted */
		d->head = (d->head + k) % IMPAIR_QUEUE_PACKETS_MAX;
		d->n -= k;
	}
}

static bool is_ip(const uint8_t *frame, size_t len)
{
	if (len < ETH_HLEN)
		return false;
	uint16_t type = (uint16_t)(frame[12] << 8 | frame[13]);
	return type == ETH_P_IP || type == ETH_P_IPV6;
}

/* when the frame reached the interface (its kernel timestamp), so that the
 * line's own wake-up is not added to the delay; now when it has none */
static uint64_t arrival(struct msghdr *m, int64_t offset, uint64_t now)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		struct timespec ts;
		memcpy(&ts, CMSG_DATA(c), sizeof(ts));
		int64_t at = (int64_t)((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec) - offset;
		/* a clock step or a stale stamp: trust now */
		return at > 0 && (uint64_t)at <= now && now - (uint64_t)at < 1000000000ULL ? (uint64_t)at : now;
	}
	return now;
}

/* reads what waits on d's input and decides each frame; non-IP frames go at once */
static void receive(struct line_dir *d, uint8_t (*stage)[SLOT_DATA])
{
	struct mmsghdr msgs[BATCH], now_msgs[BATCH];
	struct iovec iov[BATCH], now_iov[BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} cmsg[BATCH];

	for (int round = 0; round < RECV_ROUNDS; round++) {
		for (unsigned i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ stage[i], SLOT_DATA };
			msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1,
								  .msg_control = cmsg[i].buf,
								  .msg_controllen = sizeof(cmsg[i].buf) } };
		}
		int n = recvmmsg(d->in, msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		struct timespec rt;
		uint64_t now = now_ns();
		clock_gettime(CLOCK_REALTIME, &rt);
		/* the kernel stamps arrival in CLOCK_REALTIME; back to monotonic */
		int64_t offset = (int64_t)((uint64_t)rt.tv_sec * 1000000000ULL + (uint64_t)rt.tv_nsec) - (int64_t)now;
		unsigned direct = 0;
		for (int i = 0; i < n; i++) {
			uint32_t len = msgs[i].msg_len;
			uint64_t at = arrival(&msgs[i].msg_hdr, offset, now);
			const uint8_t *frame = stage[i] + VNET;
			struct impair_verdict v;
			if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || len < VNET) {
				d->dec.cnt.overflow++;
				continue;
			}
			if (!is_ip(frame, len - VNET)) {
				d->dec.cnt.other++;
				now_iov[direct] = (struct iovec){ stage[i], len };
				now_msgs[direct] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &now_iov[direct], .msg_iovlen = 1 } };
				direct++;
				continue;
			}
			impair_dir_admit(&d->dec, at, len - VNET, &v);
			if (v.fate == IMPAIR_HOLD) {
				d->held.len = len;
				memcpy(d->held.data, stage[i], len);
				d->held_copies = v.copies;
			} else if (v.fate == IMPAIR_PASS) {
				ring_put(d, stage[i], len, v.due, v.copies);
				if (v.release_held)
					ring_put(d, d->held.data, d->held.len, v.due, d->held_copies);
			}
		}
		if (direct) {
			int sent = sendmmsg(d->out, now_msgs, direct, 0);
			d->dec.cnt.overflow += direct - (unsigned)(sent > 0 ? sent : 0);
		}
		if (n < BATCH)
			return;
	}
}

/* --- control ------------------------------------------------------------- */

static json_t *counters_json(const struct impair_counters *c)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "packets", (json_int_t)c->packets, "passed",
			 (json_int_t)c->passed, "lost", (json_int_t)c->lost, "queue_drops", (json_int_t)c->queue_drops,
			 "duplicated", (json_int_t)c->duplicated, "reordered", (json_int_t)c->reordered, "other",
			 (json_int_t)c->other, "overflow", (json_int_t)c->overflow);
}

static json_t *state_json(const struct line *l)
{
	json_t *j = json_pack("{s:s, s:I}", "link", l->o->name, "seed", (json_int_t)l->o->seed);
	for (int d = 0; j && d < IMPAIR_NDIRS; d++) {
		json_t *c = impair_conf_json(&l->dir[d].dec.conf);
		if (c)
			json_object_set_new(c, "counters", counters_json(&l->dir[d].dec.cnt));
		json_object_set_new(j, impair_dir_name(d), c);
	}
	return j;
}

static void log_state(const struct line *l, const char *what)
{
	char e[160], i[160];
	fprintf(stderr, "info impair: %s link=%s egress=\"%s\" ingress=\"%s\"\n", what, l->o->name,
		impair_conf_format(&l->dir[0].dec.conf, e, sizeof(e)),
		impair_conf_format(&l->dir[1].dec.conf, i, sizeof(i)));
}

/* the sender's uid from SCM_CREDENTIALS; -1 when absent */
static long sender_uid(struct msghdr *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred cred;
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			return (long)cred.uid;
		}
	return -1;
}

static void control(struct line *l)
{
	char buf[CTL_MAX + 1];
	struct sockaddr_un from;
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} cmsg;
	struct iovec iov = { buf, CTL_MAX };
	struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cmsg.buf, .msg_controllen = sizeof(cmsg.buf) };
	ssize_t n = recvmsg(l->ctl, &m, MSG_DONTWAIT);
	socklen_t fromlen = m.msg_namelen;
	if (n < 0)
		return;
	buf[n] = '\0';
	/* an abstract name is open to every process of the namespace: only
	 * root and the line's own user may change it */
	long uid = sender_uid(&m);
	if (uid != 0 && uid != (long)geteuid()) {
		fprintf(stderr, "warn impair: control datagram from uid %ld dropped\n", uid);
		return;
	}
	json_error_t jerr;
	json_t *req = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr), *reply;
	struct impair_conf c[IMPAIR_NDIRS] = { l->dir[0].dec.conf, l->dir[1].dec.conf };
	struct impair_err err = { "", "" };
	if (!req) {
		reply = json_pack("{s:s+}", "error", "not JSON: ", jerr.text);
	} else if (impair_update(req, "", NULL, c, &err) < 0) {
		reply = json_pack("{s:s++}", "error", err.path, err.path[0] ? ": " : "", err.reason);
		fprintf(stderr, "warn impair: update refused: %s%s%s\n", err.path, err.path[0] ? ": " : "", err.reason);
	} else {
		bool changed = memcmp(c, (struct impair_conf[]){ l->dir[0].dec.conf, l->dir[1].dec.conf }, sizeof(c));
		for (int d = 0; d < IMPAIR_NDIRS; d++)
			impair_dir_set(&l->dir[d].dec, &c[d]);
		if (changed)
			log_state(l, "update");
		reply = state_json(l);
	}
	json_decref(req);
	char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	if (text && fromlen > offsetof(struct sockaddr_un, sun_path))
		sendto(l->ctl, text, strlen(text), MSG_DONTWAIT, (struct sockaddr *)&from, fromlen);
	free(text);
	json_decref(reply);
}

int impair_ctl(const char *dev_a, const char *request, int timeout_ms, char **reply)
{
	struct sockaddr_un to, self = { .sun_family = AF_UNIX };
	socklen_t tolen = ctl_addr(dev_a, &to);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;
	char *buf = NULL;

	*reply = NULL;
	if (fd < 0)
		return -errno;
	/* an autobound abstract address, for the answer */
	if (bind(fd, (struct sockaddr *)&self, sizeof(sa_family_t)) < 0 ||
	    sendto(fd, request, strlen(request), 0, (struct sockaddr *)&to, tolen) < 0) {
		rc = errno == ENOENT ? -ECONNREFUSED : -errno;
		goto out;
	}
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);
	if (r <= 0) {
		rc = r == 0 ? -ETIMEDOUT : -errno;
		goto out;
	}
	buf = malloc(CTL_MAX + 1);
	ssize_t n = buf ? recv(fd, buf, CTL_MAX, 0) : -1;
	if (n < 0) {
		rc = buf ? -errno : -ENOMEM;
		goto out;
	}
	buf[n] = '\0';
	*reply = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

/* --- the loop ------------------------------------------------------------ */

/* arms the timer SPIN_NS before the next due time; true when that is now
 * and the loop should poll instead of sleeping */
static bool next_wakeup(struct line *l, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (int d = 0; d < IMPAIR_NDIRS; d++) {
		struct line_dir *x = &l->dir[d];
		if (x->n && x->ring[x->head].due < next)
			next = x->ring[x->head].due;
		if (impair_dir_hold_deadline(&x->dec) < next)
			next = impair_dir_hold_deadline(&x->dec);
	}
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };
	if (next != UINT64_MAX && next <= now + SPIN_NS)
		return true;
	if (next != UINT64_MAX) {
		next -= SPIN_NS;
		its.it_value.tv_sec = (time_t)(next / 1000000000ULL);
		its.it_value.tv_nsec = (long)(next % 1000000000ULL);
	}
	timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	return false;
}

static void release_held(struct line_dir *d, uint64_t now)
{
	if (impair_dir_hold_deadline(&d->dec) > now)
		return;
	uint64_t due = impair_dir_release_held(&d->dec, now);
	ring_put(d, d->held.data, d->held.len, due, d->held_copies);
}

static void line_close(struct line *l)
{
	for (int d = 0; d < IMPAIR_NDIRS; d++)
		if (l->dir[d].ring)
			munmap(l->dir[d].ring, IMPAIR_QUEUE_PACKETS_MAX * sizeof(struct slot));
	int fds[] = { l->fd_a, l->fd_b, l->tfd, l->ctl, l->ep };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(l);
}

static int line_open(const struct impair_line_opts *o, struct line **out)
{
	struct line *l = calloc(1, sizeof(*l));
	struct sockaddr_un sun;
	int rc;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->o = o;
	l->fd_a = l->fd_b = l->tfd = l->ctl = l->ep = -1;
	for (int d = 0; d < IMPAIR_NDIRS; d++) {
		impair_dir_init(&l->dir[d].dec, &o->dir[d], o->seed, o->name, d);
		void *m = mmap(NULL, IMPAIR_QUEUE_PACKETS_MAX * sizeof(struct slot), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED) {
			rc = -errno;
			fprintf(stderr, "error impair: cannot map the ring: %s\n", strerror(-rc));
			goto err;
		}
		l->dir[d].ring = m;
	}
	if ((rc = packet_socket(o->dev_a, &l->fd_a)) || (rc = packet_socket(o->dev_b, &l->fd_b))) {
		fprintf(stderr, "error impair: packet socket on %s: %s\n", l->fd_a < 0 ? o->dev_a : o->dev_b,
			strerror(-rc));
		goto err;
	}
	l->dir[IMPAIR_EGRESS].in = l->fd_a;
	l->dir[IMPAIR_EGRESS].out = l->fd_b;
	l->dir[IMPAIR_INGRESS].in = l->fd_b;
	l->dir[IMPAIR_INGRESS].out = l->fd_a;
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	l->ctl = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->tfd < 0 || l->ctl < 0 || l->ep < 0) {
		rc = -errno;
		goto err;
	}
	int one = 1;
	if (setsockopt(l->ctl, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
	    bind(l->ctl, (struct sockaddr *)&sun, ctl_addr(o->dev_a, &sun)) < 0) {
		rc = -errno;
		fprintf(stderr, "error impair: control socket @" IMPAIR_CTL_PREFIX "%s: %s\n", o->dev_a,
			strerror(-rc));
		goto err;
	}
	int fds[] = { l->fd_a, l->fd_b, l->tfd, l->ctl };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
			rc = -errno;
			goto err;
		}
	}
	*out = l;
	return 0;
err:
	line_close(l);
	return rc;
}

#define IMPAIR_LINE_NICE (-10)

int impair_line_run(const struct impair_line_opts *o)
{
	struct line *l;
	sigset_t block, old;
	int rc = line_open(o, &l);
	if (rc)
		return rc;
	/* timers to the nanosecond: the default 50 us slack is a delay error */
	prctl(PR_SET_TIMERSLACK, 1UL);
	/* a line is a link: on a busy machine it must win the CPU against the
	 * lab's own processes, or their load shows up as delay (nice -10, not a
	 * real-time class: a line moving a Gbit/s busy must not starve a core) */
	if (setpriority(PRIO_PROCESS, 0, IMPAIR_LINE_NICE) < 0)
		fprintf(stderr, "warn impair: cannot raise the line's priority (nice %d): %s\n", IMPAIR_LINE_NICE,
			strerror(errno));
	/* SIGTERM and SIGINT only inside epoll_pwait, so none is lost between
	 * the check of impair_line_stop and the wait */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	log_state(l, "start");
	fprintf(stderr, "info impair: forwarding %s <-> %s seed=%llu\n", o->dev_a, o->dev_b, (unsigned long long)o->seed);
	if (o->ready_fd >= 0 && write(o->ready_fd, "", 1) != 1)
		rc = -EPIPE;
	bool spin = false;
	while (!rc && !impair_line_stop) {
		struct epoll_event evs[8];
		int n = epoll_pwait(l->ep, evs, 8, spin ? 0 : -1, &old);
		if (n < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == l->tfd) {
				uint64_t x;
				if (read(l->tfd, &x, sizeof(x)) < 0)
					x = 0;
			} else if (evs[i].data.fd == l->ctl) {
				control(l);
			}
		}
		/* both sockets every time: a busy one must not starve the other */
		receive(&l->dir[IMPAIR_EGRESS], l->stage);
		receive(&l->dir[IMPAIR_INGRESS], l->stage);
		uint64_t now = now_ns();
		for (int d = 0; d < IMPAIR_NDIRS; d++) {
			release_held(&l->dir[d], now);
			flush_due(&l->dir[d], now);
		}
		spin = next_wakeup(l, now_ns());
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	for (int d = 0; d < IMPAIR_NDIRS; d++) {
		const struct impair_counters *c = &l->dir[d].dec.cnt;
		fprintf(stderr,
			"info impair: %s link=%s packets=%llu passed=%llu lost=%llu queue_drops=%llu duplicated=%llu "
			"reordered=%llu other=%llu overflow=%llu\n",
			impair_dir_name(d), o->name, (unsigned long long)c->packets, (unsigned long long)c->passed,
			(unsigned long long)c->lost, (unsigned long long)c->queue_drops,
			(unsigned long long)c->duplicated, (unsigned long long)c->reordered,
			(unsigned long long)c->other, (unsigned long long)c->overflow);
	}
	line_close(l);
	return rc;
}
