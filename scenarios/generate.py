# Writes the scenarios in this folder that share the lab of the agent
# scenarios (core router, two-address STUN, HTTPS meshsvc, relays, sites):
#   python3 scenarios/generate.py scenarios
# Each description says why theory expects its outcome.
import itertools, json, sys
out = sys.argv[1]

def meshd(extra=(), after=("relay/meshd",), svc="svc", stun=True):
    # relays are granted: a relay registers with the key that mints relays
    key = "${run}/relaykey" if "--relay" in extra else "${run}/regkey"
    argv = ["meshd"] + list(extra) + ["--service", "https://${ip:%s}:8443" % svc, "--reg-key-file", key,
            "--ca", "${ca}", "--hostname", "${node}", "--state-dir", "${run}/nodes/${node}/state"]
    if stun:
        argv += ["--stun", "${ip:stun/eth0}:3478", "--stun", "${ip:stun/eth1}:3478"]
    return {"after": list(after), "argv": argv, "ready": {"file": "${run}/nodes/${node}/run-meshd/mesh0.sock"}}

REGKEY = ("umask 077; set -e; m=\"meshctl --service https://${ip}:8443 --token-file ${run}/meshsvc.sqlite.admin-token --ca ${ca} -o json\"; "
          "vpc=$($m vpc create lab | jq -r .id); $m reg-key create --vpc $vpc | jq -r .secret > ${run}/regkey; "
          "$m reg-key create --vpc $vpc --relay | jq -r .secret > ${run}/relaykey; test -s ${run}/relaykey; test -s ${run}/regkey")

def base(name, desc, timeout=60, relays=("relay",), loss=0):
    L = (lambda d: dict(d, loss_percent=loss) if loss else d)
    doc = {"name": name, "description": desc, "timeout_s": timeout,
           "networks": [{"name": "internet", "cidr": "203.0.113.0/24"}, {"name": "internet2", "cidr": "198.51.100.0/24"}],
           "nodes": [
               {"name": "core", "kind": "router", "links": [{"network": "internet", "address": "203.0.113.254"},
                                                            {"network": "internet2", "address": "198.51.100.254"}]},
               {"name": "stun", "links": [L({"network": "internet", "address": "203.0.113.10"}),
                                          L({"network": "internet2", "address": "198.51.100.10"})],
                "processes": [{"argv": ["meshstun", "--listen", "${ip:stun/eth0}:3478", "--listen", "${ip:stun/eth1}:3478"],
                               "ready": {"udp": 3478}}]},
               {"name": "svc", "links": [L({"network": "internet", "address": "203.0.113.20"})],
                "routes": [{"dst": "198.51.100.0/24", "via": "core"}],
                "processes": [
                    {"argv": ["meshsvc", "--listen", "${ip}:8443", "--db", "${run}/meshsvc.sqlite",
                              "--tls-cert", "${tls_cert}", "--tls-key", "${tls_key}"], "ready": {"tcp": 8443}},
                    {"name": "regkey", "oneshot": True, "after": ["svc/meshsvc"], "argv": ["sh", "-c", REGKEY]}]}],
           "expectations": []}
    for k, r in enumerate(relays):
        doc["nodes"].append({"name": r, "links": [L({"network": "internet", "address": "203.0.113.%d" % (30 + k)})],
                             "routes": [{"dst": "198.51.100.0/24", "via": "core"}],
                             "processes": [meshd(["--relay"], after=["svc/regkey"])]})
    return doc

def node(doc):
    return {n["name"]: n for n in doc["nodes"]}

def site(doc, i, nat, extra=(), agents=1, loss=0, after=None):
    doc["networks"].append({"name": "site%d" % i, "cidr": "10.0.%d.0/24" % i})
    wan = {"network": "internet", "ifname": "wan", "address": "203.0.113.%d" % i}
    if loss:
        wan["loss_percent"] = loss
    doc["nodes"].append({"name": "gw%d" % i, "kind": "nat", "nat": nat,
                         "links": [wan, {"network": "site%d" % i, "ifname": "lan"}],
                         "routes": [{"dst": "198.51.100.0/24", "via": "core"}]})
    names = ["n%d" % i] if agents == 1 else ["n%d%s" % (i, c) for c in "ab"[:agents]]
    for nm in names:
        doc["nodes"].append({"name": nm, "links": [{"network": "site%d" % i}],
                             "routes": [{"dst": "default", "via": "gw%d" % i}],
                             "processes": [meshd(extra, after=after or [r + "/meshd" for r in relays_of(doc)])]})
    return names

def relays_of(doc):
    return [n["name"] for n in doc["nodes"] if n.get("processes") and "--relay" in n["processes"][0]["argv"]]

def path(a, b, p, ms):
    return [{"ping": [a, b], "path": p, "within_ms": ms}, {"ping": [b, a], "path": p, "within_ms": ms}]

def endpoint(a, b, regex, name):
    return {"name": name, "node": a, "within_ms": 3000,
            "command": "meshctl peers -o json | jq -r '.peers[] | select(.name == \"%s\") | .endpoint'" % b,
            "expect_output": regex}

def save(doc):
    open("%s/%s.json" % (out, doc["name"]), "w").write(json.dumps(doc, indent=1) + "\n")

DIRECT_MS, RELAY_MS = 4000, 6000   # meshd's direct timeout is 3 s

