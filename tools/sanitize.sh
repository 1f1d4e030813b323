#!/usr/bin/env bash
# The compiled kernels under AddressSanitizer + UndefinedBehaviorSanitizer (gcc), with the tests
# that drive them and a bounded coverage-guided fuzzing run of the .bnn loader.
#
#   tools/sanitize.sh [PYTHON]        (make sanitize: PYTHON = the venv of make test)
#
# 1. Builds binarynet with -DBINARYNET_SANITIZE=ON (CMakeLists.txt: -fsanitize=address,undefined
#    -fno-sanitize-recover=undefined) into build/sanitize/site: only the extension is compiled,
#    in its own build folder (incremental on a second run).
# 2. Runs, with libasan preloaded into the (uninstrumented) interpreter:
#    tests/backends/engine/test_kernels.py (every kernel variant of this CPU, edge shapes, bad arguments),
#    tests/backends/engine/test_engine_inputs.py (hostile arrays and arguments for every compiled function) and
#    tests/graph/test_fuzz_bnn.py (random and damaged .bnn files through the engine). Any memory error
#    or undefined behaviour aborts the run with a report.
# 3. Installs atheris and runs fuzz/fuzz_bnn.py (seeds from fuzz/make_corpus.py): FUZZ_SECONDS
#    (default 60; 0 skips step 3) coverage-guided on the regular build, then FUZZ_ASAN_SECONDS
#    (default 30) on the sanitized build. If atheris cannot be installed, step 3 is skipped
#    with a message (the hypothesis fuzzing of steps 2 and make test still ran).
#
# Environment: FUZZ_SECONDS, FUZZ_ASAN_SECONDS, BINARYNET_FUZZ_EXAMPLES (hypothesis examples
# per test, default 30 here), CXX (the compiler; its libasan is preloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-${PYTHON:-build/venv/bin/python}}
PY=$(command -v "$PY")
OUT=build/sanitize
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_ASAN_SECONDS=${FUZZ_ASAN_SECONDS:-30}
export BINARYNET_FUZZ_EXAMPLES=${BINARYNET_FUZZ_EXAMPLES:-30}
CXX=${CXX:-g++}
export CXX
start=$(date +%s)
say() { printf '[sanitize %3ds] %s\n' $(($(date +%s) - start)) "$*"; }

if [ ! -f "$($CXX -print-file-name=libasan.so)" ]; then
  echo "tools/sanitize.sh: $CXX has no libasan.so (Debian: apt-get install libgcc-12-dev)" >&2
  exit 1
fi
say "building the kernels with ASan + UBSan ($CXX, $($CXX -dumpfullversion 2>/dev/null || echo '?'))"
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
  --target "$OUT/site" \
  -Ccmake.define.BINARYNET_SANITIZE=ON -Ccmake.build-type=RelWithDebInfo \
  -Cbuild-dir="$OUT/cmake" .
ls "$OUT"/site/binarynet/_kernels*.so >/dev/null

# The interpreter is not instrumented: preload the runtime (and libstdc++, so that ASan's
# __cxa_throw interceptor finds the real one). -S: no site hooks, so an editable install of
# binarynet in this environment cannot take precedence over $OUT/site; the environment's own
# sys.path (site-packages and what .pth files add) comes after it.
SYSPATH=$("$PY" -c 'import os, sys; print(os.pathsep.join(p for p in sys.path[1:] if p))')
run() {
  LD_PRELOAD="$($CXX -print-file-name=libasan.so) $($CXX -print-file-name=libstdc++.so)" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:print_summary=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  PYTHONPATH="$PWD/$OUT/site:$PWD/fuzz:$SYSPATH" \
  "$PY" -S "$@"
}
run -c 'import binarynet._kernels as k, sys; assert "sanitize/site" in k.__file__, k.__file__' \
  || { echo "tools/sanitize.sh: the sanitized build is not the one imported" >&2; exit 1; }

say "tests under ASan + UBSan (hypothesis: $BINARYNET_FUZZ_EXAMPLES examples per test)"
# --capture=sys: a sanitizer report goes to file descriptor 2, which pytest must not capture
# (the process dies before pytest could show it).
run -m pytest -q -p no:cacheprovider --capture=sys tests/backends/engine/test_kernels.py \
  tests/backends/engine/test_engine_inputs.py tests/graph/test_fuzz_bnn.py

# fuzz LABEL SECONDS COMMAND...: run fuzz/fuzz_bnn.py on $OUT/fuzz/corpus; a failure prints the
# report and stops. -rss_limit_mb: a run over 4 GiB (a blow-up) is a failure too.
fuzz() {
  local label=$1 seconds=$2 status=0
  shift 2
  say "atheris: fuzz/fuzz_bnn.py for ${seconds}s, $label"
  "$@" fuzz/fuzz_bnn.py "$OUT/fuzz/corpus" -max_total_time="$seconds" -timeout=60 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$OUT/fuzz/crashes/" \
    >"$OUT/fuzz/$label.log" 2>&1 || status=$?
  grep -E '^(#[0-9]+ +(INITED|DONE)|Done |stat::(number_of_executed_units|peak_rss))' \
    "$OUT/fuzz/$label.log" || true
  if [ "$status" -ne 0 ]; then
    grep -v '^    #[1-9][0-9]' "$OUT/fuzz/$label.log" | tail -60
    echo "tools/sanitize.sh: the fuzzer found a failure (input in $OUT/fuzz/crashes/)" >&2
    exit 1
  fi
}

if [ "$FUZZ_SECONDS" -gt 0 ]; then  # (libFuzzer reads -max_total_time=0 as "no limit")
  if "$PY" -c 'import atheris' 2>/dev/null ||
    timeout 180 "$PY" -m pip install --quiet --disable-pip-version-check atheris; then
    rm -rf "$OUT/fuzz" && mkdir -p "$OUT/fuzz/crashes"
    "$PY" fuzz/make_corpus.py "$OUT/fuzz/corpus"
    # a. Coverage-guided, on the regular build of this environment: libFuzzer keeps the inputs
    #    that reach new Python code of bnnfile/engine (the corpus grows).
    fuzz coverage-guided "$FUZZ_SECONDS" "$PY"
    # b. The grown corpus, mutated further, through the sanitized kernels. libasan provides
    #    the coverage callbacks here instead of libFuzzer, so this run has no coverage feedback
    #    (atheris warns about it): it is mutation fuzzing of (a)'s corpus under ASan + UBSan.
    if [ "$FUZZ_ASAN_SECONDS" -gt 0 ]; then fuzz sanitized "$FUZZ_ASAN_SECONDS" run; fi
  else
    say "atheris could not be installed: fuzzing step SKIPPED (the hypothesis fuzzing ran)"
  fi
fi
say "clean: no ASan or UBSan report"
