#!/bin/sh
# fuzz/run.sh BUILD_DIR SECONDS - run every fuzz_* binary in BUILD_DIR for
# SECONDS each, on a working copy of its seed corpus, with its dictionary.
#
# fuzz_<name> reads fuzz/corpus/<name>/ (copied to fuzz/corpus-work/<name>/,
# which is gitignored, so new inputs never dirty the tree) and
# fuzz/<name>.dict when present. A crash leaves its input in
# fuzz/corpus-work/<name>-crash-* (or -leak-, -timeout-): add it to fuzz/corpus/<name>/ once fixed,
# as a regression seed. Exits non-zero when any fuzzer failed.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
work="$here/corpus-work"
mkdir -p "$work"

found=0
failed=""
for bin in "$build"/fuzz_*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  found=1
  name=$(basename "$bin")
  name=${name#fuzz_}
  mkdir -p "$work/$name"
  if [ -d "$here/corpus/$name" ]; then
    cp -R "$here/corpus/$name/." "$work/$name/"
  fi
  dict=""
  [ -f "$here/$name.dict" ] && dict="-dict=$here/$name.dict"
  echo "== fuzz_$name: ${seconds}s"
  # -rss_limit_mb and -timeout keep one slow input from hanging the run;
  # -print_final_stats gives a one-line summary per fuzzer.
  if ! "$bin" $dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$work/$name-" \
      "$work/$name" >"$work/$name.log" 2>&1; then
    echo "!! fuzz_$name FAILED (log: $work/$name.log)"
    tail -n 40 "$work/$name.log"
    failed="$failed $name"
  else
    grep -E 'stat::number_of_executed_units|stat::new_units_added' "$work/$name.log" | tr '\n' ' '
    echo
  fi
done

if [ $found -eq 0 ]; then
  echo "no fuzz_* binaries in $build (build with: make fuzz, or cmake -DHB_FUZZ=ON with CC=clang)" >&2
  exit 2
fi
if [ -n "$failed" ]; then
  echo "fuzzers failed:$failed"
  exit 1
fi
echo "all fuzzers passed"
