#!/bin/sh
# Kill-and-resume: an LRQ job killed with SIGKILL at random moments and restarted
# on the same work dir must produce artifacts bit-identical to an uninterrupted run.
# Also: a corrupt newest checkpoint falls back to the previous one.
set -u
: "${LRQ_BUILDDIR:?}" "${LRQ_SHARED:?}"
W="$LRQ_BUILDDIR/lrq-worker"
KILLS=${LRQ_RESUME_KILLS:-20}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrq-resume.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "1..4"

cat > "$tmp/spec.json" <<EOS
{"model": "$LRQ_SHARED/models/stories260K/stories260K.bin", "method": "lrq",
 "weight": {"bits": 3, "group_size": 0, "init": "minmax"},
 "calibration": {"path": "$LRQ_SHARED/data/tinystories/calib.txt", "samples": 12, "seq_len": 64},
 "lrq": {"iterations": 300, "lr": 2e-3, "batch_size": 2, "checkpoint_every_s": 0.05},
 "export": ["hf"], "seed": 3, "threads": 1}
EOS

t0=$(date +%s.%N)
"$W" run --spec "$tmp/spec.json" --workdir "$tmp/ref" > "$tmp/ref.out" 2> "$tmp/ref.err"
rc=$?
t1=$(date +%s.%N)
ref=$(sha256sum "$tmp/ref/artifacts/hf/model.safetensors" 2>/dev/null | cut -d' ' -f1)
if [ $rc -eq 0 ] && [ -n "$ref" ]; then echo "ok 1 - uninterrupted run (sha256 $ref)"; else
    echo "not ok 1 - uninterrupted run failed (exit $rc)"; tail -5 "$tmp/ref.err" | sed 's/^/# /'; exit 0; fi
dur=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
echo "# uninterrupted run: ${dur}s"

# Kill moments follow the run's own progress, not the clock: each run is killed after
# a random number (0–3) of new checkpoint events in its progress.jsonl plus 0–20 ms, so
# kills land in start-up, replay, the block loop and checkpoint writes on any machine.
# ckpts WD: checkpoint events so far
ckpts() { _c=$(grep -c '"event":"checkpoint"' "$1/progress.jsonl" 2>/dev/null); echo "${_c:-0}"; }
# wait_ckpts WD N PID: until WD has N checkpoint events, while PID runs (its exit ends the wait)
wait_ckpts() { while [ "$(ckpts "$1")" -lt "$2" ] && kill -0 "$3" 2>/dev/null && ! [ -f "$1/metrics.json" ]; do sleep 0.005; done; }
# after_ck: a run that started with a checkpoint on disk and got as far as writing
# one of its own must have resumed (its "resume" event); killed earlier, it had no say
after_ck() {
    if [ $had = 1 ] && grep -q '"event":"checkpoint"' "$tmp/k.out"; then
        ck_runs=$((ck_runs + 1)); grep -q '"event":"resume"' "$tmp/k.out" || no_resume=$((no_resume + 1))
    fi
}
kills=0 resumes=0 ck_runs=0 no_resume=0
i=0
while [ $i -lt "$KILLS" ]; do
    i=$((i + 1))
    r=$(awk -v s="$i$$" 'BEGIN { srand(s); printf "%d %.3f", int(rand() * 4), 0.02 * rand() }')
    had=0; [ -f "$tmp/k/ckpt/state.ckpt" ] && had=1
    "$W" run --spec "$tmp/spec.json" --workdir "$tmp/k" > "$tmp/k.out" 2>> "$tmp/k.err" &
    pid=$!
    wait_ckpts "$tmp/k" $(( $(ckpts "$tmp/k") + ${r% *} )) $pid
    sleep "${r#* }"
    # landed: SIGKILL reached the run before it finished (wait reports 128 + 9)
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null; st=$?
    [ $st -eq 137 ] && kills=$((kills + 1))
    after_ck

    [ -f "$tmp/k/artifacts/hf/model.safetensors" ] && break
done
had=0; [ -f "$tmp/k/ckpt/state.ckpt" ] && had=1
"$W" run --spec "$tmp/spec.json" --workdir "$tmp/k" > "$tmp/k.out" 2>> "$tmp/k.err"
rc=$?
[ $had = 1 ] && ! grep -q '"event":"resume"' "$tmp/k.out" && no_resume=$((no_resume + 1))
resumes=$(grep -c "resuming from" "$tmp/k.err")
got=$(sha256sum "$tmp/k/artifacts/hf/model.safetensors" 2>/dev/null | cut -d' ' -f1)
if [ $rc -eq 0 ] && [ "$got" = "$ref" ] && [ "$kills" -ge 1 ]; then
    echo "ok 2 - $kills SIGKILLs landed, $resumes resumes: artifacts bit-identical"
else
    echo "not ok 2 - after $kills SIGKILLs ($resumes resumes): exit $rc, sha256 $got != $ref"
    tail -5 "$tmp/k.err" | sed 's/^/# /'
fi
# every run that found a checkpoint (and lived long enough to decide) resumed from it
[ "$resumes" -ge 1 ] && [ "$no_resume" = 0 ] && echo "ok 3 - $resumes resumes; every run past start-up with a checkpoint on disk resumed ($ck_runs + the last)" \
    || echo "not ok 3 - $resumes resumes; $no_resume run(s) with a checkpoint on disk started over"

# Corrupt newest checkpoint: stop mid-run with SIGTERM (checkpoint + exit 75), flip a byte, resume.
# SIGTERM once both state.ckpt and state.ckpt.prev exist (the run's own progress)
"$W" run --spec "$tmp/spec.json" --workdir "$tmp/c" > "$tmp/c.out" 2> "$tmp/c.err" &
pid=$!
while ! [ -f "$tmp/c/ckpt/state.ckpt.prev" ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done
kill -TERM $pid; wait $pid; st=$?
if [ -f "$tmp/c/ckpt/state.ckpt" ] && [ -f "$tmp/c/ckpt/state.ckpt.prev" ]; then
    printf '\377' | dd of="$tmp/c/ckpt/state.ckpt" bs=1 seek=100 conv=notrunc 2>/dev/null
fi
"$W" run --spec "$tmp/spec.json" --workdir "$tmp/c" > "$tmp/c.out" 2>> "$tmp/c.err"
rc=$?
got=$(sha256sum "$tmp/c/artifacts/hf/model.safetensors" 2>/dev/null | cut -d' ' -f1)
if [ $st -eq 75 ] && [ $rc -eq 0 ] && [ "$got" = "$ref" ] && grep -q "checksum mismatch" "$tmp/c.err"; then
    echo "ok 4 - SIGTERM exits 75; corrupt newest checkpoint detected, previous used, artifacts identical"
else
    echo "not ok 4 - SIGTERM status $st, resume exit $rc, sha256 $got"
    grep -E "checkpoint|resum|error" "$tmp/c.err" | tail -5 | sed 's/^/# /'
fi