# --- the preset pair matrix
presets = ["full-cone", "restricted-cone", "port-restricted-cone", "symmetric"]
short = {"full-cone": "fc", "restricted-cone": "rc", "port-restricted-cone": "prc", "symmetric": "sym"}
why={
 ("full-cone","full-cone"):"Both NATs filter nothing once mapped (endpoint-independent filtering), so the first handshake initiation to the peer's reflexive address gets in: direct.",
 ("full-cone","restricted-cone"):"The full-cone side lets anything in on its mapping; the restricted-cone side lets in its peer's IP once it has sent to it, which the simultaneous handshakes do: direct.",
 ("full-cone","port-restricted-cone"):"The full-cone side lets anything in; the port-restricted-cone side has a fixed mapping (EIM) and opens for the full-cone's exact address and port when it sends its own initiation there: direct.",
 ("full-cone","symmetric"):"The symmetric side gets a new public port towards the full-cone peer, but full-cone filtering accepts packets from any port, and WireGuard answers the address the initiation came from, which the symmetric NAT lets back in: direct.",
 ("restricted-cone","restricted-cone"):"Both mappings are endpoint-independent and both filters open for the peer's IP once each side has sent to it: the simultaneous initiations meet: direct.",
 ("restricted-cone","port-restricted-cone"):"Both mappings are endpoint-independent, so each side's reflexive address is the one the peer sees; sending to it opens each filter (IP, resp. IP and port): direct.",
 ("restricted-cone","symmetric"):"The symmetric side uses a new public port towards the restricted-cone peer, but the restricted-cone filter checks only the IP, which it opened by sending to the symmetric side's reflexive address (same IP): direct.",
 ("port-restricted-cone","port-restricted-cone"):"Both mappings are endpoint-independent: each side sends to the address the peer's STUN answer named, which opens its own filter for exactly that address and port: direct.",
 ("port-restricted-cone","symmetric"):"The symmetric side's packets arrive from a new public port the port-restricted-cone side never sent to, and the port-restricted-cone side's packets go to the symmetric side's STUN-learned port, which only accepts the STUN server: no direct path, so traffic goes via the relay.",
 ("symmetric","symmetric"):"Each side reaches the other from a port the peer has never seen, and each filter admits only the exact address and port it sent to: no direct path, so traffic goes via the relay.",
}
for x, y in itertools.combinations_with_replacement(presets, 2):
    p = "relayed" if (x, y) in [("port-restricted-cone", "symmetric"), ("symmetric", "symmetric")] else "direct"
    d = base("pair-%s-%s" % (short[x], short[y]), "n1 behind %s, n2 behind %s: %s" % (x, y, why[(x, y)]))
    site(d, 1, x)
    site(d, 2, y)
    d["expectations"] = path("n1", "n2", p, DIRECT_MS if p == "direct" else RELAY_MS)
    save(d)

# --- two peers on one LAN
d = base("lan-local", "Two agents on one site LAN behind a port-restricted-cone NAT. They share a reflexive IP, so each tries the other's local endpoint first, and the handshake completes over the LAN: direct, and the endpoint in use is the peer's private address, not the NAT's.")
site(d, 1, "port-restricted-cone", agents=2)
d["expectations"] = path("n1a", "n1b", "direct", DIRECT_MS) + [
    endpoint("n1a", "n1b", r"^10\.0\.1\.[0-9]+:[0-9]+$", "n1a reaches n1b at its LAN address"),
    endpoint("n1b", "n1a", r"^10\.0\.1\.[0-9]+:[0-9]+$", "n1b reaches n1a at its LAN address")]
save(d)

# --- two sites behind one NAT, hairpinning on and off
for hp in (True, False):
    why = ("With hairpinning the gateway turns a packet from one site to its own public address and mapped port back inward, "
           "with the sender's public mapping as its source: the peers meet at their reflexive endpoints: direct, via 203.0.113.1."
           if hp else
           "Without hairpinning a packet to the gateway's own public address from inside goes nowhere, and the sites' private "
           "addresses do not route to each other: no direct path, so traffic goes via the relay.")
    d = base("hairpin-" + ("on" if hp else "off"),
             "Two sites (10.0.1.0/24 and 10.0.2.0/24) behind one port-restricted-cone NAT with hairpinning %s; the gateway "
             "forwards nothing between the sites except hairpinned (DNATed) traffic, so local endpoints fail. " % ("on" if hp else "off") + why)
    d["networks"] += [{"name": "site1", "cidr": "10.0.1.0/24"}, {"name": "site2", "cidr": "10.0.2.0/24"}]
    iso = ("nft add table inet siteiso && nft add chain inet siteiso between '{ type filter hook forward priority 10; }' && "
           "nft add rule inet siteiso between 'iifname { lan1, lan2 } oifname { lan1, lan2 } ct status & dnat == 0 drop'")
    d["nodes"].append({"name": "gw1", "kind": "nat", "nat": {"preset": "port-restricted-cone", "hairpinning": hp},
                       "wan": "wan",
                       "links": [{"network": "internet", "ifname": "wan", "address": "203.0.113.1"},
                                 {"network": "site1", "ifname": "lan1"}, {"network": "site2", "ifname": "lan2"}],
                       "routes": [{"dst": "198.51.100.0/24", "via": "core"}],
                       "processes": [{"name": "isolate", "oneshot": True, "argv": ["sh", "-c", iso]}]})
    for i in (1, 2):
        d["nodes"].append({"name": "n%d" % i, "links": [{"network": "site%d" % i}],
                           "routes": [{"dst": "default", "via": "gw1"}],
                           "processes": [meshd(after=["relay/meshd", "gw1/isolate"])]})
    d["expectations"] = [{"name": "the sites do not route to each other", "ping": ["n1", "n2"], "reachable": False, "count": 2, "within_ms": 1500}]
    d["expectations"] += path("n1", "n2", "direct" if hp else "relayed", DIRECT_MS if hp else RELAY_MS)
    if hp:
        d["expectations"].append(endpoint("n1", "n2", r"^203\.0\.113\.1:[0-9]+$", "n1 reaches n2 at the gateway's public address"))
    # the agent's own NAT discovery (RFC 5780; hairpinning: 4.7) must find
    # what the gateway declares; it needs a server with RFC 5780 support
    node(d)["stun"]["processes"][0]["argv"].append("--rfc5780")
    d["expectations"].append({"name": "n1 finds hairpinning %s in its NAT discovery" % ("on" if hp else "off"),
                              "node": "n1", "within_ms": 15000,
                              "command": "meshctl status -o json | jq -r .nat.hairpinning",
                              "expect_output": "^%s$" % ("true" if hp else "false")})
    save(d)

