# tap.bash: the one set of TAP helpers of the namespace tests (sourced, by
# the *_common.bash and svc_lib.bash helpers and by the scripts that use no
# other). tools/run-tests counts the lines that start with "ok ", "not ok "
# and "skip "; nothing else a test prints may start that way.
#
#   ok WHAT, not_ok WHAT, skip WHAT    one line each; not_ok counts a failure
#   check WHAT CMD...                  ok or not_ok from CMD's exit status
#                                      (CMD's stdout is dropped, stderr kept)
#   TAP_FAILS                          the failures so far
#   tap_exit                           exits 1 if anything failed, else 0
# shellcheck shell=bash

TAP_FAILS=0

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; TAP_FAILS=$((TAP_FAILS + 1)); }
skip() { echo "skip - $*"; }
# the local's name is one no checked command uses (CMD may be eval '...')
check() {
	local tap_what=$1
	shift
	if "$@" >/dev/null; then ok "$tap_what"; else not_ok "$tap_what"; fi
}
tap_exit() { exit $((TAP_FAILS > 0)); }
