#!/usr/bin/env bash
# The man pages (man/NAME.SECTION) against the binaries they describe:
#   1. every option a binary's --help prints (and its verbs' --help: the words
#      that start a line indented by two spaces, e.g. `meshsim run --help`,
#      `meshctl vpc --help`), long (--foo) and short (-f), is in the page's
#      OPTIONS or COMMANDS section;
#   2. the reverse: every option in those two sections is one --help prints;
#   3. the page renders without a warning: `mandoc -T lint -W warning` and
#      `groff -ww -man -z` (each skipped only when the tool is absent);
#   4. `make install DESTDIR=...` puts each page in MANDIR/manSECTION, where
#      `man -M` finds it and `man -l` renders it, and every installed binary
#      has a page.
# TAP lines ("ok - ", "not ok - ", "skip - "); no root needed; exits 1 on a
# failure. BUILD names the build directory (default build).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

BUILD=${BUILD:-build}
PAGES=(meshd.8 meshctl.8 meshsvc.8 meshstun.8 meshwg.8
       meshsim.1 natcheck.1 traversal-report.1 udpprobe.1)
failed=0
T=$(mktemp -d /tmp/man_pages.XXXXXX)
trap 'rm -rf "$T"' EXIT

ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; failed=1; }
skip() { echo "skip - $*"; }

# option words in text on stdin: --long-name or -x, not inside a word
# ("super-packets", "nmsXXXX-NAME") and not a bare "--"
options() {
	perl -ne 'while (/(?<![\w-])(--[A-Za-z][\w-]*|-[A-Za-z])(?![\w-])/g) { print "$1\n" }' | sort -u
}

# the usage text of a binary and of each of its verbs, less the options it
# names of other programs ("meshstun --rfc5780" in natcheck's)
help_text() {
	local bin=$1 name top verb others
	name=$(basename "$bin")
	top=$("$bin" --help 2>&1)
	others=$(printf '%s\n' "${PAGES[@]%.*}" wg | grep -vx -- "$name" | paste -sd '|')
	{
		printf '%s\n' "$top"
		for verb in $(sed -n 's/^  \([a-z][a-z-]*\)\( .*\)\{0,1\}$/\1/p' <<<"$top" | sort -u); do
			[ "$verb" = "$name" ] || "$bin" "$verb" --help 2>&1 </dev/null
		done
	} | perl -pe 's/(?<![\w-])('"$others"')((?:\s+--?[A-Za-z][\w-]*)+)/$1/g'
}

# the OPTIONS and COMMANDS sections of a page's source, roff escapes undone
page_sections() {
	sed -e 's/\\-/-/g' -e 's/\\(en/-/g' -e 's/\\f[BIRP]//g' -e 's/\\e/\\/g' "$1" |
		awk '/^\.SH / { keep = ($2 == "OPTIONS" || $2 == "COMMANDS"); next } keep'
}

# --- 1 and 2: options both ways --------------------------------------------
for page in "${PAGES[@]}"; do
	name=${page%.*}
	bin=$BUILD/$name
	if [ ! -f "man/$page" ]; then
		notok "man/$page exists"
		continue
	fi
	if [ ! -x "$bin" ]; then
		notok "$bin exists (build it: make)"
		continue
	fi
	help_text "$bin" | options >"$T/$name.help"
	page_sections "man/$page" | options >"$T/$name.page"
	if [ ! -s "$T/$name.help" ]; then
		notok "$name --help prints options"
		continue
	fi
	missing=$(comm -23 "$T/$name.help" "$T/$name.page" | tr '\n' ' ')
	if [ -z "$missing" ]; then
		ok "$name: all $(wc -l <"$T/$name.help") options of --help are in man/$page"
	else
		notok "$name: --help has options that man/$page's OPTIONS/COMMANDS lack: $missing"
	fi
	extra=$(comm -13 "$T/$name.help" "$T/$name.page" | tr '\n' ' ')
	if [ -z "$extra" ]; then
		ok "man/$page: every option in OPTIONS/COMMANDS is one $name --help prints"
	else
		notok "man/$page: OPTIONS/COMMANDS has options that $name --help does not print: $extra"
	fi
done

# --- 3: rendering without warnings ------------------------------------------
if command -v mandoc >/dev/null; then
	for page in "${PAGES[@]}"; do
		[ -f "man/$page" ] || continue
		out=$(mandoc -T lint -W warning "man/$page" 2>&1)
		rc=$?
		if [ $rc -eq 0 ] && [ -z "$out" ]; then
			ok "mandoc -T lint -W warning man/$page: clean"
		else
			notok "mandoc -T lint -W warning man/$page (status $rc): $out"
		fi
	done
else
	skip "mandoc is not installed (tools/install-deps installs it)"
fi
if command -v groff >/dev/null; then
	for page in "${PAGES[@]}"; do
		[ -f "man/$page" ] || continue
		out=$(groff -ww -man -z "man/$page" 2>&1)
		rc=$?
		if [ $rc -eq 0 ] && [ -z "$out" ]; then
			ok "groff -ww -man -z man/$page: no warning"
		else
			notok "groff -ww -man -z man/$page (status $rc): $out"
		fi
	done
else
	skip "groff is not installed (tools/install-deps installs groff-base)"
fi

# --- 4: installed where man(1) finds them -----------------------------------
stage=$T/stage
mandir=$stage/usr/local/share/man
if ! make -s --no-print-directory install DESTDIR="$stage" PREFIX=/usr/local BUILD="$BUILD" \
	>"$T/install.log" 2>&1; then
	notok "make install DESTDIR=$stage: $(tail -n 5 "$T/install.log" | tr '\n' ' ')"
elif ! command -v man >/dev/null; then
	skip "man is not installed (tools/install-deps installs man-db)"
else
	ok "make install DESTDIR=$stage PREFIX=/usr/local"
	for page in "${PAGES[@]}"; do
		name=${page%.*} sec=${page##*.}
		want=$mandir/man$sec/$page
		found=$(man -M "$mandir" -w "$sec" "$name" 2>&1)
		if [ "$found" != "$want" ]; then
			notok "man -M MANDIR -w $sec $name: want $want, got: $found"
			continue
		fi
		out=$(MANWIDTH=80 man -P cat -l "$want" 2>&1)
		first=$(printf '%s\n' "$out" | head -n 1)
		if grep -q "^${name^^}($sec)" <<<"$first" && grep -q '^NAME' <<<"$out"; then
			ok "$page installed as MANDIR/man$sec/$page; man -w finds it, man -l renders it"
		else
			notok "man -l $want renders: $first"
		fi
	done
	for bin in "$stage"/usr/local/bin/*; do
		name=$(basename "$bin")
		if ls "$mandir"/man[18]/"$name".[18] >/dev/null 2>&1; then
			ok "installed binary $name has an installed man page"
		else
			notok "installed binary $name has no man page in $mandir"
		fi
	done
fi

exit $failed
