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

# Kill at random moments spread over the run's duration; then let it finish.
kills=0 resumes=0
i=0
while [ $i -lt "$KILLS" ]; do
    i=$((i + 1))
    delay=$(awk -v d="$dur" -v s="$i$$" 'BEGIN { srand(s); printf "%.3f", 0.05 + rand() * d / 12 }')
    "$W" run --spec "$tmp/spec.json" --workdir "$tmp/k" > "$tmp/k.out" 2>> "$tmp/k.err" &
    pid=$!
    sleep "$delay"
    if kill -9 $pid 2>/dev/null; then kills=$((kills + 1)); fi
    wait $pid 2>/dev/null
    [ -f "$tmp/k/artifacts/hf/model.safetensors" ] && break
done
"$W" run --spec "$tmp/spec.json" --workdir "$tmp/k" > "$tmp/k.out" 2>> "$tmp/k.err"
rc=$?
resumes=$(grep -c "resuming from" "$tmp/k.err")
got=$(sha256sum "$tmp/k/artifacts/hf/model.safetensors" 2>/dev/null | cut -d' ' -f1)
if [ $rc -eq 0 ] && [ "$got" = "$ref" ]; then
    echo "ok 2 - $kills SIGKILLs, $resumes resumes: artifacts bit-identical"
else
    echo "not ok 2 - after $kills SIGKILLs ($resumes resumes): exit $rc, sha256 $got != $ref"
    tail -5 "$tmp/k.err" | sed 's/^/# /'
fi
[ "$resumes" -ge 1 ] && echo "ok 3 - at least one run resumed from a checkpoint" || echo "not ok 3 - no resume happened"

# Corrupt newest checkpoint: stop mid-run with SIGTERM (checkpoint + exit 75), flip a byte, resume.
"$W" run --spec "$tmp/spec.json" --workdir "$tmp/c" > "$tmp/c.out" 2> "$tmp/c.err" &
pid=$!
sleep $(awk -v d="$dur" 'BEGIN { printf "%.3f", d * 0.5 }')
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