# --- CGNAT double NAT
d = base("cgnat-agents", "n1 sits behind a full-cone home gateway inside a carrier's port-restricted-cone CGNAT (double NAT, composite EIM/APDF); n2 behind a full-cone NAT, n3 behind a symmetric NAT. n1-n2: n2 admits anything on its mapping and n1's carrier mapping is endpoint-independent, so n2's answer comes back through both NATs: direct. n1-n3: like port-restricted-cone with symmetric, n3's packets come from a port the CGNAT never sent to: via the relay.")
d["networks"] += [{"name": "carrier", "cidr": "100.64.100.0/24"}, {"name": "home", "cidr": "192.168.1.0/24"}]
d["nodes"] += [
    {"name": "cgn", "kind": "nat", "nat": "port-restricted-cone",
     "links": [{"network": "internet", "ifname": "wan", "address": "203.0.113.9"}, {"network": "carrier", "ifname": "lan"}],
     "routes": [{"dst": "198.51.100.0/24", "via": "core"}]},
    {"name": "homegw", "kind": "nat", "nat": "full-cone",
     "links": [{"network": "carrier", "ifname": "wan"}, {"network": "home", "ifname": "lan"}],
     "routes": [{"dst": "default", "via": "cgn"}]},
    {"name": "n1", "links": [{"network": "home"}], "routes": [{"dst": "default", "via": "homegw"}],
     "processes": [meshd()]}]
site(d, 2, "full-cone")
site(d, 3, "symmetric")
d["expectations"] = path("n1", "n2", "direct", DIRECT_MS) + path("n1", "n3", "relayed", RELAY_MS) + [
    endpoint("n2", "n1", r"^203\.0\.113\.9:[0-9]+$", "n2 reaches n1 at the carrier's public address")]
save(d)

# --- relay-only
d = base("relay-only", "n1 runs meshd --relay-only; n1 and n2 sit behind full-cone NATs, which would meet directly. --relay-only keeps n1 from trying, and n2's initiations find no direct peer at n1: both see the other via the relay, and the ping crosses the relay.")
site(d, 1, "full-cone", extra=["--relay-only"])
site(d, 2, "full-cone")
d["expectations"] = path("n1", "n2", "relayed", RELAY_MS) + [
    {"name": "n2 still relayed after another direct timeout", "sleep_ms": 3000}] + path("n2", "n1", "relayed", 1000)
save(d)

# --- service restart during traffic
bg = ("until ip=$(meshctl peers -o json | jq -re '.peers[] | select(.name == \"n2\" and .path == \"direct\") | .tunnel_ip'); "
      "do sleep 0.1; done; until ping -c 1 -W 1 -q $ip > /dev/null; do :; done; exec ping -n -i 0.2 -W 1 $ip > ${run}/bgping.txt 2>&1")
holes = ("f=${run}/bgping.txt; got=$(grep -c 'icmp_seq=' $f); last=$(grep -o 'icmp_seq=[0-9]*' $f | tail -1 | cut -d= -f2); "
         "echo \"$got of $last answered\"; test \"$got\" -ge 30 && test \"$got\" -eq \"$last\"")
d = base("service-restart", "n1 (full-cone) and n2 (port-restricted-cone) are direct; n1 pings n2 through the tunnel every 200 ms in the background while meshsvc is stopped for 3 s and started again. The data plane does not depend on the service: no ping may be lost, the agents resync with the restarted service (same SQLite file).")
site(d, 1, "full-cone")
site(d, 2, "port-restricted-cone")
node(d)["n1"]["processes"].append({"name": "bgping", "after": ["n1/meshd", "n2/meshd"], "argv": ["sh", "-c", bg],
                                     "ready": {"command": "grep -q icmp_seq= ${run}/bgping.txt"}})
d["expectations"] = path("n1", "n2", "direct", DIRECT_MS) + [
    {"sleep_ms": 2000}, {"stop": "svc/meshsvc"}, {"sleep_ms": 3000}, {"start": "svc/meshsvc"},
    {"name": "the agents resync with the service", "node": "n1", "within_ms": 15000,
     "command": "meshctl status -o json | jq -e '.service.reachable == true'"},
    {"sleep_ms": 2000}, {"stop": "n1/bgping"},
    {"name": "no ping lost while the service was away", "node": "n1", "command": holes, "expect_output": "answered"}]
save(d)

# --- relay failover
d = base("relay-failover", "n1 and n2 sit behind symmetric NATs, so their traffic goes via a relay; two relays serve the VPC and each agent uses the one with the lowest handshake round trip. The relay n1 uses (meshctl status: relay_in_use) is stopped: n1 must move to the other within 10 s (three missed 2 s probes), with pings through the tunnel answered both ways.", relays=("relay1", "relay2"))
site(d, 1, "symmetric")
site(d, 2, "symmetric")
d["expectations"] = path("n1", "n2", "relayed", RELAY_MS) + [
    {"name": "the relay n1 uses", "node": "n1", "expect_output": "^relay[12]$",
     "command": "meshctl status -o json | jq -re .relay_in_use > ${run}/inuse; cat ${run}/inuse"},
    {"stop": "relay1/meshd", "if": "grep -qx relay1 ${run}/inuse", "node": "n1"},
    {"stop": "relay2/meshd", "if": "grep -qx relay2 ${run}/inuse", "node": "n1"}] + path("n1", "n2", "relayed", 10000) + [
    {"name": "n1 moved to the other relay", "node": "n1", "expect_output": "^relay[12]$",
     "command": "r=$(meshctl status -o json | jq -r .relay_in_use); echo $r; test \"$r\" != \"$(cat ${run}/inuse)\""}]
save(d)

# --- 5% loss with agents
d = base("loss-agents", "5% random loss at both ends of every internet link (STUN, service, relay and both gateways' WAN), so about 19% of the datagrams between the sites are lost each way. n1 (full-cone) and n2 (port-restricted-cone) still register over HTTPS, discover their mappings and meet directly: handshake initiations are repeated until one completes.", loss=5)
for n in d["nodes"]:
    if n["name"].startswith("relay"):
        n["links"][0]["loss_percent"] = 5
