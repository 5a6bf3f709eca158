#!/bin/bash
# e2e-7b.sh — a Llama-2-7B-shaped job end to end through lrqd and lrqctl (issue 15; docs/e2e-7b.md).
#
# The checkpoint is SYNTHETIC (tools/mkmodel.py --preset llama2-7b: Llama-2-7B's config, bf16, two
# shards, random normal(0, 0.02) weights, norms 1, a 32000-piece tokenizer.bin built from calib.txt),
# written once under --models DIR and reused. The bench starts its own lrqd (temp state dir on the
# models' filesystem, --no-auth on 127.0.0.1), submits with lrqctl an LRQ W4 g128 job with a short
# schedule (8 calibration windows × 512 tokens of calib.txt, 2 iterations per block, evaluation on 4
# windows of eval.txt, exports hf + gptq), follows it with `lrqctl -o json watch`, and prints:
#   - per-stage wall time (from the job's own progress events, time-stamped as they arrive),
#   - the worker's peak RSS (the worker runs under /usr/bin/time -v through a --worker wrapper:
#     the kernel's ru_maxrss of each attempt) and lrqd's (VmHWM from /proc before it stops),
#   - the work dir's disk use (du, sampled every 2 s while the job runs, plus the unlinked activation
#     cache files the worker maps, read from /proc/PID/maps) against lrqd's estimate (disk_estimate
#     in the job's metrics),
#   - the time of the paper's schedule (5000 iterations per block) at the measured per-iteration time.
#
# usage: bench/e2e-7b.sh BUILDDIR SHAREDDIR [--layers N] [--sweep "2 4 8"] [--kill] [--models DIR]
#                        [--method lrq|rtn] [--iters N] [--init minmax|mse] [--threads N] [--keep]
#   --layers N   depth of the checkpoint (default 32; width is always Llama-2-7B's)
#   --sweep L…   the same job at each depth in a row; a peak-RSS table and whether it grows > 10 %
#                (exit status 1 if it does; --kill: 1 if an artifact differs)
#   --kill       run the job once uninterrupted, then again with the worker SIGKILLed once in the
#                middle of reconstruction and once in the middle of the hf export (both triggered by
#                the job's own progress events and files, not by timers), lrqd resuming it; compares
#                the sha256 of the hf and gptq artifacts
#   --models DIR where checkpoints and state dirs go (default: BUILDDIR/../bench-models)
#   --init       the quantization grid's initialisation (default minmax: mse's grid search costs
#                minutes per linear at this width and is not what this bench measures)
#   --keep       keep the state dirs (and the generated checkpoints are always kept)
# A job starts only when no other lrq-worker above 1 GiB RSS runs on the machine (it waits for
# them: the machine is shared, and two 7B-width jobs at once would measure each other).
# Needs /usr/bin/time (Debian package "time"), curl, python3 (+ numpy for the generator).
set -eu
build=$(cd "${1:?usage: e2e-7b.sh BUILDDIR SHAREDDIR [options]}" && pwd) || exit 2
shared=$(cd "${2:?usage: e2e-7b.sh BUILDDIR SHAREDDIR [options]}" && pwd) || exit 2
shift 2
src=${LRQ_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
layers=32 sweep="" kill_mode=0 models="" method=lrq iters=2 threads=${THREADS:-2} keep=0 init=minmax
samples=8 seq=512 eval_windows=4
while [ $# -gt 0 ]; do
    case $1 in
    --layers) layers=$2; shift 2 ;;
    --sweep) sweep=$2; shift 2 ;;
    --kill) kill_mode=1; shift ;;
    --models) models=$2; shift 2 ;;
    --method) method=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --init) init=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "e2e-7b: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done
