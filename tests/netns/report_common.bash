# Helpers for the report_*.sh namespace tests (traversal-report, natcheck):
# namespaces and veths with the test's prefix and pid, TAP checks, background
# processes remembered by pid, and one cleanup for every exit path.
# shellcheck shell=bash
. "$(dirname "${BASH_SOURCE[0]}")/tap.bash"
. "$(dirname "${BASH_SOURCE[0]}")/wgref.bash"

BUILD=${BUILD:-build}
RP_PFX=${RP_PFX:-nmr$$}
RP_TMP=$(mktemp -d "/tmp/${RP_PFX}.XXXX")
umask 077
RP_NS=()
RP_PIDS=()

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

rp_ns() {	# rp_ns NAME: create namespace PFX-NAME with lo up
  local ns="$RP_PFX-$1"
  ip netns add "$ns" || return 1
  RP_NS+=("$ns")
  nsx "$ns" ip link set lo up
  nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
}

# rp_link NS1 IF1 ADDR1 NS2 IF2 ADDR2: a veth between two namespaces;
# ADDR "-" leaves that end without an address
rp_link() {
  ip link add "$2" netns "$RP_PFX-$1" type veth peer name "$5" netns "$RP_PFX-$4" || return 1
  [ "$3" != - ] && nsx "$RP_PFX-$1" ip addr add "$3" dev "$2"
  [ "$6" != - ] && nsx "$RP_PFX-$4" ip addr add "$6" dev "$5"
  nsx "$RP_PFX-$1" ip link set "$2" up
  nsx "$RP_PFX-$4" ip link set "$5" up
}

# rp_bg NAME NS CMD...: run in the background, log to RP_TMP/NAME.log
rp_bg() {
  local name=$1 ns=$2; shift 2
  ip netns exec "$RP_PFX-$ns" "$@" >"$RP_TMP/$name.log" 2>&1 &
  RP_PIDS+=($!)
}

# rp_capture NS IF FILE [FILTER]: tcpdump with nanosecond stamps; waits
# until it is listening
rp_capture() {
  local ns=$1 ifn=$2 file=$3 filter=${4:-udp} i
  ip netns exec "$RP_PFX-$ns" tcpdump -n -U -s 0 --immediate-mode --time-stamp-precision=nano -i "$ifn" \
    -w "$file" "$filter" >"$file.log" 2>&1 &
  RP_PIDS+=($!)
  for i in $(seq 50); do
    grep -q "listening on" "$file.log" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# rp_stop_captures: SIGTERM every tcpdump this test started, wait for them
rp_stop_captures() {
  local p rest=()
  for p in "${RP_PIDS[@]}"; do
    if [ "$(cat /proc/"$p"/comm 2>/dev/null)" = tcpdump ]; then
      kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null
    else
      rest+=("$p")
    fi
  done
  RP_PIDS=("${rest[@]}")
}

rp_cleanup() {
  local p ns
  for p in "${RP_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${RP_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  for ns in "${RP_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ -n "${RP_KEEP:-}" ]; then echo "# kept $RP_TMP"; else rm -rf "$RP_TMP"; fi
}

# rp_masquerade NS IF [random]: source NAT of everything leaving IF
rp_masquerade() {
  nsx "$RP_PFX-$1" nft -f - <<EOF
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "$2" masquerade $3
  }
}
EOF
}

# wireguard-go (the reference of wgref.bash) in the foreground (so it has a pid here) on interface IF
# with ADDR, listening on 51820, key file KEY
rp_wg() {
  local ns=$1 ifn=$2 addr=$3 key=$4 i
  rp_bg "wg-$ns" "$ns" env WG_PROCESS_FOREGROUND=1 "$WG_GO" -f "$ifn"
  for i in $(seq 50); do
    nsx "$RP_PFX-$ns" ip link show "$ifn" >/dev/null 2>&1 && break
    sleep 0.1
  done
  nsx "$RP_PFX-$ns" wg set "$ifn" listen-port 51820 private-key "$key" || return 1
  nsx "$RP_PFX-$ns" ip addr add "$addr" dev "$ifn"
  nsx "$RP_PFX-$ns" ip link set "$ifn" up
}
