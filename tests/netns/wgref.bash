# wgref.bash: which wireguard-go the namespace tests and the benchmarks run
# (sourced, not run; the one place that decides it). The reference is, first
# found:
#
#   1. WIREGUARD_GO=PATH from the environment (a command name, or a path,
#      relative to the repository's root where the scripts run);
#   2. the modern upstream build next to the repository,
#      ../shared/anchors/wireguard-go/wireguard-go (0.0.20250522: TCP GRO/TSO
#      and UDP GSO/GRO, see its README.md);
#   3. Debian's wireguard-go on PATH (0.0.20220316 on Debian 12: no offloads).
#
# so no figure is compared with an old reference by accident. Everything that
# runs the reference prints WG_GO_VERSION with its results (wgref_note).
#
#   WG_GO           the reference's absolute path, "" when there is none
#   WG_GO_VERSION   its `--version` line ("wireguard-go v0.0.20250522")
#   WG_GO_FROM      WIREGUARD_GO, anchor or PATH
#   WG_GO_WHY       why WG_GO is "" (for a skip line or an error)
#   WG_GO_DEBIAN    PATH's wireguard-go when it is another binary than WG_GO
#                   (a second, older reference), else ""
#   wgref_version BIN   prints BIN's version line
#   wgref_note          prints "# reference: VERSION (PATH)"
# shellcheck shell=bash

WGREF_ANCHOR="$(dirname "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)")/shared/anchors/wireguard-go/wireguard-go"

wgref_version() { "$1" --version 2>/dev/null | head -n 1; }
wgref_note() { echo "# reference: ${WG_GO_VERSION:-none} (${WG_GO:-$WG_GO_WHY})"; }

# wgref_abs CMD: CMD's absolute path (a command name or a path), or fails
wgref_abs() { local c; c=$(command -v "$1") && realpath "$c"; }

wgref_resolve() {
  local deb
  WG_GO='' WG_GO_FROM='' WG_GO_WHY='' WG_GO_DEBIAN='' WG_GO_VERSION=''
  if [ -n "${WIREGUARD_GO:-}" ]; then
    WG_GO_FROM=WIREGUARD_GO
    WG_GO=$(wgref_abs "$WIREGUARD_GO") || WG_GO_WHY="WIREGUARD_GO=$WIREGUARD_GO is not an executable"
  elif [ -x "$WGREF_ANCHOR" ]; then
    WG_GO_FROM=anchor
    WG_GO=$(realpath "$WGREF_ANCHOR")
  else
    WG_GO_FROM=PATH
    WG_GO=$(wgref_abs wireguard-go) || WG_GO_WHY="no wireguard-go: no WIREGUARD_GO, no $WGREF_ANCHOR, none on PATH"
  fi
  if [ -n "$WG_GO" ]; then
    WG_GO_VERSION=$(wgref_version "$WG_GO")
    if [ -z "$WG_GO_VERSION" ]; then WG_GO_WHY="$WG_GO --version printed nothing"; WG_GO=''; fi
  fi
  if deb=$(wgref_abs wireguard-go) && [ "$deb" != "$WG_GO" ]; then WG_GO_DEBIAN=$deb; fi
  return 0
}
wgref_resolve
