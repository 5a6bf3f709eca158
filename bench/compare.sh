#!/bin/sh
# Side-by-side: one LRQ iteration in C (bench/lrq-bench) and in PyTorch CPU (bench/torch_block.py),
# same shapes, same thread count, each as a ratio to its own sgemm measured in the same run.
# Each run is repeated REPS times (default 2; the machine is shared) and the faster one is kept.
# usage: bench/compare.sh BUILDDIR [THREADS]      (env: REPS=2, SHAPES="big small")
# Optional: needs Debian's python3-torch (apt-get install python3-torch); skips cleanly without it.
set -eu
build=${1:?usage: bench/compare.sh BUILDDIR [THREADS]}
threads=${2:-2}
build=$(cd "$build" && pwd) || exit 2
reps=${REPS:-2}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-/usr/bin/python3}

if ! "$py" -c 'import torch' >/dev/null 2>&1; then
    echo "skipped: python3-torch not installed (apt-get install python3-torch)"
    exit 0
fi
cbench="$build/bench/lrq-bench"
if [ ! -x "$cbench" ]; then
    echo "compare.sh: $cbench not built (make bench/lrq-bench in $build); PyTorch rows only" >&2
    cbench=""
fi

big="--dim 4096 --ffn 11008 --heads 32 --kv-heads 32 --rank 1024 --batch 2 --seq 512 --iters 3"
small="--dim 64 --ffn 172 --heads 8 --kv-heads 4 --rank 16 --batch 2 --seq 256 --iters 50"
out=$(mktemp "${TMPDIR:-/tmp}/lrq-compare.XXXXXX")
trap 'rm -f "$out"' EXIT

# best IMPL SHAPE CMD...: run CMD reps times, append the JSON line with the lowest ms_per_iter.
best() {
    impl=$1 shape=$2
    shift 2
    bestline="" bestms=""
    i=0
    while [ "$i" -lt "$reps" ]; do
        line=$("$@" | tail -n 1)
        ms=$(printf '%s\n' "$line" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["ms_per_iter"])')
        echo "  $impl $shape run $((i + 1)): $line" >&2
        if [ -z "$bestms" ] || "$py" -c "import sys; sys.exit(0 if $ms < $bestms else 1)"; then
            bestline=$line bestms=$ms
        fi
        i=$((i + 1))
    done
    printf '%s\t%s\t%s\n' "$shape" "$impl" "$bestline" >> "$out"
}

for s in ${SHAPES:-big small}; do
    eval "args=\$$s"
    label=$([ "$s" = big ] && echo "7B-block" || echo "260K-block")
    # shellcheck disable=SC2086
    [ -n "$cbench" ] && best c "$label" "$cbench" block $args --threads "$threads"
    # shellcheck disable=SC2086
    [ -n "$cbench" ] && best c-bf16 "$label" "$cbench" block $args --threads "$threads" --precision bf16 --backend onednn
    # shellcheck disable=SC2086
    best pytorch "$label" "$py" "$here/torch_block.py" block $args --threads "$threads"
    # shellcheck disable=SC2086
    best pytorch-bf16 "$label" "$py" "$here/torch_block.py" block $args --threads "$threads" --precision bf16
done

"$py" - "$out" "$threads" <<'EOF'
import json, sys
rows = [l.rstrip("\n").split("\t", 2) for l in open(sys.argv[1]) if l.strip()]
res = {}
for shape, impl, line in rows:
    res.setdefault(shape, {})[impl] = json.loads(line)
print("threads %s; best of the repeated runs; ratio = ms/iter ÷ (counted GFLOP ÷ own matmul GFLOP/s in that precision)"
      % sys.argv[2])
print("%-11s %-26s %10s %10s %9s %8s %8s %10s" % ("shape", "impl", "ms/iter", "best_ms", "GFLOP/it", "mmGF/s",
                                                    "ratio", "peakRSS_MB"))
for shape, d in res.items():
    for impl in ("c", "c-bf16", "pytorch", "pytorch-bf16"):
        if impl not in d:
            continue
        j = d[impl]
        name = j.get("impl") or "c %s %s%s" % (j["backend"], j["precision"],
                                               " (%s)" % j["bf16"] if j["precision"] == "bf16" else "")
        print("%-11s %-26s %10.2f %10.2f %9.2f %8.1f %8.3f %10.0f" % (
            shape, name, j["ms_per_iter"], j["best_ms"], j["gflop_per_iter"], j.get("mm_gflops", j["sgemm_gflops"]),
            j["ratio"], j["peak_rss_mb"]))
    for c, t in (("c", "pytorch"), ("c-bf16", "pytorch-bf16")):
        if c in d and t in d:
            print("%-11s %s_ms / %s_ms = %.2f" % (shape, t, c, d[t]["ms_per_iter"] / d[c]["ms_per_iter"]))
EOF
