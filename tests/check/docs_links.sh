#!/usr/bin/env bash
# The documentation holds together: README.md is a front door of at most 250
# lines; in README.md and docs/*.md every relative link points at a file that
# exists (and a #fragment at a heading of its file, by GitHub's rules); every
# docs/*.md opens with a table of contents ("## Contents") that lists each of
# its headings; every source path named in backticks (`lib/natdisc.h`,
# `tests/unit/test_agent_*.c`) exists, so a rename that forgets the docs shows.
# TAP lines ("ok - ", "not ok - "); no root needed; exits 1 on a failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

exec python3 - "$@" <<'PY'
import glob, os, re, sys

MAX_README = 250
TOPDIRS = ('lib', 'agent', 'service', 'sim', 'nat-models', 'scenarios', 'tests',
           'tools', 'dist', 'man', 'docs')
failed = False

def ok(msg):
    print('ok - ' + msg)

def notok(msg):
    global failed
    failed = True
    print('not ok - ' + msg)

def without_code(text):
    """the text less fenced code blocks (links and headings there are not ones)"""
    return re.sub(r'^```.*?^```', '', text, flags=re.S | re.M)

def anchors(path):
    """GitHub's heading ids: lower case, punctuation dropped, spaces to
    hyphens, a repeated id numbered -1, -2, ..."""
    seen, out = {}, set()
    for m in re.finditer(r'^#{1,6} (.*)$', without_code(open(path).read()), re.M):
        s = re.sub(r'[^\w\- ]', '', m.group(1).strip().lower()).replace(' ', '-')
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else '%s-%d' % (s, n))
    return out

def expand_braces(p):
    m = re.search(r'\{([^{}]*)\}', p)
    if not m:
        return [p]
    return [q for alt in m.group(1).split(',')
            for q in expand_braces(p[:m.start()] + alt + p[m.end():])]

files = ['README.md'] + sorted(glob.glob('docs/*.md'))

n = sum(1 for _ in open('README.md'))
if n <= MAX_README:
    ok('README.md has %d lines (at most %d)' % (n, MAX_README))
else:
    notok('README.md has %d lines, more than %d' % (n, MAX_README))

for f in files:
    text = without_code(open(f).read())
    base = os.path.dirname(f)
    bad = []
    links = re.findall(r'\]\(([^)\s]+)\)', text)
    for target in links:
        if re.match(r'[a-z][a-z0-9+.-]*:', target):
            continue                     # https:, mailto: ...
        path, _, frag = target.partition('#')
        dest = os.path.normpath(os.path.join(base, path)) if path else f
        if not os.path.exists(dest):
            bad.append('%s (no %s)' % (target, dest))
        elif frag and dest.endswith('.md') and frag not in anchors(dest):
            bad.append('%s (no heading #%s in %s)' % (target, frag, dest))
    if bad:
        notok('%s: relative links that lead nowhere: %s' % (f, '; '.join(bad)))
    else:
        ok('%s: all %d relative links resolve' % (f, sum(
            1 for t in links if not re.match(r'[a-z][a-z0-9+.-]*:', t))))

for f in files[1:]:
    text = without_code(open(f).read())
    heads = re.findall(r'^(#{2,6}) (.*)$', text, re.M)
    if not heads or heads[0][1] != 'Contents':
        notok('%s: opens with a table of contents ("## Contents" first)' % f)
        continue
    toc = text.split('## Contents', 1)[1].split('\n## ', 1)[0]
    listed = set(re.findall(r'\]\(#([^)]+)\)', toc))
    title = re.sub(r'[^\w\- ]', '', re.match(r'# (.*)', text).group(1).lower()).replace(' ', '-')
    missing = sorted(anchors(f) - listed - {'contents', title})
    if missing:
        notok('%s: headings missing from its table of contents: %s' % (f, ', '.join(missing)))
    else:
        ok('%s: its table of contents lists all %d headings' % (f, len(listed)))

for f in files:
    bad = []
    for tok in re.findall(r'`([^`\s]+)`', open(f).read()):
        tok = tok.rstrip('.,;:')
        if not tok.startswith(tuple(d + '/' for d in TOPDIRS)) or '...' in tok:
            continue
        if not any(glob.glob(p) for p in expand_braces(tok)):
            bad.append(tok)
    if bad:
        notok('%s: source paths that do not exist: %s' % (f, ', '.join(sorted(set(bad)))))
    else:
        ok('%s: every source path it names exists' % f)

sys.exit(1 if failed else 0)
PY
