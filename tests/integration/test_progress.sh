#!/bin/sh
# test_progress.sh — the progress history (GET /v1/jobs/{id}/progress, docs/api.md) with the
# real lrqd and lrq-worker on stories260K: what the API returns is checked against the
# worker's own record of what it printed (the work dir's progress.jsonl, written by the
# worker, not by lrqd), the `since` cursor, the query errors, survival across a restart,
# PATCH priority and the new routes' auth. Waits follow the job (lib_api.sh: no change
# for STALL_S), never the clock.
. "$(dirname "$0")/lib_real.sh"
echo "1..11"
start_daemon || { echo "Bail out! lrqd did not start"; exit 1; }

# A job small enough to keep every sample (about 1 a second, and forced at each block's end:
# far below the per-block cap of 800 for 5 blocks), so the history must be the whole record.
submit "$(spec hist 150)"; J=$JOB
wait_state "$J" succeeded || diag "job $J did not succeed"
api GET "/v1/jobs/$J/progress"; cp "$T/body" "$T/p1.json"
# compare API JSON with WORKDIR/progress.jsonl: prints "ok" or the first difference
cmp_hist() {
  $PY - "$1" "$2" <<'EOF'
import json, math, sys
api = json.load(open(sys.argv[1]))
lines = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
prog = [l for l in lines if l.get("event") == "progress"]
blks = [l for l in lines if l.get("event") == "block"]
s = api["samples"]
def close(a, b):   # the worker prints 9 significant digits, the API 10
    if a is None or b is None: return a is None and b is None
    return abs(a - b) <= 1e-8 * max(abs(a), abs(b), 1e-30)
if len(s) != len(prog): print("samples %d, progress lines %d" % (len(s), len(prog))); sys.exit()
for a, p in zip(s, prog):
    blk = p.get("block", 0) if p["stage"] == "reconstruct" else 0
    if a["stage"] != p["stage"] or a["block"] != blk or a["iteration"] != p.get("iteration") \
       or not close(a["loss"], p.get("loss")) or not close(a["fraction"], p.get("fraction")) \
       or not close(a["eta_s"], p.get("eta_s")):
        print("sample %s differs from line %s" % (a, p)); sys.exit()
seqs = [a["seq"] for a in s]
if seqs != sorted(seqs) or len(set(seqs)) != len(seqs): print("seq not increasing"); sys.exit()
b = api["blocks"]
if len(b) != len(blks): print("blocks %d, block events %d" % (len(b), len(blks))); sys.exit()
for a, e in zip(b, blks):
    if a["block"] != e["block"] + 1 or a["blocks"] != e["blocks"] or not close(a["loss_start"], e["loss_start"]) \
       or not close(a["loss_end"], e["loss_end"]):
        print("block %s differs from event %s" % (a, e)); sys.exit()
per = {}
for a in s:
    if a["stage"] == "reconstruct": per.setdefault(a["block"], []).append(a["iteration"])
if sorted(per) != list(range(1, len(blks) + 1)): print("blocks with samples: %s" % sorted(per)); sys.exit()
its = [p["iterations"] for p in prog if p["stage"] == "reconstruct"][0]
if any(v[-1] != its for v in per.values()): print("a block lacks its last iteration"); sys.exit()
print("ok %d %d %d" % (len(s), len(b), api["last_seq"]))
EOF
}
r=$(cmp_hist "$T/p1.json" "$STATE/jobs/$J/progress.jsonl")
expect "history = the worker's progress lines and block events (stage, block, iteration, loss, fraction, ETA)" \
  '[ "$CODE" = 200 ] && [ "${r%% *}" = ok ]' "$r"
set -- $r; NS=${2:-0}; NB=${3:-0}; LAST=${4:-0}
expect "every block of stories260K has its samples and its block row" '[ "$NB" = 5 ] && [ "$NS" -gt 5 ]' \
  "$NS samples, $NB blocks"

# since: strictly after the cursor; the last cursor gives nothing new.
api GET "/v1/jobs/$J/progress?since=$LAST"
n_after=$($PY -c "import json,sys; d=json.load(open(sys.argv[1])); print(len(d['samples']), d['last_seq'], d['more'])" "$T/body")
first=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['samples'][0]['seq'])" "$T/p1.json")
api GET "/v1/jobs/$J/progress?since=$first&limit=2"
n_two=$($PY -c "import json,sys; d=json.load(open(sys.argv[1])); print(len(d['samples']), d['samples'][0]['seq'] > $first, d['more'])" "$T/body")
expect "since: after the last cursor nothing; limit pages with more=true" \
  '[ "$n_after" = "0 $LAST False" ] && [ "$n_two" = "2 True True" ]' "since=$LAST → $n_after; since=$first&limit=2 → $n_two"

