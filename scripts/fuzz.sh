#!/bin/sh
# fuzz.sh — build every libFuzzer harness in tests/fuzz and run each for a bounded time.
#
# Usage: scripts/fuzz.sh SRC_DIR SECONDS [OUTDIR]
#   SRC_DIR  project root (the harnesses compile the needed sources directly)
#   SECONDS  -max_total_time per harness
#   OUTDIR   binaries, logs and crash inputs (default ./fuzz-out); a crash input is
#            left as OUTDIR/<name>/crash-* (or leak-/timeout-/oom-*)
# Env: FUZZ_HARNESSES="spec router ..." (subset), FUZZ_JOBS=N (harnesses run at once,
#      default 1), CC (default clang).
# Prints one line per harness: "fuzz <name>: <execs> execs, <crashes> crashes" and exits
# non-zero if any harness crashed or failed to build. Each run works on a copy of the
# committed corpus, which is never modified.
# Needs clang and libFuzzer's runtime (Debian 12: clang + libclang-rt-14-dev).
set -u
if [ $# -lt 2 ]; then
    echo "usage: $0 SRC_DIR SECONDS [OUTDIR]" >&2
    exit 2
fi
src=$(cd "$1" && pwd) || exit 2
secs=$2
out=${3:-fuzz-out}
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
cc=${CC:-clang}
case "$cc" in *clang*) ;; *) cc=clang ;; esac   # configure's CC=gcc must not leak in via make
jobs=${FUZZ_JOBS:-1}
all="spec safetensors llama2c hf tok_bin tok_json tok_spm lines router ckpt"
harnesses=${FUZZ_HARNESSES:-$all}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz: $cc not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi

# Sources and pkg-config modules per harness.
srcs_of() {
    io="engine/eng_st_read.c engine/eng_model.c engine/eng_tok.c engine/eng_spm.c engine/eng_data.c common/lrq_err.c common/lrq_fs.c common/lrq_buf.c"
    case $1 in
    spec) echo "common/lrq_spec.c common/lrq_err.c" ;;
    safetensors | llama2c | hf | tok_bin | tok_json | tok_spm) echo "$io" ;;
    lines) echo "daemon/lines.c common/lrq_err.c" ;;
    router) echo "daemon/router.c daemon/routes.c daemon/db.c common/lrq_err.c common/lrq_fs.c common/lrq_buf.c" ;;
    ckpt) echo "worker/wk_ckpt.c common/lrq_fs.c common/lrq_err.c" ;;
    *) return 1 ;;
    esac
}
pkgs_of() {
    case $1 in
    router) echo "jansson sqlite3 libmicrohttpd" ;;
    ckpt) echo "jansson nettle" ;;
    *) echo "jansson" ;;
    esac
}

build() {   # name → $out/bin/fuzz_<name>, log in $out/<name>.build.log
    name=$1
    s=$(srcs_of "$name") || { echo "fuzz: unknown harness $name" >&2; return 1; }
    p=$(pkgs_of "$name")
    # shellcheck disable=SC2086 # a list of modules
    flags=$(pkg-config --cflags --libs $p) || return 1
    set --
    for f in $s; do set -- "$@" "$src/$f"; done
    # db.c links the migrations compiled in from schema/ (generated, as the build does)
    case " $s " in *" daemon/db.c "*)
        sh "$src/scripts/embed-schema.sh" "$out/schema.c" "$src"/schema/*.sql || return 1
        set -- "$@" "$out/schema.c" ;;
    esac
    # shellcheck disable=SC2086
    "$cc" -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -D_GNU_SOURCE -I"$src" -I"$src/common" -I"$src/engine" \
        "$src/tests/fuzz/fuzz_$name.c" "$@" $flags -lm -o "$out/bin/fuzz_$name" \
        >"$out/$name.build.log" 2>&1
}

run() {   # name → $out/<name>.result: "<execs> <crashes> <status>"
    name=$1
    rm -rf "${out:?}/${name:?}" && mkdir -p "$out/$name"
    if ! build "$name"; then
        echo "0 0 build" >"$out/$name.result"
        return
    fi
    work=$(mktemp -d "${TMPDIR:-/tmp}/lrq-fuzz-$name.XXXXXX")
    mkdir -p "$work/corpus"
    [ -d "$src/tests/fuzz/corpus/$name" ] && cp "$src/tests/fuzz/corpus/$name"/* "$work/corpus/" 2>/dev/null
    set -- -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/$name/"
    [ -f "$src/tests/fuzz/dict/$name.dict" ] && set -- "$@" -dict="$src/tests/fuzz/dict/$name.dict"
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$out/bin/fuzz_$name" "$@" "$work/corpus" >"$out/$name.log" 2>&1
    rc=$?
    rm -rf "$work"
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9][0-9]*\).*/\1/p' "$out/$name.log" | tail -n 1)
    crashes=$(find "$out/$name" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
        -o -name 'oom-*' \) | wc -l)
    status=ok
    if [ "$rc" -ne 0 ]; then
        status=fail
        [ "$crashes" -eq 0 ] && crashes=1   # died without an artifact (see the log)
    fi
    echo "${execs:-0} $crashes $status" >"$out/$name.result"
}

mkdir -p "$out/bin"
n=0
for name in $harnesses; do
    run "$name" &
    n=$((n + 1))
    if [ "$n" -ge "$jobs" ]; then
        wait
        n=0
    fi
done
wait

fail=0
for name in $harnesses; do
    read -r execs crashes status <"$out/$name.result" || { execs=0 crashes=0 status=build; }
    if [ "$status" = build ]; then
        echo "fuzz $name: build failed (see $out/$name.build.log)"
        fail=1
        continue
    fi
    echo "fuzz $name: $execs execs, $crashes crashes"
    if [ "$crashes" -ne 0 ]; then
        fail=1
        for f in "$out/$name"/*; do [ -f "$f" ] && echo "  input: $f (log: $out/$name.log)"; done
    fi
done
exit $fail