site(d, 1, "full-cone", loss=5)
site(d, 2, "port-restricted-cone", loss=5)
d["expectations"] = path("n1", "n2", "direct", 10000)
save(d)

# --- demo
d = base("demo", "Three sites behind a full-cone (n1), a port-restricted-cone (n2) and a symmetric NAT (n3); meshsvc over HTTPS, meshstun on two addresses, a relay; the real agents. Theory: n1-n2 direct (both mappings endpoint-independent), n1-n3 direct (the full-cone side admits the symmetric side's new port), n2-n3 via the relay (the symmetric side's packets come from a port the port-restricted-cone side never sent to).", timeout=60)
site(d, 1, "full-cone")
site(d, 2, "port-restricted-cone")
site(d, 3, "symmetric")
d["expectations"] = path("n1", "n2", "direct", DIRECT_MS) + path("n1", "n3", "direct", DIRECT_MS) + path("n2", "n3", "relayed", RELAY_MS)
save(d)

# --- impairments (issue 17): delay per link and direction, changed during the run
def rtt(node, lo, hi):
    """node pings srv 5 times: the minimum round trip >= lo ms (exact: a packet never arrives
    early), the median < hi ms (it stands one late wake-up on a busy machine)"""
    # retried for up to 5 s: a busy machine's late wake-up may push one median out
    return {"name": "%s: round trip %d..%d ms" % (node, lo, hi), "node": node, "expect_output": "^min", "within_ms": 5000,
            "command": "ping -n -c 5 -i 0.1 ${ip:srv} | sed -n 's/.*time=\\([0-9.]*\\) ms/\\1/p' | sort -n | "
                       "awk '{ a[NR] = $1 } END { print \"min\", a[1], \"median\", a[3]; exit !(NR == 5 && a[1] >= %d && a[3] < %d) }'" % (lo, hi)}
d = {"name": "impair-delay", "timeout_s": 30, "seed": 17,
     "description": "Delay lines on two hosts' links, no agents: near is 5 ms from the internet each way, far 75 ms with 2 ms of uniform jitter. Their round trips to srv must show it (a packet never arrives early, so the minimum is exact); then impair steps swap the delays during the run and the round trips follow.",
     "networks": [{"name": "internet", "cidr": "198.51.100.0/24"}],
     "nodes": [{"name": "srv", "links": [{"network": "internet", "address": "198.51.100.10"}]},
               {"name": "near", "links": [{"network": "internet", "address": "198.51.100.20",
                                           "egress": {"delay_ms": 5}, "ingress": {"delay_ms": 5}}]},
               {"name": "far", "links": [{"network": "internet", "address": "198.51.100.30",
                                          "egress": {"delay_ms": 75, "jitter_ms": 2}, "ingress": {"delay_ms": 75, "jitter_ms": 2}}]}],
     "expectations": [rtt("near", 10, 13), rtt("far", 146, 156),
                      {"impair": "near", "delay_ms": 75}, {"impair": "far", "delay_ms": 5, "jitter_ms": 0},
                      rtt("near", 150, 153), rtt("far", 10, 13)]}
save(d)

# --- security groups (issue 16): clients -> web tcp/80, web -> db tcp/5432
ADMIN = "m=\"meshctl --service https://${ip:svc}:8443 --token-file ${run}/meshsvc.sqlite.admin-token --ca ${ca} -o json\"; "
DEVID = "id() { $m device list | jq -r --arg h \"$1\" 'map(select(.hostname == $h)) | .[0].id'; }; "
GROUPS = (ADMIN + DEVID + "set -e; until [ \"$($m device list | jq 'length')\" -ge 5 ]; do sleep 0.2; done; "
          "vpc=$($m vpc list | jq -r '.[0].id'); "
          "$m security-group create --vpc $vpc --name clients --outbound '[{\"ip_protocol\":\"any\"}]' > /dev/null; "
          "$m security-group create --vpc $vpc --name web --outbound '[{\"ip_protocol\":\"any\"}]' "
          "--inbound '[{\"ip_protocol\":\"tcp\",\"from_port\":80,\"to_port\":80,\"groups\":[\"clients\"]}]' > /dev/null; "
          "$m security-group create --vpc $vpc --name db --outbound '[{\"ip_protocol\":\"any\"}]' "
          "--inbound '[{\"ip_protocol\":\"tcp\",\"from_port\":5432,\"to_port\":5432,\"groups\":[\"web\"]}]' > /dev/null; "
          "for d in n1:clients n2:web n3:db n4:clients; do $m device update $(id $(echo $d | cut -d: -f1)) --security-group $(echo $d | cut -d: -f2) > /dev/null; done; "
          "for n in n1 n2 n3 n4; do $m device list | jq -r --arg h $n 'map(select(.hostname == $h)) | .[0].tunnel_ip' > ${run}/ip-$n; done")
LISTEN = "for p in 80 22 5432; do socat TCP-LISTEN:$p,reuseaddr,fork SYSTEM:'echo ok-${node}' & done; wait"

def tcp(a, b, port, ok, name, ms=8000, path_=None):
    chk = ""
    if path_:
        chk = "meshctl peers -o json | jq -e '.peers[] | select(.name == \"%s\") | .path == \"%s\"' > /dev/null && " % (b, path_)
    conn = "socat -T2 -u TCP:$(cat ${run}/ip-%s):%d,connect-timeout=1 - 2>/dev/null" % (b, port)
    if ok:
        return {"name": name, "node": a, "within_ms": ms, "command": chk + conn, "expect_output": "^ok-%s$" % b}
    return {"name": name, "node": a, "within_ms": ms,
            "command": chk + "if %s | grep -q ok-; then echo CONNECTED; else echo blocked; fi" % conn,
            "expect_output": "^blocked$"}

def sees(a, b, yes, name, ms=3000):
    return {"name": name, "node": a, "within_ms": ms,
            "command": "meshctl peers -o json | jq -r '.peers[].name' | grep -qx %s && echo listed || echo absent" % b,
            "expect_output": "^%s$" % ("listed" if yes else "absent")}

PROBE = ("until [ -e ${run}/probe-go ]; do sleep 0.1; done; ip=$(cat ${run}/ip-n2); while [ ! -e ${run}/probe-stop ]; do "
         "socat -T1 -u TCP:$ip:22,connect-timeout=0.3 - 2>/dev/null | grep -q ok- && echo port22-CONNECTED; "
         "socat -T1 -u TCP:$ip:80,connect-timeout=0.3 - 2>/dev/null | grep -q ok- && echo port80-ok; sleep 0.05; done > ${run}/probe.txt; exec sleep 3600")
d = base("policy-groups", "Security groups: clients (n1 behind a full-cone NAT, n4 behind a symmetric NAT), web (n2, port-restricted-cone) and db (n3, symmetric). web admits tcp/80 from clients, db admits tcp/5432 from web only, clients admit nothing. n1-n2 meet directly, n4-n2 and n2-n3 only via the relay (port-restricted-cone with symmetric). Each allowed TCP connection succeeds and each forbidden one fails on both kinds of path; a client never learns of db until the admin opens db to clients; a device moved to web is reachable on tcp/80 within 2 s; a probe across a restart of n2's meshd never reaches its tcp/22.", timeout=120)
site(d, 1, "full-cone")
site(d, 2, "port-restricted-cone")
site(d, 3, "symmetric")
site(d, 4, "symmetric")
nodes = node(d)
nodes["svc"]["processes"].append({"name": "groups", "oneshot": True, "after": ["n1/meshd", "n2/meshd", "n3/meshd", "n4/meshd"],
                                  "argv": ["sh", "-c", GROUPS]})
for n in ("n1", "n2", "n3", "n4"):
    nodes[n]["processes"].append({"name": "listen", "argv": ["sh", "-c", LISTEN], "ready": {"tcp": 80}})
nodes["n1"]["processes"].append({"name": "probe", "after": ["svc/groups"], "argv": ["sh", "-c", PROBE]})
d["expectations"] = [
    {"name": "the groups are set up", "node": "svc", "within_ms": 20000, "command": "test -s ${run}/ip-n4 && cat ${run}/ip-n4",
     "expect_output": "^100\\."},
    tcp("n1", "n2", 80, True, "client n1 reaches web tcp/80 (direct)", path_="direct"),
    tcp("n4", "n2", 80, True, "client n4 reaches web tcp/80 (via the relay)", path_="relayed"),
    tcp("n2", "n3", 5432, True, "web reaches db tcp/5432 (via the relay)", path_="relayed"),
    tcp("n1", "n2", 22, False, "client n1 cannot reach web tcp/22 (direct)", path_="direct"),
    tcp("n4", "n2", 22, False, "client n4 cannot reach web tcp/22 (via the relay)", path_="relayed"),
    tcp("n3", "n2", 80, False, "db cannot reach web tcp/80 (not a client; via the relay)", path_="relayed"),
    tcp("n2", "n1", 80, False, "web cannot reach client n1 (clients admit nothing; direct)", path_="direct"),
    {"name": "web cannot ping client n1", "node": "n2", "within_ms": 4000,
     "command": "if ping -c 2 -W 1 -q $(cat ${run}/ip-n1) > /dev/null; then echo answered; else echo blocked; fi",
     "expect_output": "^blocked$"},
    {"name": "the relay dropped what the groups forbid", "node": "relay", "command": "meshctl status -o json | jq -r .policy.relay_policy_drops",
     "expect_output": "^[1-9][0-9]*$"},
    sees("n1", "n3", False, "client n1 never lists db"),
    sees("n1", "n4", False, "clients do not see each other"),
    tcp("n1", "n3", 5432, False, "client n1 cannot reach db tcp/5432", ms=3000),
    {"name": "the admin opens db tcp/5432 to clients", "node": "svc",
     "command": ADMIN + "set -e; g=$($m security-group list | jq -r 'map(select(.name == \"db\")) | .[0].id'); "
                "$m security-group update $g --inbound '[{\"ip_protocol\":\"tcp\",\"from_port\":5432,\"to_port\":5432,\"groups\":[\"web\",\"clients\"]}]' | jq -r .name",
     "expect_output": "^db$"},
    sees("n1", "n3", True, "client n1 lists db within 2 s", ms=2000),
    tcp("n1", "n3", 5432, True, "client n1 reaches db tcp/5432 within 2 s", ms=2000),
    {"name": "the admin moves n4 into web", "node": "svc",
     "command": ADMIN + DEVID + "set -e; $m device update $(id n4) --security-group web > /dev/null; echo moved", "expect_output": "^moved$"},
    tcp("n1", "n4", 80, True, "client n1 reaches n4 tcp/80 within 2 s", ms=2000),
    {"name": "probe armed", "node": "n1", "command": "touch ${run}/probe-go; sleep 1; grep -c port80-ok ${run}/probe.txt",
     "expect_output": "^[1-9]"},
    {"restart": "n2/meshd"},
    tcp("n1", "n2", 80, True, "web answers tcp/80 again after its meshd restarted", ms=15000),
    {"sleep_ms": 1000},
    {"name": "no probe reached tcp/22 across the restart", "node": "n1",
     "command": "touch ${run}/probe-stop; sleep 1; f=${run}/probe.txt; echo \"$(grep -c port80-ok $f) tcp/80, $(grep -c port22-CONNECTED $f) tcp/22\"",
     "expect_output": "^[1-9][0-9]* tcp/80, 0 tcp/22$"},
]
save(d)

# --- a rogue member (issue 15): the attacks of tests/netns/sec_rogue.sh in a lab
ROGUE_API = ("S=https://${ip:svc}:8443; T=$(cat ${run}/nodes/${node}/state/device.token); K=$(cat ${run}/regkey); "
             "req() { curl -s -m 5 --cacert ${ca} -o ${run}/rogue-out.json -w '%{http_code}' -H \"Authorization: Bearer $1\" "
             "-H 'Content-Type: application/json' -X \"$2\" -d \"$4\" \"$S$3\"; }; "
             "get() { curl -s -m 5 --cacert ${ca} -H \"Authorization: Bearer $T\" $S$1; }; "
             "V=$(get /api/devices/$(jq -r .device_id ${run}/nodes/${node}/state/state.json) | jq -r .vpc_id); "
             "dev() { get /api/vpcs/$V/devices | jq -r --arg h $1 --arg f $2 '.devices | map(select(.hostname == $h)) | .[0][$f]'; }; ")
