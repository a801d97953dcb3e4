/* natdisc: NAT behaviour discovery (RFC 5780 section 4) as a sans-I/O state
 * machine. It asks for a number of local UDP sockets, tells its driver what
 * to send from which socket to where, and takes the datagrams that arrive and
 * the current time; it never touches a socket or a clock. natcheck drives it
 * over real sockets; meshd runs the mapping, filtering and hairpin tests at
 * start and when its address changes.
 *
 * Tests, in the order they run (each only when selected):
 *   binding    RFC 5780 4.2, always: Binding to the primary address; the
 *              answer must carry OTHER-ADDRESS (else NATDISC_E_NO_RFC5780)
 *   mapping    4.3 tests II and III from the same socket: alternate IP with
 *              the primary port, then alternate IP and port
 *   filtering  4.4 tests I-III from a fresh socket: CHANGE-REQUEST IP+port,
 *              then port only
 *   hairpin    4.7: two sockets learn their mappings, then each sends to the
 *              other's mapping; one request arriving is enough
 *   ports      RFC 4787 4.2.1: a sample of fresh sockets, their local and
 *              mapped ports: preserved, sequential or random
 *   lifetime   4.6: binary search of the idle time after which a mapping is
 *              gone, probed with RESPONSE-PORT from a second socket
 * Every answer is also checked for MAPPED-ADDRESS != XOR-MAPPED-ADDRESS: a
 * generic ALG in the path rewrote the plain address (RFC 5780's ALG check). */
#ifndef NATMESH_NATDISC_H
#define NATMESH_NATDISC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "stun/stun.h"
#include "wire.h"

enum natdisc_test {
	NATDISC_TEST_MAPPING = 1 << 0,
	NATDISC_TEST_FILTERING = 1 << 1,
	NATDISC_TEST_HAIRPIN = 1 << 2,
	NATDISC_TEST_PORTS = 1 << 3,
	NATDISC_TEST_LIFETIME = 1 << 4,
	NATDISC_TEST_ALL = 0x1f,
};

/* "mapping,filtering,..." -> mask; 0 or -EINVAL (*bad names the word) */
int natdisc_parse_tests(const char *s, unsigned *mask, const char **bad);

/* Sockets the driver opens, all bound to the same local IP (the one that
 * routes to the server), each with its own port. */
enum natdisc_sock {
	NATDISC_SOCK_MAP,	/* binding and mapping tests */
	NATDISC_SOCK_FILT,	/* filtering tests: a mapping that has only seen the primary */
	NATDISC_SOCK_HAIR_A,
	NATDISC_SOCK_HAIR_B,
	NATDISC_SOCK_LIFE_X,	/* the mapping whose lifetime is measured */
	NATDISC_SOCK_LIFE_Y,	/* sends the RESPONSE-PORT probes */
	NATDISC_SOCK_PORTS,	/* first of cfg.port_samples sample sockets */
};

enum {
	NATDISC_PORT_SAMPLES_DEFAULT = 8,
	NATDISC_PORT_SAMPLES_MAX = 32,
	NATDISC_MAX_SOCKS = NATDISC_SOCK_PORTS + NATDISC_PORT_SAMPLES_MAX,
	/* RFC 4787 REQ-5: a UDP mapping lives at least 2 minutes */
	NATDISC_LIFETIME_MAX_DEFAULT_MS = 120000,
	NATDISC_LIFETIME_RES_DEFAULT_MS = 1000,
	/* RFC 8489 6.2.1 retransmission with LAN-sized values: a path through
	 * a NAT answers in well under 100 ms, and 5 transmissions (0, 0.1,
	 * 0.3, 0.7, 1.5 s) plus 16 RTO tell a filtered request from a lost one
	 * in 3.1 s; filtering tests expect that silence twice. */
	NATDISC_RTO_DEFAULT_MS = 100,
	NATDISC_RC_DEFAULT = 5,
	NATDISC_RM_DEFAULT = 16,
};

struct natdisc_cfg {
	union sockaddr_any server;	/* primary address */
	unsigned tests;			/* enum natdisc_test mask */
	uint32_t rto_ms, rc, rm;	/* STUN retransmission; 0: defaults above */
	int port_samples;		/* 0: default */
	uint32_t lifetime_max_ms;	/* 0: default */
	uint32_t lifetime_res_ms;	/* 0: default */
	/* The first trial's idle time (0, or not below the bound: the bound).
	 * A mapping that survives it is tried at the bound next; one that
	 * does not is searched below it. meshd starts at twice its default
	 * keepalive: a carrier NAT's short lifetime is found in half the time
	 * (about 1 minute for 15 s instead of 2.5), a long one costs one trial
	 * more. */
	uint32_t lifetime_first_ms;
};

/* RFC 4787 terms; the values are wire.h's, whose names natdisc_dep_name
 * and natdisc_ports_name give */
enum natdisc_dep {
	NATDISC_DEP_UNKNOWN = WIRE_DEP_UNKNOWN,
	NATDISC_DEP_EI = WIRE_DEP_EI,		/* endpoint-independent */
	NATDISC_DEP_AD = WIRE_DEP_AD,		/* address-dependent */
	NATDISC_DEP_APD = WIRE_DEP_APD,		/* address-and-port-dependent */
};

enum natdisc_ports {
	NATDISC_PORTS_UNKNOWN = WIRE_PORTS_UNKNOWN,
	NATDISC_PORTS_PRESERVE = WIRE_PORTS_PRESERVE,
	NATDISC_PORTS_SEQUENTIAL = WIRE_PORTS_SEQUENTIAL,
	NATDISC_PORTS_RANDOM = WIRE_PORTS_RANDOM,
};

