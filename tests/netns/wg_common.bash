# Shared by tests/netns/wg_*.sh and tools/bench/wg.sh (sourced, not run).
#
# Two namespaces on a veth, each with a userspace WireGuard daemon of a given
# kind (meshwg or wireguard-go) configured with wg(8):
#
#   nmt-wg-PID-a                                  nmt-wg-PID-b
#   +----------------------------+                +----------------------------+
#   | wga<PID> 100.64.0.1/24      |                | wgb<PID> 100.64.0.2/24      |
#   |   udp 51820                |                |   udp 51820                |
#   | va 192.0.2.1/24 -----------+---- veth ------+- vb 192.0.2.2/24           |
#   +----------------------------+                +----------------------------+
#
# Interface names carry the pid because /var/run/wireguard/ is shared by all
# namespaces. Everything made here is undone by wg_cleanup (trap it).
# Kinds: meshwg (TUN offloads on, its default), meshwg-plaintun (meshwg
# --no-tun-offload), meshwg-1t (meshwg --threads 1; MESHWG_ARGS, e.g.
# "--threads 1", are added to the other meshwg kinds), wireguard-go (the reference of wgref.bash: WIREGUARD_GO,
# else the modern build in ../shared/anchors, else Debian's), wireguard-go-debian
# (Debian's, when the reference is another binary; WG_GO_DEBIAN is then set).
# Several pairs may live at once: wg_names TAG
# before each wg_pair gives it names of its own (nmt-wg-PIDTAG-a, wgaPIDTAG).

. "$(dirname "${BASH_SOURCE[0]}")/tap.bash"
. "$(dirname "${BASH_SOURCE[0]}")/wgref.bash"

BUILD=${BUILD:-build}
WG_PFX="nmt-wg-$$"
NS_A="$WG_PFX-a"
NS_B="$WG_PFX-b"
IF_A="wga$$"
IF_B="wgb$$"
WG_TMP=$(mktemp -d /tmp/nmt-wg.XXXXXX)
WG_PIDS=()
WG_NAMESPACES=()
WG_IFS=()

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# wg_names TAG: the names of the next pair (TAG: a few letters; interface
# names stay within IFNAMSIZ with any pid)
wg_names() {
  NS_A="$WG_PFX$1-a" NS_B="$WG_PFX$1-b" IF_A="wga$$$1" IF_B="wgb$$$1"
}

# stops the daemons and removes the namespaces (a next wg_pair may follow)
wg_teardown() {
  local p ns
  for p in "${WG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${WG_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  for ns in "${WG_NAMESPACES[@]}"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$ns" 2>/dev/null; done
  for p in "${WG_IFS[@]}"; do rm -f "/var/run/wireguard/$p.sock"; done
  WG_PIDS=() WG_NAMESPACES=() WG_IFS=()
}
wg_cleanup() { wg_teardown; rm -rf "$WG_TMP"; }

wg_ns_add() { ip netns add "$1" && WG_NAMESPACES+=("$1") && nsx "$1" ip link set lo up; }

# the plain topology, no tunnel yet
wg_topology() {
  wg_ns_add "$NS_A" && wg_ns_add "$NS_B" || return 1
  ip link add va netns "$NS_A" type veth peer name vb netns "$NS_B" || return 1
  nsx "$NS_A" ip addr add 192.0.2.1/24 dev va
  nsx "$NS_B" ip addr add 192.0.2.2/24 dev vb
  nsx "$NS_A" ip link set va up
  nsx "$NS_B" ip link set vb up
}