def rogue(name, cmd, out):
    return {"name": name, "node": "rogue", "within_ms": 5000, "command": ROGUE_API + cmd, "expect_output": out}
def own_token_ok(n):
    return {"name": "%s's token still answers 200" % n, "node": n, "within_ms": 3000,
            "command": "T=$(cat ${run}/nodes/%s/state/device.token); id=$(jq -r .device_id ${run}/nodes/%s/state/state.json); "
                       "curl -s -m 5 --cacert ${ca} -o /dev/null -w '%%{http_code}' -H \"Authorization: Bearer $T\" "
                       "https://${ip:svc}:8443/api/devices/$id" % (n, n), "expect_output": "^200$"}
lossy = ("f=${run}/bgping.txt; got=$(grep -c 'icmp_seq=' $f); last=$(grep -o 'icmp_seq=[0-9]*' $f | tail -1 | cut -d= -f2); "
         "echo \"$got of $last answered\"; test \"$got\" -ge 20 && test $((got * 100)) -ge $((last * 99))")
d = base("rogue-member", "A rogue device registered with the VPC's own key (on its own site, behind a full-cone NAT) attacks two honest agents (n1 full-cone, n2 port-restricted-cone, direct) while n1 pings n2 every 200 ms: it claims relaying (a registration with relay:true and a PATCH: 403, only the admin grants relays), sends n1 packets with n2's tunnel address as inner source (n1's data plane drops them: the source is not the rogue's own, counted as spoofed), registers the honest agents' public keys with the VPC's key (409: a registered key needs its device's token or a proof of its private key) and aims its endpoints at loopback, link-local, multicast and broadcast (400). The honest agents keep their tunnel, their tokens and their traffic: at most 1% of the pings lost.", timeout=90)
site(d, 1, "full-cone")
site(d, 2, "port-restricted-cone")
site(d, 3, "full-cone")
nodes = node(d)
nodes["n3"]["name"] = "rogue"
nodes["gw3"]["links"][1]["ifname"] = "lan"
nodes["n1"]["processes"].append({"name": "bgping", "after": ["n1/meshd", "n2/meshd"], "argv": ["sh", "-c", bg],
                                 "ready": {"command": "grep -q icmp_seq= ${run}/bgping.txt"}})
d["expectations"] = path("n1", "n2", "direct", DIRECT_MS) + [
    {"name": "n1 and n2 see the rogue", "node": "n1", "within_ms": 5000,
     "command": "meshctl peers -o json | jq -r '.peers[].name' | sort | tr '\\n' ' '", "expect_output": "^n2 relay rogue $"},
    rogue("point 1: a new device claiming relay with the VPC's key: 403",
          "req $K POST /api/devices \"{\\\"public_key\\\":\\\"$(wg genkey | wg pubkey)\\\",\\\"hostname\\\":\\\"r2\\\",\\\"relay\\\":true}\"",
          "^403$"),
    rogue("point 1: the rogue PATCHes itself into a relay: 403",
          "req $T PATCH /api/devices/$(dev rogue id) '{\"relay\":true}'; echo \" $(dev rogue relay)\"", "^403 false$"),
    rogue("point 1: n2's address as inner source towards n1: nothing answers",
          "ip addr add $(dev n2 tunnel_ip)/32 dev mesh0; if ping -c 3 -i 0.2 -W 1 -I $(dev n2 tunnel_ip) $(dev n1 tunnel_ip) > /dev/null; "
          "then echo answered; else echo dropped; fi; ip addr del $(dev n2 tunnel_ip)/32 dev mesh0", "^dropped$"),
    {"name": "point 1: n1 counted the forged sources", "node": "n1", "within_ms": 3000,
     "command": "meshctl status -o json | jq -r .policy.spoofed_sources", "expect_output": "^[1-9][0-9]*$"},
    rogue("point 2: n1's public key registered with the VPC's key: 409",
          "req $K POST /api/devices \"{\\\"public_key\\\":\\\"$(dev n1 public_key)\\\",\\\"hostname\\\":\\\"n1\\\"}\"; echo \" $(jq -r .field ${run}/rogue-out.json)\"",
          "^409 public_key$"),
    rogue("point 2: n2's public key registered with the VPC's key: 409",
          "req $K POST /api/devices \"{\\\"public_key\\\":\\\"$(dev n2 public_key)\\\",\\\"hostname\\\":\\\"n2\\\"}\"; echo \" $(jq -r .field ${run}/rogue-out.json)\"",
          "^409 public_key$"),
    own_token_ok("n1"), own_token_ok("n2"),
    rogue("point 5: endpoints at loopback, link-local, multicast, broadcast: 400 each",
          "for a in 127.0.0.1:51820 169.254.169.254:80 224.0.0.1:51820 255.255.255.255:51820; do "
          "req $T PATCH /api/devices/$(dev rogue id) \"{\\\"endpoints\\\":[{\\\"source\\\":\\\"local\\\",\\\"address\\\":\\\"$a\\\"}]}\"; echo; done | sort -u",
          "^400$"),
    {"sleep_ms": 4000}] + path("n1", "n2", "direct", 2000) + [
    {"stop": "n1/bgping"},
    {"name": "n1's pings to n2 across the attacks: at most 1% lost", "node": "n1", "command": lossy, "expect_output": "answered"},
    own_token_ok("n1"), own_token_ok("n2")]

# --- meshd in time (issue 17): agents, relays and NATs on delayed links
def delay(link, ms, loss=0):
    """the same delay (and seeded loss) on both directions of a link"""
    imp = dict({"delay_ms": ms}, **({"loss_percent": loss} if loss else {}))
    link.update({"egress": dict(imp), "ingress": dict(imp)})
    return link

