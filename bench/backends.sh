#!/bin/sh
# One lrq-bench block shape through the three matmul configurations side by side (issue 12):
# fp32 on OpenBLAS (the default), fp32 on oneDNN, bf16 on oneDNN (native where the CPU has
# avx512_bf16/AMX, else emulated: say so). Each row's ratio is to its own matmul rate in the same run.
# usage: bench/backends.sh BUILDDIR LRQ-BENCH-ARGS...
set -eu
build=$(cd "${1:?usage: bench/backends.sh BUILDDIR ARGS...}" && pwd) || exit 2
shift
py=${PYTHON:-/usr/bin/python3}
out=$(mktemp "${TMPDIR:-/tmp}/lrq-backends.XXXXXX")
trap 'rm -f "$out"' EXIT
for cfg in "openblas fp32" "onednn fp32" "onednn bf16"; do
    set -- "$@" # keep the shape arguments
    be=${cfg% *} prec=${cfg#* }
    line=$("$build/bench/lrq-bench" "$@" --backend "$be" --precision "$prec" | tail -n 1)
    echo "$line"
    printf '%s\n' "$line" >> "$out"
done
"$py" - "$out" <<'EOPY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("%-26s %10s %9s %9s %8s %8s %10s" % ("backend precision", "ms/iter", "GFLOP/it", "mmGF/s", "ratio",
                                          "vs fp32", "peakRSS_MB"))
base = rows[0]["ms_per_iter"]
for j in rows:
    name = "%s %s%s" % (j["backend"], j["precision"], " (%s)" % j["bf16"] if j["precision"] == "bf16" else "")
    print("%-26s %10.2f %9.2f %9.1f %8.3f %7.2fx %10.0f" % (name, j["ms_per_iter"], j["gflop_per_iter"],
                                                            j["mm_gflops"], j["ratio"], base / j["ms_per_iter"],
                                                            j["peak_rss_mb"]))
EOPY