PY=/usr/bin/python3
for f in "$build/lrqd" "$build/lrq-worker" "$build/lrqctl"; do
    [ -x "$f" ] || { echo "e2e-7b: $f is not built (run make)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "e2e-7b: /usr/bin/time is missing (Debian package \"time\"; scripts/setup installs it)" >&2; exit 2; }
command -v curl >/dev/null || { echo "e2e-7b: curl(1) is missing" >&2; exit 2; }
calib=$shared/data/tinystories/calib.txt evalf=$shared/data/tinystories/eval.txt
[ -r "$calib" ] && [ -r "$evalf" ] || { echo "e2e-7b: no TinyStories data under $shared/data/tinystories" >&2; exit 2; }
case $method in lrq|rtn) ;; *) echo "e2e-7b: --method lrq or rtn" >&2; exit 2 ;; esac
case $init in minmax|mse) ;; *) echo "e2e-7b: --init minmax or mse" >&2; exit 2 ;; esac
[ -n "$models" ] || models=$(dirname "$build")/bench-models
mkdir -p "$models"
models=$(cd "$models" && pwd -P)
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}

T=$(mktemp -d "$models/e2e-7b.XXXXXX")
DPID= MONPID=
cleanup() {
    [ -n "$MONPID" ] && kill "$MONPID" 2>/dev/null
    [ -s "$T/watch.pid" ] && kill "$(cat "$T/watch.pid")" 2>/dev/null
    if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then kill -TERM "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; fi
    # workers of this bench's work dirs that outlived lrqd (it stops them itself; this is the backstop)
    for p in $(pgrep -f -- "--workdir $T/" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    if [ "$keep" = 1 ]; then echo "e2e-7b: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
free_bytes() { df -P -B1 "$1" | awk 'NR == 2 { print $4 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "$EPOCHREALTIME"; else date +%s.%N; fi; }

# ---- the checkpoint ------------------------------------------------------------------------
# model_for L: prints the directory of the L-layer checkpoint, writing it first if absent
# (a complete one has its index written last by mkmodel).
model_for() {
    local L=$1 dir=$models/llama2-7b-L$1
    if [ ! -s "$dir/model.safetensors.index.json" ] || [ ! -s "$dir/tokenizer.bin" ]; then
        # bf16: 2 bytes per weight: 2·32000·4096 + L·202375168 (+ norms)
        local need=$(( (2 * 32000 * 4096 + L * 202375168 + (2 * L + 1) * 4096) * 2 + (256 << 20) ))
        local have
        have=$(free_bytes "$models")
        if [ "$have" -lt "$need" ]; then
            echo "e2e-7b: writing the $L-layer checkpoint needs $(mb "$need") MB; $models has $(mb "$have") MB free" >&2
            exit 1
        fi
        echo "e2e-7b: writing the synthetic $L-layer Llama-2-7B-shaped checkpoint to $dir ($(mb "$need") MB)" >&2
        rm -rf "$dir"
        nice -n 10 $PY "$src/tools/mkmodel.py" --preset llama2-7b --layers "$L" --out "$dir" \
            --tokenizer-text "$calib" >&2 || { echo "e2e-7b: mkmodel failed" >&2; exit 1; }
    fi
    echo "$dir"
}

# ---- lrqd ---------------------------------------------------------------------------------
# start_lrqd NAME: a fresh state dir $T/NAME, lrqd on an ephemeral port; sets DPID, URL, STATE
start_lrqd() {
    STATE=$T/$1
    mkdir -p "$STATE/rusage"
    # The worker under /usr/bin/time -v: one rusage file per attempt, named after the job and the pid.
    cat > "$T/worker-$1.sh" <<EOS
#!/bin/sh
exec /usr/bin/time -v -o "$STATE/rusage/job\${LRQ_JOB_ID:-0}-\$\$.txt" "$build/lrq-worker" "\$@"
EOS
    chmod +x "$T/worker-$1.sh"
    rm -f "$T/port"
    "$build/lrqd" --state-dir "$STATE/state" --listen 127.0.0.1:0 --port-file "$T/port" --no-auth \
        --data-root "$models" --data-root "$shared" --worker "$T/worker-$1.sh" --workers 1 --grace-s 10 \
        --min-free-mb 256 >> "$STATE/lrqd.out" 2>&1 &
    DPID=$!
    local i=0
    while [ ! -s "$T/port" ] && kill -0 "$DPID" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
    [ -s "$T/port" ] || { echo "e2e-7b: lrqd did not start:" >&2; tail -5 "$STATE/lrqd.out" >&2; exit 1; }
    URL=http://127.0.0.1:$(cat "$T/port")
    export LRQ_SERVER=$URL
}
# stop_lrqd: lrqd's peak RSS (kB, VmHWM) into LRQD_HWM, then SIGTERM and wait
stop_lrqd() {
    LRQD_HWM=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$DPID/status" 2>/dev/null || echo 0)
    kill -TERM "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
    DPID=
}

# The lrq-worker processes (not their /usr/bin/time parents) of a work dir.
worker_pids() {
    local p
    for p in $(pgrep -f -- "--workdir $1\$" 2>/dev/null); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = lrq-worker ] && echo "$p"
    done
    return 0
}

# monitor WORKDIR OUT: every 2 s, "time du_bytes cache_bytes" — du of the work dir and the sizes
# of the unlinked files under it that the worker still maps (its activation caches).
monitor() {
    local wd=$1 out=$2 p du cache
    while :; do
        du=$(du -sb "$wd" 2>/dev/null | cut -f1)
        cache=0
        for p in $(worker_pids "$wd"); do
            cache=$(awk -v wd="$wd/" 'index($6, wd) == 1 && $7 == "(deleted)" {
                        split($1, a, "-"); sz[$6] += strtonum("0x" a[2]) - strtonum("0x" a[1]) }
                    END { s = 0; for (f in sz) s += sz[f]; print s }' "/proc/$p/maps" 2>/dev/null || echo 0)
        done
        echo "$(now) ${du:-0} ${cache:-0}" >> "$out"
        sleep 2
    done
}

# jint KEY LINE: the integer value of "KEY" in a one-line JSON object (empty if absent)
jint() { printf '%s\n' "$2" | sed -n 's/.*"'"$1"'":\([0-9][0-9]*\).*/\1/p'; }

# Other lrq-worker processes on the machine holding more than 1 GiB (a model job, not a test's
# stories260K run): their pids, space-separated.
big_workers() {
    local p rss
    for p in $(pgrep -x lrq-worker 2>/dev/null); do
        rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/status" 2>/dev/null)
        [ "${rss:-0}" -gt 1048576 ] && printf '%s ' "$p"
    done
    return 0
}

spec_for() { # MODEL NAME
    local lrq=''
    [ "$method" = rtn ] || lrq='"lrq": {"iterations": '$iters', "lr": 5e-4, "batch_size": 2, "checkpoint_every_s": 1},'
    cat <<EOS
{ "name": "$2", "model": "$1", "method": "$method",
  "weight": {"bits": 4, "group_size": 128, "init": "$init"},
  "calibration": {"path": "$calib", "samples": $samples, "seq_len": $seq},
  "eval": {"path": "$evalf", "seq_len": $seq, "max_windows": $eval_windows},
  $lrq "export": ["hf", "gptq"], "seed": 0, "threads": $threads, "max_attempts": 5 }
EOS
}

# run_job NAME LAYERS KILL: one job on a fresh lrqd; results in $T/NAME.*:
#   .events (time + lrqctl watch line), .disk (monitor), .job/.metrics/.artifacts (lrqctl -o json),
#   .rusage (the attempts' /usr/bin/time files), .lrqd (lrqd's VmHWM, kB), .kills
run_job() {
    local name=$1 L=$2 kill=$3 model id wd line t kills=0 state=recon
    model=$(model_for "$L")
    local others waited=0
    while others=$(big_workers) && [ -n "$others" ]; do
        [ $((waited % 60)) = 0 ] && echo "e2e-7b: waiting for other big lrq-worker processes to end (pids $others)" >&2
        sleep 5; waited=$((waited + 5))
    done
    start_lrqd "$name"
    spec_for "$model" "e2e-7b $name" > "$T/$name.spec.json"
    id=$("$build/lrqctl" submit "$T/$name.spec.json") || { echo "e2e-7b: submit failed" >&2; exit 1; }
    wd=$STATE/state/jobs/$id
    echo "e2e-7b: $name: job $id on $model ($L layers), work dir $wd" >&2
    : > "$T/$name.disk"
    monitor "$wd" "$T/$name.disk" &
    MONPID=$!
    : > "$T/$name.kills"
    # Follow the job's events; in kill mode the events themselves decide when to kill.
    local kb=$(( L / 2 + 1 ))
    [ "$kb" -gt "$L" ] && kb=$L
    set +e
    while IFS= read -r line; do
        t=$(now)
        printf '%s %s\n' "$t" "$line" >> "$T/$name.events"
        [ "$kill" = 1 ] || continue
        case $state in
        recon) # after the first iteration of block kb (1-based) has been reported
            case $line in *'"stage":"reconstruct"'*)
                if [ "$(jint block "$line")" = "$kb" ] && [ "$(jint iteration "$line")" = 1 ]; then
                    for p in $(worker_pids "$wd"); do kill -KILL "$p" && echo "$t reconstruct block $kb iteration 1 pid $p" >> "$T/$name.kills"; done
                    kills=$((kills + 1)); state=wait_export
                fi ;;
            esac ;;
        wait_export) # the export stage reported: kill once the hf safetensors is being written
            case $line in *'"stage":"export"'*'"done":0'*)
                local f=$wd/artifacts/hf/model.safetensors.tmp i=0
                while [ ! -s "$f" ] && [ $i -lt 6000 ] && [ -n "$(worker_pids "$wd")" ]; do sleep 0.05; i=$((i + 1)); done
                if [ -s "$f" ]; then
                    for p in $(worker_pids "$wd"); do
                        kill -KILL "$p" && echo "$(now) export: hf model.safetensors.tmp at $(stat -c %s "$f" 2>/dev/null) bytes pid $p" >> "$T/$name.kills"
                    done
                else
                    echo "$(now) export: missed (the hf file was not seen being written)" >> "$T/$name.kills"
                fi
                kills=$((kills + 1)); state=done ;;
            esac ;;
        esac
    done < <(sh -c 'echo $$ > "$1"; exec "$2" -o json watch "$3"' sh "$T/watch.pid" "$build/lrqctl" "$id" 2>>"$T/$name.watch.err"
             echo "{\"event\":\"watch-exit\",\"rc\":$?}")
    set -e
    kill "$MONPID" 2>/dev/null; wait "$MONPID" 2>/dev/null || true; MONPID=
    "$build/lrqctl" -o json status "$id" > "$T/$name.job"
    "$build/lrqctl" -o json metrics "$id" > "$T/$name.metrics" 2>/dev/null || echo '{}' > "$T/$name.metrics"
    "$build/lrqctl" -o json artifacts "$id" > "$T/$name.artifacts" 2>/dev/null || echo '{}' > "$T/$name.artifacts"
    curl -s "$URL/v1/jobs/$id/progress" > "$T/$name.history" || true
    : > "$T/$name.du"   # one du per directory: du counts a file once per invocation
    for p in "$wd" "$wd/ckpt" "$wd/artifacts/hf" "$wd/artifacts/gptq"; do du -sb "$p" >> "$T/$name.du" 2>/dev/null || true; done
    cp "$wd/log" "$T/$name.log" 2>/dev/null || : > "$T/$name.log"
    # attempts in the order they ended (mtime), not by pid
    ls -tr "$STATE"/rusage/*.txt 2>/dev/null | while IFS= read -r f; do cat "$f"; done > "$T/$name.rusage"
    grep -h "resumed\|killed by signal\|exited with code\|requeue" "$STATE/lrqd.out" > "$T/$name.lrqdlog" || true
    stop_lrqd
    echo "$LRQD_HWM" > "$T/$name.lrqd"
    local st
    st=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' "$T/$name.job")
    if [ "$st" != succeeded ]; then
        echo "e2e-7b: $name: job $id $st:" >&2
        $PY -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error"))' "$T/$name.job" >&2
        tail -20 "$wd/log" >&2 || true
        exit 1
    fi
    # the job's files are no longer needed (the next run needs the disk): keep only what we measured
    [ "$keep" = 1 ] || rm -rf "$STATE/state/jobs"
}

# report NAME LAYERS: the e2e table of one run
report() {
    $PY - "$T" "$1" "$2" "$iters" <<'EOPY'
import json, os, re, sys
T, name, L, iters = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
P = lambda ext: os.path.join(T, name + "." + ext)
ev = []
for line in open(P("events")):
    t, _, js = line.partition(" ")
    try: ev.append((float(t), json.loads(js)))
    except ValueError: pass
prog = [(t, e["data"]) for t, e in ev if e.get("event") == "progress" and isinstance(e.get("data"), dict)]
states = [(t, e["data"].get("state")) for t, e in ev if e.get("event") == "state" and isinstance(e.get("data"), dict)]
t0 = next((t for t, s in states if s == "running"), prog[0][0] if prog else 0.0)
t_end = next((t for t, s in reversed(states) if s in ("succeeded", "failed", "cancelled")), ev[-1][0])
# stages in order of first appearance; a stage lasts until the next one starts (the last: until the job ends)
order, first = [], {}
for t, p in prog:
    s = p.get("stage")
    if s and s not in first: first[s] = t; order.append(s)
bounds = [first[s] for s in order] + [t_end]
stage_s = {s: bounds[i + 1] - bounds[i] for i, s in enumerate(order)}
# per-iteration time: the first report of (block, iteration) k+1 minus that of k, within a block
seen = {}
for t, p in prog:
    if p.get("stage") == "reconstruct" and p.get("iteration") is not None:
        seen.setdefault((p.get("block"), p["iteration"]), t)
d = [seen[(b, i + 1)] - seen[(b, i)] for (b, i) in sorted(seen) if (b, i + 1) in seen and i >= 1]
t_iter = sorted(d)[len(d) // 2] if d else None
# peak RSS per attempt (kB) from /usr/bin/time -v
rss = [int(x) for x in re.findall(r"Maximum resident set size \(kbytes\): (\d+)", open(P("rusage")).read())]
wall = re.findall(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", open(P("rusage")).read())
lrqd_kb = int(open(P("lrqd")).read().strip() or 0)
metrics = json.load(open(P("metrics")))
est = metrics.get("disk_estimate") or {}
du = {}
for line in open(P("du")):
    b, _, path = line.strip().partition("\t")
    du[path.rsplit("/", 2)[-1] if "/artifacts/" in path else path.rsplit("/", 1)[-1]] = int(b)
peak_du = peak_all = peak_cache = 0
for line in open(P("disk")):
    _, a, c = line.split()
    peak_du, peak_cache, peak_all = max(peak_du, int(a)), max(peak_cache, int(c)), max(peak_all, int(a) + int(c))
G = 1 << 30
print("=" * 78)
print(f"{name}: Llama-2-7B-shaped, {L} layers — SYNTHETIC weights (random normal(0, 0.02), norms 1): the")
print("quality numbers mean nothing; time, memory and disk are what this measures.")
print(f"job: {metrics.get('method', '?')} W4 g128 init {metrics.get('weight', {}).get('init', '?')}, {iters} iterations/block, calibration "
      f"{metrics.get('calibration', {}).get('samples', '?')} × {metrics.get('calibration', {}).get('seq_len', '?')} tokens, "
      f"eval 4 windows, exports hf + gptq")
# Stages from the worker's log (1 s stamps; the last attempt's lines): the progress events alone
# cannot split them, as the first reconstruct event comes after block 1's first iteration and the
# evaluation reports its windows at once.
import datetime
def stamp(l):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z lrq-worker\[(\d+)\]: (.*)", l)
    return (datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").timestamp(), m.group(2), m.group(3)) if m else None
lines = [x for x in map(stamp, open(P("log"), errors="replace")) if x]
if lines:
    last_pid = lines[-1][1]
    lines = [x for x in lines if x[1] == last_pid]
def at(pat, last=False):
    hits = [t for t, _, msg in lines if re.search(pat, msg)]
    return (hits[-1] if last else hits[0]) if hits else None
blocks = [(int(m.group(1)), float(m.group(2)), t) for t, _, msg in lines
          for m in [re.search(r"^block (\d+)/\d+: loss .* \(([\d.]+) s\)", msg)] if m]
start, cal = lines[0][0] if lines else None, at(r"^calibration: ")
rows = []
if start is not None and cal is not None: rows.append(("load", cal - start))
if blocks and cal is not None:
    b0 = blocks[0][2] - blocks[0][1]
    rows.append(("calibrate (embed, targets)", b0 - cal))
    rows.append((f"reconstruct ({len(blocks)} blocks)", blocks[-1][2] - b0))
ev0, ev1 = at(r"^evaluating on"), at(r"^eval: ")
if blocks and ev0: rows.append(("layer errors", ev0 - blocks[-1][2]))
if ev0 and ev1: rows.append(("eval", ev1 - ev0))
for k in ("hf", "gptq", "compressed-tensors", "gguf"):
    a, b = at(rf"^exporting {k}\b"), at(rf"^{k} export verified")
    if a and b: rows.append((f"export {k} (+ verify)", b - a))
done = at(r"^done$", last=True)
print(f"{'stage (worker log, 1 s stamps)':<32}{'wall s':>8}")
for n, v in rows:
    print(f"{n:<32}{v:>8.0f}")
if done and start: print(f"{'worker total':<32}{done - start:>8.0f}")
for b, sec, _ in blocks:
    print(f"  block {b}: {sec:.1f} s (the worker's figure)")
print(f"job running → succeeded: {t_end - t0:.1f} s (lrqctl watch; stages by first progress event: "
      + ", ".join(f"{s} {stage_s[s]:.0f}" for s in order) + ")")
if rss:
    print(f"worker peak RSS: {max(rss) / 1048576:.2f} GiB" + (f" (attempts: {', '.join(f'{r / 1048576:.2f}' for r in rss)} GiB)" if len(rss) > 1 else "")
          + f", wall {', '.join(wall)}   [/usr/bin/time -v]")
print(f"lrqd peak RSS: {lrqd_kb / 1024:.1f} MiB   [VmHWM]")
ex = est.get("exports", {})
rows = [("activation caches", est.get("caches_bytes", 0), peak_cache, "peak mapped unlinked files"),
        ("ckpt/", est.get("checkpoints_bytes", 0), du.get("ckpt", 0), "du at the end (the estimate is its peak: 3 state copies)"),
        ("artifacts/hf", ex.get("hf", 0), du.get("hf", 0), "du at the end"),
        ("artifacts/gptq", ex.get("gptq", 0), du.get("gptq", 0), "du at the end"),
        ("work dir total", est.get("total_bytes", 0), peak_all, "peak of du + caches, sampled every 2 s")]
print(f"{'disk':<18}{'estimate GiB':>14}{'used GiB':>11}{'used/est':>10}  measured as")
for n, e, u, how in rows:
    r = f"{u / e:>9.1%}" if e else f"{'-':>9}"
    print(f"{n:<18}{e / G:>14.3f}{u / G:>11.3f} {r}  {how}")
if t_iter is not None:
    recon = stage_s.get("reconstruct", 0.0)
    paper_recon = recon + L * (5000 - iters) * t_iter
    total = t_end - t0
    print(f"per-iteration time: {t_iter:.2f} s (median over blocks of the gap between iterations 1 and 2, batch 2 × {metrics.get('calibration', {}).get('seq_len', '?')})")
    print(f"paper's schedule (5000 iterations/block) at that rate: reconstruction {paper_recon / 3600:.1f} h, "
          f"job {(total + paper_recon - recon) / 3600:.1f} h ({(total + paper_recon - recon) / 86400:.1f} days) on these {os.cpu_count()} cores")
kills = open(P("kills")).read().strip()
if kills:
    print("kills:"); [print("  " + k) for k in kills.splitlines()]
    log = open(P("lrqdlog")).read().strip()
    if log: print("lrqd:"); [print("  " + k.split(" ", 2)[-1]) for k in log.splitlines()]
json.dump({"layers": L, "worker_rss_kb": max(rss) if rss else 0, "lrqd_kb": lrqd_kb, "t_iter": t_iter,
           "est": est.get("total_bytes", 0), "peak_disk": peak_all,
           "sha": {a["path"]: a["sha256"] for a in json.load(open(P("artifacts"))).get("artifacts", [])}},
          open(P("summary"), "w"))
EOPY
}

if [ -n "$sweep" ]; then
    for L in $sweep; do run_job "L$L" "$L" 0; report "L$L" "$L"; done
    $PY - "$T" $sweep <<'EOPY'
import json, os, sys
T, Ls = sys.argv[1], sys.argv[2:]
S = [json.load(open(os.path.join(T, f"L{L}.summary"))) for L in Ls]
print("=" * 78)
print("peak RSS against depth (same width, same job; SYNTHETIC weights)")
print(f"{'layers':>7}{'worker GiB':>12}{'vs first':>10}{'lrqd MiB':>10}{'disk est GiB':>14}{'disk used GiB':>15}")
base = S[0]["worker_rss_kb"]
for s in S:
    print(f"{s['layers']:>7}{s['worker_rss_kb'] / 1048576:>12.2f}{s['worker_rss_kb'] / base - 1:>+10.1%}"
          f"{s['lrqd_kb'] / 1024:>10.1f}{s['est'] / 2**30:>14.2f}{s['peak_disk'] / 2**30:>15.2f}")
g = max(s["worker_rss_kb"] for s in S) / min(s["worker_rss_kb"] for s in S) - 1
print(f"peak RSS grows {g:.1%} from {Ls[0]} to {Ls[-1]} layers: " + ("within 10 %" if g <= 0.10 else "MORE THAN 10 % (grows with depth)"))
sys.exit(0 if g <= 0.10 else 1)
EOPY
elif [ "$kill_mode" = 1 ]; then
    run_job "L$layers-ref" "$layers" 0; report "L$layers-ref" "$layers"
    run_job "L$layers-kill" "$layers" 1; report "L$layers-kill" "$layers"
    $PY - "$T" "$layers" <<'EOPY'
import json, os, sys
T, L = sys.argv[1], sys.argv[2]
a = json.load(open(os.path.join(T, f"L{L}-ref.summary")))["sha"]
b = json.load(open(os.path.join(T, f"L{L}-kill.summary")))["sha"]
kills = open(os.path.join(T, f"L{L}-kill.kills")).read()
print("=" * 78)
print(f"kill and resume, {L} layers (SYNTHETIC weights): worker SIGKILLed {kills.count('pid')} time(s)")
bad = 0
for p in sorted(set(a) | set(b)):
    if not p.endswith(".safetensors"): continue
    same = a.get(p) == b.get(p)
    bad += not same
    print(f"  {p:<34} {'identical' if same else 'DIFFERENT'}  {a.get(p, '-')[:16]}… / {b.get(p, '-')[:16]}…")
print("artifacts identical to the uninterrupted run" if not bad and a else "ARTIFACTS DIFFER")
sys.exit(1 if bad or not a or "missed" in kills else 0)
EOPY
else
    run_job "L$layers" "$layers" 0; report "L$layers" "$layers"
fi