def direct_time(name, ms1, ms2, desc, nat="port-restricted-cone", within=DIRECT_MS + 4000, loss=0):
    d = base(name, desc, timeout=90)
    d["seed"] = 17
    site(d, 1, nat)
    site(d, 2, nat)
    delay(node(d)["gw1"]["links"][0], ms1, loss)
    delay(node(d)["gw2"]["links"][0], ms2, loss)
    d["expectations"] = path("n1", "n2", "direct", within)
    return d

d = direct_time("time-direct-150-5", 150, 5,
    "n1's site is 150 ms from the internet each way, n2's 5 ms; both behind port-restricted-cone NATs. Both mappings are "
    "endpoint-independent, so the reflexive endpoints are the ones to spray; n1 learns of n2 from the watch about 150 ms "
    "after n2 learns of n1, and an initiation takes 155 ms from either side to the other NAT. n2's first initiations "
    "arrive at n1's NAT before n1 sent anything and are dropped, but each side keeps spraying (0, 0.2, 0.5 ... 2.5 s) "
    "and from n1's first initiation on, n1's NAT admits n2's next ones and n2's admits n1's: the handshake completes "
    "within about one spray step plus one round trip (310 ms) of n1's first spray, inside the 3 s direct timeout: "
    "direct. The first expectation's time in report.json is the time to direct.")
save(d)

# two relays at different distances; the agents' symmetric NATs keep them relayed
d = base("relay-rtt", "Two relays: relay2 is 20 ms from the internet each way, relay1 80 ms (before any probe is "
         "answered an agent takes the lowest device id, either relay). n1 and n2 sit behind symmetric NATs, so their traffic goes via a relay. Each agent probes "
         "every relay every 2 s (40 vs 160 ms round trips) and uses the one with the lowest smoothed probe round trip: "
         "relay2. Then an impair step swaps the delays: relay2's round trip becomes 160 ms, relay1's 40 ms; the smoothed "
         "values (weight 1/3 per probe) cross the 20% hysteresis after three probes, so n1 moves to relay1 within 10 s, "
         "and pings still cross the mesh.", relays=("relay1", "relay2"), timeout=90)
d["seed"] = 17
delay(node(d)["relay1"]["links"][0], 80)
delay(node(d)["relay2"]["links"][0], 20)
site(d, 1, "symmetric")
site(d, 2, "symmetric")
def relay_in_use(want, ms, name):
    return {"name": name, "node": "n1", "within_ms": ms, "expect_output": "^%s$" % want,
            "command": "r=$(meshctl status -o json | jq -r .relay_in_use); echo $r; test \"$r\" = %s" % want}
# the first relayed ping may wait for WireGuard's 5 s retransmission: an agent's first
# initiation to a relay that has not yet heard of it from the service goes unanswered
d["expectations"] = path("n1", "n2", "relayed", RELAY_MS + 9000) + [
    relay_in_use("relay2", 8000, "n1 uses the 20 ms relay"),
    {"impair": "relay1", "delay_ms": 20}, {"impair": "relay2", "delay_ms": 80},
    relay_in_use("relay1", 10000, "n1 moves to the relay that is now 20 ms away within 10 s")] + \
    path("n1", "n2", "relayed", 5000)
save(d)

# a satellite site: a long fat lossy path, direct, carrying TCP
tip = "$(meshctl peers -o json | jq -r '.peers[] | select(.name == \"n2\") | .tunnel_ip')"
d = direct_time("satellite", 150, 5,
    "n1's site is a satellite link: 150 ms each way (300 ms round trip to the internet) with 2% seeded loss in each "
    "direction; n2 is 5 ms away; both behind port-restricted-cone NATs. Lost initiations are sprayed again on the "
    "schedule and WireGuard's retransmissions cover the rest, so the handshake completes inside the direct timeout: "
    "direct. Then a 10 s iperf3 (TCP) from n1 to n2's tunnel address: the path must stay direct throughout (no "
    "fallback: the path times out only after 30 s without an answer, and TCP's acks answer every 310 ms), so n1's "
    "meshd logs no transition out of direct for n2 and the upgrade count stays 0.", within=DIRECT_MS + 8000, loss=2)
node(d)["n2"]["processes"].append({"name": "iperf3", "after": ["n2/meshd"], "argv": ["iperf3", "-s"], "ready": {"tcp": 5201}})
d["expectations"] += [
    {"name": "a 10 s iperf3 from n1 to n2 through the tunnel", "node": "n1", "expect_output": "receiver",
     "command": "iperf3 -c %s -t 10 -f m | grep -E 'receiver$'" % tip},
    {"name": "n1's path to n2 never left direct", "node": "n1", "expect_output": "^direct 0$",
     "command": "! grep -E 'path peer=n2 from=direct' ${run}/logs/n1-meshd.log >&2 && "
                "meshctl peers -o json | jq -r '.peers[] | select(.name == \"n2\") | \"\\(.path) \\(.upgrades)\"'"}]
save(d)

# carrier NATs that forget a UDP mapping after 15 s; the agents idle for a minute
d = base("mapping-15s", "n1 and n2 sit behind port-restricted-cone NATs whose UDP mappings expire after 15 s idle "
         "(udp_timeout 15, a carrier NAT's measured lifetime), and are direct. Then nothing is sent between them for 60 s, "
         "four mapping lifetimes. meshd's persistent keepalive (10 s when the lifetime is not measured) reaches each NAT "
         "from inside before its mapping expires, both sides sending, so both mappings and filters stay open: the next "
         "ping in either direction is answered within 2 s and the path is still direct (had a mapping expired, the path "
         "falls back to the relay and retries direct at once).", timeout=120)
for i in (1, 2):
    site(d, i, {"preset": "port-restricted-cone", "udp_timeout": 15})
d["expectations"] = path("n1", "n2", "direct", DIRECT_MS) + [
    {"name": "the gateways forget idle UDP mappings after 15 s", "node": "gw1", "expect_output": "^unreplied : 15$",
     "command": "nft list ruleset | grep -o 'unreplied : [0-9]*'"},
    {"name": "60 s without traffic between the peers", "sleep_ms": 60000}] + path("n1", "n2", "direct", 2000)
