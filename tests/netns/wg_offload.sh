#!/usr/bin/env bash
# TUN offloads (netio's NETIO_TUN_OFFLOAD, meshwg's default): the kernel hands
# meshwg TCP super-packets (TSO) that meshwg cuts into segments, and meshwg
# writes runs of TCP segments to the kernel as super-packets (coalesced
# writes). Through meshwg <-> meshwg and meshwg <-> wireguard-go (the
# reference of wgref.bash; the modern one offloads on its TUN too, Debian's
# does not: interop must not change), over IPv4 and IPv6 inside the
# tunnel: ping, iperf3 (one stream, then four at once), 20 MB both ways with
# SHA-256 compared; meshwg's counters (SIGUSR1) must show super-packets cut
# on the sending side and coalesced writes on the receiving side, none
# dropped. Then --no-tun-offload (counters stay 0), and a kernel that refuses
# TUNSETOFFLOAD (an LD_PRELOAD shim): one log line, a plain TUN, it works.
#
#   nmt-wg-PID-a: wgaPID 100.64.0.1, fd64::1 (KIND_A)  <== WireGuard over veth ==>
#   nmt-wg-PID-b: wgbPID 100.64.0.2, fd64::2 (KIND_B)      192.0.2.1 <-> 192.0.2.2
set -u
cd "$(dirname "$0")/../.."
. tests/netns/wg_common.bash
trap wg_cleanup EXIT; trap 'exit 1' INT TERM
wgref_note

head -c 20M /dev/urandom >"$WG_TMP/data"

# stats PID LOG: the stats line the daemon logs on SIGUSR1, into STATS
stats() {
  local pid=$1 log=$2 n before
  before=$(grep -c ' stats ' "$log")
  kill -USR1 "$pid"
  for _ in $(seq 50); do
    n=$(grep -c ' stats ' "$log")
    [ "$n" -gt "$before" ] && break
    sleep 0.05
  done
  STATS=$(grep ' stats ' "$log" | tail -n 1)
}
# field KEY: KEY's value in STATS
field() { tr ' ' '\n' <<<"$STATS" | sed -n "s/^$1=//p"; }

ping_ok() { nsx "$1" ping -q -c 3 -i 0.2 -w 15 "$2" >/dev/null 2>&1; }

# iperf_ok FROM TO IP [iperf3 args...]: 3 s of TCP, more than 10 Mbit/s arrived
iperf_ok() {
  local from=$1 to=$2 ip=$3 srv mbps
  shift 3
  nsx "$to" iperf3 -s -1 >/dev/null 2>&1 &
  srv=$!
  for _ in $(seq 50); do nsx "$to" ss -ltn | grep -q ':5201 ' && break; sleep 0.05; done
  mbps=$(nsx "$from" timeout 30 iperf3 -c "$ip" -t 3 -J "$@" 2>/dev/null |
    jq -r '.end.sum_received.bits_per_second / 1e6 | floor' 2>/dev/null)
  wait "$srv" 2>/dev/null
  echo "# iperf3 $from -> $ip $*: ${mbps:-none} Mbit/s"
  [ -n "$mbps" ] && [ "$mbps" != null ] && [ "$mbps" -gt 10 ]
}

# tunnel_v6: IPv6 inside the tunnel too
tunnel_v6() {
  wg_peer_a allowed-ips 100.64.0.2/32,fd64::2/128 && wg_peer_b allowed-ips 100.64.0.1/32,fd64::1/128 &&
    nsx "$NS_A" ip addr add fd64::1/64 dev "$IF_A" nodad && nsx "$NS_B" ip addr add fd64::2/64 dev "$IF_B" nodad
}

# counters PID LOG: "tun_rx_super tun_tx_super tun_rx_bad tun_offload" of a meshwg
counters() {
  stats "$1" "$2"
  echo "$(field tun_rx_super) $(field tun_tx_super) $(field tun_rx_bad) $(field tun_offload)"
}