qerr() { # qerr QUERY FIELD
  api GET "/v1/jobs/$J/progress?$1"
  [ "$CODE" = 400 ] && $PY -c "import json,sys; e=json.load(open(sys.argv[1]))['error']; sys.exit(not (e['code']=='invalid_query' and e['field']==sys.argv[2]))" "$T/body" "$2"
}
expect "bad since / limit → 400 invalid_query naming the field" \
  'qerr since=abc since && qerr since=-1 since && qerr since= since && qerr limit=0 limit && qerr limit=5001 limit'
api GET "/v1/jobs/999999/progress"
expect "unknown job → 404 not_found" '[ "$CODE" = 404 ] && body_has not_found'

# Restart: the history is in the database.
stop_daemon TERM
start_daemon || { echo "Bail out! lrqd did not restart"; exit 1; }
api GET "/v1/jobs/$J/progress"
expect "the history survives a restart, unchanged" '[ "$CODE" = 200 ] && cmp -s "$T/body" "$T/p1.json"'

# PATCH priority: a queued job (the second of two, one worker slot).
submit "$(spec long 100000)"; A=$JOB
submit "$(spec queued 10)"; B=$JOB
api PATCH "/v1/jobs/$B" -H 'Content-Type: application/json' --data-binary '{"priority":7}'
p=$(job_field "$B" priority); st=$(job_field "$B" state)
expect "PATCH priority of a queued job → 200, stored" '[ "$CODE" = 200 ] && [ "$p" = 7 ] && [ "$st" = queued ]' "state $st, priority $p"
pe() { # pe BODY STATUS FIELD
  api PATCH "/v1/jobs/$B" -H 'Content-Type: application/json' --data-binary "$1"
  [ "$CODE" = "$2" ] && $PY -c "import json,sys; e=json.load(open(sys.argv[1]))['error']; sys.exit(not (e['field']==(sys.argv[2] or None)))" "$T/body" "$3"
}
expect "PATCH: bad value / unknown field / not JSON → 422 / 422 / 400 naming the field" \
  'pe "{\"priority\":101}" 422 priority && pe "{\"priority\":\"x\"}" 422 priority && pe "{\"bogus\":1}" 422 bogus && pe "{" 400 ""'
api PATCH "/v1/jobs/$J" -H 'Content-Type: application/json' --data-binary '{"priority":1}'
expect "PATCH priority of a finished job → 409" '[ "$CODE" = 409 ] && body_has conflict'
api POST "/v1/jobs/$A/cancel"; api POST "/v1/jobs/$B/cancel"
wait_state "$A" cancelled >/dev/null; wait_state "$B" cancelled >/dev/null
stop_daemon TERM

# Auth: the new routes follow the others' rules (401 without a token, read may not PATCH),
# and whoami names the role; the dashboard's own files need no token.
tok_r=read-token-123; tok_a=admin-token-456
printf 'reader:read:%s\nboss:admin:%s\n' "$(printf %s $tok_r | sha256sum | cut -c1-64)" "$(printf %s $tok_a | sha256sum | cut -c1-64)" > "$T/tokens"
start_daemon --token-file "$T/tokens" || { echo "Bail out! auth daemon failed"; exit 1; }
api GET "/v1/jobs/$J/progress"; c1=$CODE
api GET "/v1/jobs/$J/progress" -H "Authorization: Bearer $tok_r"; c2=$CODE
api PATCH "/v1/jobs/$J" -H "Authorization: Bearer $tok_r" --data-binary '{"priority":1}'; c3=$CODE
api GET "/v1/whoami" -H "Authorization: Bearer $tok_r"; who=$(cat "$T/body")
expect "auth: progress 401 without a token, 200 with read; read PATCH → 403; whoami names the role" \
  '[ "$c1" = 401 ] && [ "$c2" = 200 ] && [ "$c3" = 403 ] && echo "$who" | grep -q "\"role\":\"read\""' "$c1 $c2 $c3 $who"
api GET "/"; c4=$CODE
expect "GET / needs no token and carries a strict CSP, an ETag and no-cache" \
  '[ "$c4" = 200 ] && hdr_has "^Content-Security-Policy: default-src .none.; script-src .self." && hdr_has "^ETag: \"[0-9a-f]\{64\}\"" && hdr_has "^Cache-Control: no-cache"'
stop_daemon TERM
exit $fails
