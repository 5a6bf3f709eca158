#!/bin/sh
# test_readme.sh — the README's "Using it" commands, verbatim, from a build
# tree (issue 8: they must work without `make install`). The tree is a temp
# dir with the three binaries (symlinks into the build dir), etc/ and
# ../shared, so the commands' relative paths mean what they say. Two
# substitutions, both outside the commands' meaning: the one-job work dir
# /tmp/job1 becomes a temp dir, and after the `./lrqd … &` line the script
# waits until lrqd answers (a person typing the next line does that by
# being slower). Skipped when something else holds lrqd's default port 8470.
set -u
SRC=${LRQ_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BLD=${LRQ_BUILDDIR:-$SRC}
SHARED=${LRQ_SHARED:-$SRC/../shared}
SHARED=$(cd "$SHARED" 2>/dev/null && pwd) || { echo "1..0 # SKIP no shared dir"; exit 0; }
command -v curl >/dev/null || { echo "1..0 # SKIP curl(1) is not installed"; exit 0; }
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
if curl -s -m 5 -o /dev/null http://127.0.0.1:8470/healthz; then echo "1..0 # SKIP port 8470 is in use"; exit 0; fi
T=$(mktemp -d "${TMPDIR:-/tmp}/lrq-readme.XXXXXX")
trap 'kill -KILL $(cat "$T/lrqd.pid" 2>/dev/null) 2>/dev/null; [ "${ok:-0}" = 1 ] && rm -rf "$T"' EXIT
mkdir -p "$T/tree"
ln -s "$SHARED" "$T/shared"
for b in lrqd lrqctl lrq-worker; do ln -s "$BLD/$b" "$T/tree/$b"; done
ln -s "$SRC/etc" "$T/tree/etc"
# The commands: indented lines of the "Using it" section up to `kill %1`, continuation lines joined.
$PY - "$SRC/README.md" "$T" > "$T/using.sh" <<'EOPY'
import sys, re
text = open(sys.argv[1]).read()
sec = text.split("## Using it", 1)[1]
sec = sec[:sec.index("kill %1") + len("kill %1")]
lines, cur = [], ""
for l in sec.splitlines():
    if not l.startswith("    "):
        continue
    cur += l[4:].rstrip()
    if cur.endswith("\\"):
        cur = cur[:-1] + " "
        continue
    lines.append(re.sub(r"\s+#.*$", "", cur).strip()); cur = ""
print("set -e")
for c in lines:
    print('echo "+ %s" >&2' % c.replace('"', '\\"'))
    print(c.replace("/tmp/job1", sys.argv[2] + "/job1"))
    if c.startswith("./lrqd"):
        print('echo $! > "%s/lrqd.pid"' % sys.argv[2])
        print('i=0; until curl -s -m 5 -o /dev/null http://127.0.0.1:8470/healthz; do '
              'kill -0 $! || exit 9; i=$((i + 1)); [ $i -lt 3000 ] || exit 9; sleep 0.1; done')
print("wait")
EOPY
echo "1..3"
n=$(grep -c '^echo "+ ' "$T/using.sh")
(cd "$T/tree" && bash "$T/using.sh") > "$T/out" 2> "$T/err"
rc=$?
fails=0
tap() { if eval "$2"; then echo "ok $1"; else echo "not ok $1"; fails=$((fails + 1)); [ -n "${3:-}" ] && eval "$3"; fi; }
tap "1 - the README's $n commands run from a build tree, exit 0" '[ $rc -eq 0 ] && [ "$n" -ge 7 ]' \
  'echo "# rc $rc"; tail -n 20 "$T/err" | sed "s/^/# /"'
tap "2 - generate prints the story; eval prints the perplexity" \
  'grep -q "Once upon a time" "$T/out" && grep -q "\"perplexity\"" "$T/out"'
tap "3 - the job ran through lrqd; the download was verified" \
  '[ -s "$T/tree/model.safetensors" ] && grep -q verified "$T/out" && [ -f "$T/job1/metrics.json" ] && [ -d "$T/tree/state/jobs/1" ]' \
  'tail -n 5 "$T/out" | sed "s/^/# /"'
[ $fails -eq 0 ] && ok=1
[ $fails -eq 0 ]