enum natdisc_tri { NATDISC_NOT_TESTED, NATDISC_YES, NATDISC_NO, NATDISC_NOT_APPLICABLE };

/* Why discovery stopped early (result.error) or a test could not decide. */
enum natdisc_error {
	NATDISC_OK = 0,
	NATDISC_E_NO_ANSWER = 1,	/* test I: the server never answered */
	NATDISC_E_NO_RFC5780 = 2,	/* no OTHER-ADDRESS: not an RFC 5780 server */
	NATDISC_E_OTHER_SAME_IP = 3,	/* OTHER-ADDRESS has the primary's IP */
	NATDISC_E_SERVER_ERROR = 4,	/* an error response to a plain Binding request */
	NATDISC_E_CHANGE_IGNORED = 5,	/* CHANGE-REQUEST answered from the wrong address */
	NATDISC_E_NO_RESPONSE_PORT = 6,	/* RESPONSE-PORT rejected (lifetime untestable) */
	NATDISC_E_LOST = 7,		/* a request the test needed was never answered */
};

struct natdisc_port_sample {
	uint16_t local, mapped;
	bool answered;
};

struct natdisc_result {
	enum natdisc_error error;	/* fatal: discovery stopped */
	unsigned tests_done;		/* mask of the tests that reached a verdict */

	union sockaddr_any local;	/* SOCK_MAP's address */
	union sockaddr_any mapped1;	/* test I XOR-MAPPED-ADDRESS */
	union sockaddr_any mapped2;	/* mapping test II */
	union sockaddr_any mapped3;	/* mapping test III (only when II differs) */
	union sockaddr_any other;	/* OTHER-ADDRESS */
	union sockaddr_any origin;	/* RESPONSE-ORIGIN of test I, if sent */
	bool has_mapped2, has_mapped3, has_origin;
	bool nat;			/* mapped1 != local */

	enum natdisc_dep mapping, filtering;
	enum natdisc_error mapping_err, filtering_err;

	/* ALG: an answer whose MAPPED-ADDRESS differs from XOR-MAPPED-ADDRESS */
	bool alg;
	union sockaddr_any alg_mapped, alg_xor_mapped;

	enum natdisc_tri hairpin;
	union sockaddr_any hair_a, hair_b;	/* the two mappings tried */

	enum natdisc_ports ports;
	int nsamples;
	int preserved;				/* samples whose port was kept */
	uint32_t port_span;			/* smallest range holding all mapped ports */
	struct natdisc_port_sample samples[NATDISC_PORT_SAMPLES_MAX];

	enum natdisc_tri lifetime;	/* YES: measured, NOT_APPLICABLE: no NAT */
	enum natdisc_error lifetime_err;
	uint32_t lifetime_alive_ms;	/* longest idle time the mapping survived */
	uint32_t lifetime_dead_ms;	/* shortest it did not; 0: survived the bound */
	int lifetime_trials;
};

/* One datagram the driver is to send now. buf stays valid until the next
 * call into the machine. */
struct natdisc_send {
	int sock;
	union sockaddr_any dst;
	const uint8_t *buf;
	size_t len;
};

struct natdisc;

/* 0, -EINVAL (cfg) or -ENOMEM */
int natdisc_new(const struct natdisc_cfg *cfg, struct natdisc **out);
void natdisc_free(struct natdisc *d);
/* how many sockets (0 .. n-1, enum natdisc_sock) the driver opens: the
 * ones the selected tests use (NATDISC_TEST_MAPPING alone: 1). Datagrams
 * that are not answers to natdisc's own requests are ignored, so socket 0
 * can be one that also carries other traffic (meshd's WireGuard socket). */
int natdisc_nsocks(const struct natdisc *d);
/* the local address of socket sock; every socket before natdisc_start() */
void natdisc_set_local(struct natdisc *d, int sock, const union sockaddr_any *local);
/* starts at now_ms: 0, or -EINVAL when a local address is missing */
int natdisc_start(struct natdisc *d, uint64_t now_ms);
/* 1 with *out filled while something is due at now_ms; 0 when nothing is.
 * Call until it returns 0, then wait until natdisc_deadline() or a datagram. */
int natdisc_poll(struct natdisc *d, uint64_t now_ms, struct natdisc_send *out);
/* when natdisc_poll wants to run next; UINT64_MAX when done */
uint64_t natdisc_deadline(const struct natdisc *d);
/* a datagram that arrived on socket sock from src (parsed here: for a caller
 * whose sockets carry nothing but natdisc's own traffic) */
void natdisc_receive(struct natdisc *d, int sock, const union sockaddr_any *src,
		     const uint8_t *buf, size_t len, uint64_t now_ms);
/* the same for a message its caller parsed (a demultiplexer, STYLE.md 14) */
void natdisc_receive_msg(struct natdisc *d, int sock, const union sockaddr_any *src,
			 const struct stun_msg *m, uint64_t now_ms);
/* whether tid is one of natdisc's transactions (a response to it, or its own
 * request hairpinned back) */
bool natdisc_owns(const struct natdisc *d, const uint8_t tid[STUN_TID_LEN]);
bool natdisc_done(const struct natdisc *d);
const struct natdisc_result *natdisc_result(const struct natdisc *d);
/* what natdisc is doing now, for progress lines ("filtering test II") */
const char *natdisc_step(const struct natdisc *d);

const char *natdisc_dep_name(enum natdisc_dep d);
const char *natdisc_ports_name(enum natdisc_ports p);
const char *natdisc_strerror(enum natdisc_error e);
/* "full cone", "restricted cone", "port-restricted cone", "symmetric",
 * "no NAT", "no NAT, firewall"; NULL while mapping or filtering is unknown */
const char *natdisc_common_name(const struct natdisc_result *r);

#endif