save(d)

# NATs that forget the peers' state anyway: both sides must punch again
def forget(gw, peer_ip):
    return {"name": "%s forgets its UDP state towards %s" % (gw, peer_ip), "node": gw,
            "command": "conntrack -D -p udp -d %s > /dev/null 2>&1; echo forgotten" % peer_ip, "expect_output": "forgotten"}
def tunnel_ip_of(a, b):
    return {"name": "%s knows %s's tunnel address" % (a, b), "node": a, "expect_output": "^100\\.",
            "command": "meshctl peers -o json | jq -r '.peers[] | select(.name == \"%s\") | .tunnel_ip' | tee ${run}/tip-%s" % (b, b)}
def answered_again(a, b, ms):
    # a ping every 200 ms until the first answer, for at most ms by ping's own
    # deadline (its exit status); the expectation's own limit adds 1 s for
    # starting the processes on a busy machine
    return {"name": "%s's pings to %s (one per 200 ms) are answered within %.1f s" % (a, b, ms / 1000.0), "node": a,
            "within_ms": ms + 1000, "expect_output": "^first answer: echo [0-9]+, [0-9]+ ms after the first$",
            "command": "ping -n -i 0.2 -c 1 -w %d $(cat ${run}/tip-%s) > ${run}/again.txt 2>&1; r=$?; "
                       "grep -o '[0-9]* packets transmitted, [0-9]* received' ${run}/again.txt; "
                       "s=$(grep -o 'icmp_seq=[0-9]*' ${run}/again.txt | cut -d= -f2); "
                       "echo \"first answer: echo $s, $(( (s - 1) * 200 )) ms after the first\"; exit $r" % (ms // 1000, b)}
ANSWERED_MS, DIRECT_AGAIN_MS = 2000, 3000
d = base("mapping-lost", "n1 and n2 sit behind port-restricted-cone NATs and are direct; then both gateways forget their "
         "UDP state towards each other (the conntrack entries between the two public addresses deleted, as an expiry "
         "that beat the keepalives would; the mappings themselves live on, refreshed by the relay probes), so packets "
         "from either side are dropped as unsolicited by the other's NAT. n1 pings n2 every 200 ms: data unanswered over "
         "a direct path makes meshd probe it with a handshake after 0.5 s (sent again 0.25 s later) and give it up "
         "0.5 s after the probe, moving n1's traffic to the relay, spraying at once (which opens gw1 for n2 again) and "
         "telling n2 through the relay (one echo, which n2's data plane refuses as n1's address is direct there, and "
         "which makes n2 give up the path and spray too; its initiation passes gw1). So the pings are answered again "
         "about 1 s after the first one, via the relay or already direct, and the path is direct again within 5 s of "
         "the first unanswered ping. Then the same the other way round: the NATs forget again and n2 pings n1, "
         "3 s after direct (before that a relayed packet from a peer means nothing, it may still be on its way).",
         timeout=60)
site(d, 1, "port-restricted-cone")
site(d, 2, "port-restricted-cone")
grace = {"name": "past the first 3 s of direct, when relayed packets still mean nothing", "sleep_ms": 3000}
d["expectations"] = path("n1", "n2", "direct", DIRECT_MS) + [tunnel_ip_of("n1", "n2"), tunnel_ip_of("n2", "n1"),
    grace, forget("gw1", "203.0.113.2"), forget("gw2", "203.0.113.1"), answered_again("n1", "n2", ANSWERED_MS),
    {"name": "direct again", "ping": ["n1", "n2"], "path": "direct", "within_ms": DIRECT_AGAIN_MS},
    grace, forget("gw1", "203.0.113.2"), forget("gw2", "203.0.113.1"), answered_again("n2", "n1", ANSWERED_MS),
    {"name": "direct again", "ping": ["n2", "n1"], "path": "direct", "within_ms": DIRECT_AGAIN_MS}]
save(d)

# Port mapping (issue 18): gw1 runs miniupnpd (sim/portmapd.h) and answers PCP;
# meshd maps its port there (agent/meshd/portmap.c)
def portmap_pair():
    d = base("pair-symrandom-pcp", "n1 behind a symmetric NAT with random port allocation whose gateway answers PCP "
             "(miniupnpd), n2 behind a symmetric NAT with random allocation and no port mapping. Without a mapping "
             "neither side can guess the port the other's NAT will use and each filter admits only what it sent to "
             "(pair-sym-sym: relayed). With one, n1 asks gw1 for a PCP MAP of its WireGuard port and reports the mapped "
             "address:port as a candidate; gw1's DNAT for that port comes before the model's filtering, so n2's "
             "initiation to it gets in, and n1's answer goes back through that connection, which gw2 admits (n2 sent "
             "to exactly that address and port): direct. After gw1 reboots (new PCP epoch, no mapping, conntrack "
             "flushed) n1 maps again and the pair meets directly again.", timeout=90)
    relays = relays_of(d)
    site(d, 1, {"preset": "symmetric", "port_mapping": ["pcp"]},
         after=[r + "/meshd" for r in relays] + ["gw1/miniupnpd"])
    site(d, 2, "symmetric")
    mapped = {"name": "gw1 holds a PCP mapping for n1", "node": "gw1", "within_ms": 5000, "expect_output": "dnat ip to 10\\.0\\.1\\.",
              "command": "nft list chain inet natmesh_pm prerouting_miniupnpd"}
    # RFC 6887 8.5 forgives 2 s of epoch skew, so a gateway that reboots in its
    # first seconds cannot be told from one that did not: it has been up a while
    uptime = {"name": "gw1 up for a while, so that its reboot shows in the PCP epoch", "sleep_ms": 6000}
    d["expectations"] = path("n1", "n2", "direct", DIRECT_MS) + [mapped, uptime, {"reboot": "gw1"}, mapped] + \
        path("n1", "n2", "direct", 5000 + DIRECT_MS)
    save(d)

portmap_pair()