for pair in meshwg:meshwg meshwg:wireguard-go; do
  KIND_A=${pair%%:*} KIND_B=${pair##*:}
  label="$KIND_A(A) <-> $KIND_B(B)"
  if ! wg_pair "$KIND_A" "$KIND_B" || ! tunnel_v6; then
    not_ok "$label: set up"
    wg_teardown
    continue
  fi
  check "$label: meshwg A says tun_offload=on" grep -q 'up .*tun_offload=on' "$WG_TMP/$IF_A.log"
  check "$label: ping A -> B" ping_ok "$NS_A" 100.64.0.2
  check "$label: ping B -> A over IPv6 in the tunnel" ping_ok "$NS_B" fd64::1
  check "$label: iperf3 A -> B" iperf_ok "$NS_A" "$NS_B" 100.64.0.2
  check "$label: iperf3 B -> A" iperf_ok "$NS_B" "$NS_A" 100.64.0.1
  check "$label: iperf3 A -> B, 4 streams at once" iperf_ok "$NS_A" "$NS_B" 100.64.0.2 -P 4
  check "$label: iperf3 A -> B over IPv6" iperf_ok "$NS_A" "$NS_B" fd64::2
  check "$label: 20 MB A -> B, checksums match" wg_transfer "$NS_A" "$NS_B" 100.64.0.2 "$WG_TMP/data"
  check "$label: 20 MB B -> A, checksums match" wg_transfer "$NS_B" "$NS_A" 100.64.0.1 "$WG_TMP/data"
  check "$label: 20 MB A -> B over IPv6, checksums match" wg_transfer "$NS_A" "$NS_B" fd64::2 "$WG_TMP/data"
  check "$label: 20 MB B -> A over IPv6, checksums match" wg_transfer "$NS_B" "$NS_A" fd64::1 "$WG_TMP/data"
  read -r rx tx bad off < <(counters "$PID_A" "$WG_TMP/$IF_A.log")
  echo "# meshwg A: tun_rx_super=$rx tun_tx_super=$tx tun_rx_bad=$bad tun_offload=$off"
  check "$label: A cut super-packets from its TUN ($rx)" test "${rx:-0}" -gt 100
  check "$label: A wrote coalesced runs to its TUN ($tx)" test "${tx:-0}" -gt 100
  check "$label: A dropped no read ($bad)" test "${bad:-1}" -eq 0
  if [ "$KIND_B" = meshwg ]; then
    read -r rx tx bad off < <(counters "$PID_B" "$WG_TMP/$IF_B.log")
    echo "# meshwg B: tun_rx_super=$rx tun_tx_super=$tx tun_rx_bad=$bad tun_offload=$off"
    check "$label: B cut super-packets ($rx) and wrote coalesced runs ($tx)" \
      test "${rx:-0}" -gt 100 -a "${tx:-0}" -gt 100
  fi
  if command -v ethtool >/dev/null; then
    check "$label: ethtool -k: tcp-segmentation-offload on" \
      bash -c "ip netns exec $NS_A ethtool -k $IF_A | grep -q '^tcp-segmentation-offload: on'"
  else
    skip "$label: ethtool -k (no ethtool here; the counters above show the super-packets)"
  fi
  check "$label: daemons still running" kill -0 "$PID_A" "$PID_B"
  wg_teardown
done

# --no-tun-offload: a plain TUN, nothing cut or coalesced
label="meshwg --no-tun-offload pair"
if wg_pair meshwg-plaintun meshwg-plaintun; then
  check "$label: ping" ping_ok "$NS_A" 100.64.0.2
  check "$label: 20 MB A -> B, checksums match" wg_transfer "$NS_A" "$NS_B" 100.64.0.2 "$WG_TMP/data"
  read -r rx tx bad off < <(counters "$PID_A" "$WG_TMP/$IF_A.log")
  check "$label: tun_offload=off, nothing cut or coalesced" \
    test "$off" = off -a "${rx:-1}" -eq 0 -a "${tx:-1}" -eq 0
else
  not_ok "$label: set up"
fi
wg_teardown

# a kernel that refuses TUNSETOFFLOAD: the shim fails that one ioctl
cat >"$WG_TMP/refuse.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <stdarg.h>
#include <sys/ioctl.h>
int ioctl(int fd, unsigned long req, ...)
{
	static int (*next)(int, unsigned long, ...);
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req == TUNSETOFFLOAD) {
		errno = EINVAL;
		return -1;
	}
	if (!next)
		next = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
	return next(fd, req, arg);
}
EOF
label="TUNSETOFFLOAD refused"
if cc -shared -fPIC -o "$WG_TMP/refuse.so" "$WG_TMP/refuse.c" -ldl &&
  LD_PRELOAD="$WG_TMP/refuse.so" ASAN_OPTIONS=verify_asan_link_order=0 wg_pair meshwg meshwg; then
  check "$label: meshwg started, one log line says so" \
    test "$(grep -c 'TUN offload refused, plain TUN' "$WG_TMP/$IF_A.log")" -eq 1
  check "$label: it came up with tun_offload=off" grep -q 'up .*tun_offload=off' "$WG_TMP/$IF_A.log"
  check "$label: ping" ping_ok "$NS_A" 100.64.0.2
  check "$label: 20 MB A -> B, checksums match" wg_transfer "$NS_A" "$NS_B" 100.64.0.2 "$WG_TMP/data"
  read -r rx tx bad off < <(counters "$PID_A" "$WG_TMP/$IF_A.log")
  check "$label: nothing cut or coalesced" test "$off" = off -a "${rx:-1}" -eq 0 -a "${tx:-1}" -eq 0
else
  not_ok "$label: set up"
fi
wg_teardown
tap_exit
