#!/bin/sh
# tests/fuzz/fuzz.sh -- build the libFuzzer targets (tests/fuzz/*.c) with
# clang, ASan and UBSan, and run each for SECONDS on its seeds
# (tests/fuzz/<target>/).  Run by `make fuzz-check` (seconds each) and
# `make fuzz` (FUZZ_SECONDS each).
#
#   usage: fuzz.sh SECONDS [target ...]
#
# Environment: FUZZ_CC (clang), FUZZ_CFLAGS (the defines and include
# flags), FUZZ_LIBS (the libraries).  Objects and binaries go to
# tests/fuzz/build/; a crash, leak or timeout leaves its input there as
# <target>-crash-*, -leak-* or -timeout-* and fails the run.  Without
# clang or libFuzzer it fails (Debian: clang, libclang-rt-14-dev).
set -u

secs=${1:?usage: fuzz.sh SECONDS [target ...]}
shift
[ $# -gt 0 ] || set -- json lt schema events api

dir=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$dir/../.." && pwd)
out=$dir/build
cc=${FUZZ_CC:-clang}
san="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined
-fno-sanitize-recover=all"
cflags="-std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I$top/lib
${FUZZ_CFLAGS:-} $san"
libs=${FUZZ_LIBS:--ljson-c -lmd -lm}

die() { printf 'fuzz: %s\n' "$*" >&2; exit 1; }

mkdir -p "$out" || die "cannot create $out"
cd "$out" || exit 1

# clang and libFuzzer, or a loud failure.
command -v "$cc" >/dev/null 2>&1 ||
    die "$cc not found: the fuzz targets need clang with libFuzzer (Debian: clang libclang-rt-14-dev)"
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >probe.c
"$cc" -fsanitize=fuzzer,address,undefined -o probe probe.c 2>probe.err ||
    die "$cc cannot link libFuzzer (Debian: libclang-rt-14-dev): $(head -n 3 probe.err)"

# The library, instrumented; rebuilt when a source or header is newer.
objs=""
for src in "$top"/lib/*.c; do
    o=$(basename "$src" .c).o
    objs="$objs $o"
    if [ ! -e "$o" ] ||
       [ -n "$(find "$src" "$top"/lib/*.h -newer "$o")" ]; then
        # shellcheck disable=SC2086 # the flags are words
        "$cc" $cflags -fsanitize=fuzzer-no-link -c -o "$o" "$src" ||
            die "cannot compile $src"
    fi
done

rc=0
for t in "$@"; do
    [ -e "$dir/$t.c" ] || die "no fuzz target $t ($dir/$t.c)"
    extra=""
    [ "$t" = api ] && extra=-lmicrohttpd
    # shellcheck disable=SC2086 # the flags are words
    "$cc" $cflags -fsanitize=fuzzer -o "fuzz-$t" "$dir/$t.c" $objs \
        $extra $libs || die "cannot build fuzz target $t"
    # New inputs go to build/corpus/<t>, never into the seeds.
    mkdir -p "corpus/$t"
    printf 'fuzz: %s for %ss\n' "$t" "$secs"
    if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
        "./fuzz-$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$out/$t-" \
            "corpus/$t" "$dir/$t" </dev/null >"$t.log" 2>&1; then
        tail -n 40 "$t.log" >&2
        printf 'fuzz: %s FAILED (log: %s, input: %s-*)\n' "$t" \
            "$out/$t.log" "$out/$t" >&2
        rc=1
    else
        grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' \
            "$t.log" | sed "s/^/fuzz: $t: /"
    fi
done
exit "$rc"