# wg_daemon NS KIND IFNAME: starts the daemon in the foreground (logging to
# $WG_TMP/IFNAME.log), waits for its UAPI socket; pid in WG_DAEMON_PID
wg_daemon() {
  local ns=$1 kind=$2 ifn=$3 cmd
  case "$kind" in
    meshwg) cmd=("$BUILD/meshwg" -f ${MESHWG_ARGS:-} "$ifn") ;;
    meshwg-plaintun) cmd=("$BUILD/meshwg" -f --no-tun-offload ${MESHWG_ARGS:-} "$ifn") ;;
    meshwg-1t) cmd=("$BUILD/meshwg" -f --threads 1 "$ifn") ;;
    wireguard-go) [ -n "$WG_GO" ] || { echo "$WG_GO_WHY" >&2; return 1; }
      cmd=(env LOG_LEVEL=error "$WG_GO" -f "$ifn") ;;
    wireguard-go-debian) [ -n "$WG_GO_DEBIAN" ] || { echo "no second wireguard-go on PATH" >&2; return 1; }
      cmd=(env LOG_LEVEL=error "$WG_GO_DEBIAN" -f "$ifn") ;;
    *) echo "unknown kind $kind" >&2; return 1 ;;
  esac
  ip netns exec "$ns" "${cmd[@]}" >"$WG_TMP/$ifn.log" 2>&1 &
  WG_DAEMON_PID=$!
  WG_PIDS+=("$WG_DAEMON_PID")
  WG_IFS+=("$ifn")
  for _ in $(seq 100); do
    [ -S "/var/run/wireguard/$ifn.sock" ] && nsx "$ns" wg show "$ifn" >/dev/null 2>&1 && return 0
    kill -0 "$WG_DAEMON_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "$kind $ifn did not come up:" >&2; cat "$WG_TMP/$ifn.log" >&2
  return 1
}

wg_keys() {
  KEY_A=$(wg genkey); KEY_B=$(wg genkey)
  PUB_A=$(wg pubkey <<<"$KEY_A"); PUB_B=$(wg pubkey <<<"$KEY_B")
  echo "$KEY_A" >"$WG_TMP/key_a"; echo "$KEY_B" >"$WG_TMP/key_b"
}

# wg_peer_a / wg_peer_b [extra wg set args...]: (re)adds the other side as peer
wg_peer_a() { nsx "$NS_A" wg set "$IF_A" peer "$PUB_B" allowed-ips 100.64.0.2/32 "$@"; }
wg_peer_b() { nsx "$NS_B" wg set "$IF_B" peer "$PUB_A" allowed-ips 100.64.0.1/32 "$@"; }

# wg_pair KIND_A KIND_B: topology, daemons, keys, both peers with endpoints
wg_pair() {
  wg_topology || return 1
  wg_daemon "$NS_A" "$1" "$IF_A" && PID_A=$WG_DAEMON_PID || return 1
  wg_daemon "$NS_B" "$2" "$IF_B" && PID_B=$WG_DAEMON_PID || return 1
  wg_keys
  nsx "$NS_A" wg set "$IF_A" private-key "$WG_TMP/key_a" listen-port 51820 || return 1
  nsx "$NS_B" wg set "$IF_B" private-key "$WG_TMP/key_b" listen-port 51820 || return 1
  wg_peer_a endpoint 192.0.2.2:51820 || return 1
  wg_peer_b endpoint 192.0.2.1:51820 || return 1
  nsx "$NS_A" ip addr add 100.64.0.1/24 dev "$IF_A"
  nsx "$NS_B" ip addr add 100.64.0.2/24 dev "$IF_B"
  nsx "$NS_A" ip link set "$IF_A" up && nsx "$NS_B" ip link set "$IF_B" up
}

# transfer FROM_NS TO_NS TO_IP FILE: sends FILE over TCP (to an IPv4 or IPv6
# address), 0 when the received copy has the same SHA-256
wg_transfer() {
  local from=$1 to=$2 ip=$3 file=$4 out="$WG_TMP/received" lp listen=TCP4-LISTEN dst
  dst="TCP4:$ip:5001"
  case "$ip" in *:*) listen=TCP6-LISTEN dst="TCP6:[$ip]:5001" ;; esac
  rm -f "$out"
  nsx "$to" timeout 120 socat -u "$listen:5001,reuseaddr" "OPEN:$out,creat,trunc" &
  lp=$!
  for _ in $(seq 50); do nsx "$to" ss -ltn | grep -q ':5001 ' && break; sleep 0.05; done
  nsx "$from" timeout 110 socat -u "OPEN:$file" "$dst" || { kill "$lp" 2>/dev/null; return 1; }
  wait "$lp" || return 1
  [ "$(sha256sum <"$file" | cut -d' ' -f1)" = "$(sha256sum <"$out" | cut -d' ' -f1)" ]
}

# the number of handshake initiations (type 1) NS has sent, from an nft counter
# installed by wg_count_init NS
wg_count_init() {
  nsx "$1" nft -f - <<'NFT'
table inet nmtwg {
  counter init_out { }
  chain out { type filter hook output priority 0; udp dport 51820 @th,64,8 1 counter name init_out; }
}
NFT
}
wg_inits_sent() { nsx "$1" nft list counter inet nmtwg init_out | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }
