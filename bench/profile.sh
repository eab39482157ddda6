#!/usr/bin/env bash
# bench/profile.sh ROW [TOOL]: where hubbub's time goes on one measurement.
#
# Starts hubbub pinned to core 0, runs hb_loadgen pinned to core 1 with the
# arguments of ROW (a row of bench/rows.sh: W2-even, W3-paced, W1-5k-if32, ...)
# and, once the generator starts publishing (its --ready-file), attaches TOOL
# to the server for the publishing phase:
#
#   none      (default) the hb_loadgen JSON line only
#   perf      perf record -e cpu-clock -g: shares by DSO and the top symbols
#             (hardware counters are not available in this VM; cpu-clock is)
#   syscalls  perf stat on the syscall tracepoints: each system call's count,
#             and per delivery and per publish
#   strace    strace -c -f (heavy: slows the server; counts, not times)
#
# Environment: HB_BUILD (build), PROFILE_DURATION (seconds of publishing, 6),
# PROFILE_TARGET (hubbub, or uws: the uWebSockets.js peer, one worker),
# PROFILE_RT (1: server and generator SCHED_FIFO, as BENCH_RT in run.sh),
# PROFILE_ARGS (hb_loadgen arguments after the row's, which they override,
# e.g. '--per-conn-rate 1'),
# PROFILE_CONFIG (a JSON object merged over the bench config, e.g.
# '{"flush_interval_ms":0}'), PROFILE_OUT (where perf.data etc. go; a temp dir),
# PROFILE_THREADS (hubbub's --threads, 1; all of them on core 0: what the
# cross-thread hand-off costs in CPU, not what the cores buy).
# Prints everything to stdout; the exact commands are echoed with "+ ".
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
ROW_NAME=${1:?usage: bench/profile.sh ROW [none|perf|syscalls|strace]}
TOOL=${2:-none}
BUILD=${HB_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
HB=$BUILD/hubbub
LG=$BUILD/hb_loadgen
[ -x "$HB" ] && [ -x "$LG" ] || { echo "profile: $HB or $LG missing (make build)"; exit 1; }
DUR=${PROFILE_DURATION:-6}
SMOKE=0
. bench/rows.sh
[ -n "${ROW[$ROW_NAME]:-}" ] || { echo "profile: no row $ROW_NAME in bench/rows.sh (${!ROW[*]})"; exit 1; }

TMP=$(mktemp -d /tmp/hb-profile.XXXXXX)
OUTDIR=${PROFILE_OUT:-$TMP}
mkdir -p "$OUTDIR"
SRV_PID="" TOOL_PID=""
cleanup() {
  [ -n "$TOOL_PID" ] && kill -INT "$TOOL_PID" 2>/dev/null
  [ -n "$SRV_PID" ] && { kill -TERM "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null; }
  [ "$OUTDIR" = "$TMP" ] || rm -rf "$TMP"
}
trap cleanup EXIT

SEED=$TMP/seed TOKENS=$TMP/tokens.txt MAXCONN=19900
. bench/seed.sh || exit 1
CONFIG=$TMP/hubbub.json
if [ -n "${PROFILE_CONFIG:-}" ]; then
  node -e 'const fs = require("fs"); const [f, add] = process.argv.slice(1);
    fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, "utf8")), ...JSON.parse(add) }));' \
    "$CONFIG" "$PROFILE_CONFIG" || exit 1
fi
PORT=$((20000 + RANDOM % 20000))
TARGET=${PROFILE_TARGET:-hubbub}
THREADS=${PROFILE_THREADS:-1}
RT="" RT_TOOL=""
# the tool must outrank what it watches, or it never runs to write its data
[ "${PROFILE_RT:-0}" = 1 ] && RT="chrt -f 10" RT_TOOL="chrt -f 20"
if [ "$TARGET" = uws ]; then
  echo "+ $RT taskset -c 0 node bench/peers/uws.mjs PORT"
  $RT taskset -c 0 node bench/peers/uws.mjs "$PORT" 2>"$OUTDIR/server.log" &
else
  echo "+ $RT taskset -c 0 hubbub serve --threads $THREADS --config $(tr -d '\n' < "$CONFIG")"
  $RT taskset -c 0 "$HB" serve --listen "127.0.0.1:$PORT" --data "$SEED" --threads "$THREADS" --config "$CONFIG" 2>"$OUTDIR/server.log" &
fi
SRV_PID=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

SYSCALLS="read readv recvfrom recvmsg write writev sendto sendmsg epoll_wait epoll_pwait epoll_ctl io_uring_enter futex accept4 close"
if [ "$TOOL" = perf ]; then
  # Recording starts now and the report keeps the publishing phase (sample
  # times against the generator's start, both CLOCK_MONOTONIC): attaching
  # later may wait seconds while SCHED_FIFO work keeps both cores busy.
  echo "+ perf record -e cpu-clock -F 2999 -g --clockid monotonic -p \$server (reported: the publishing phase)"
  $RT_TOOL perf record -q -e cpu-clock -F 2999 -g --clockid monotonic -p "$SRV_PID" -o "$OUTDIR/perf.data" 2>/dev/null &
  TOOL_PID=$!
  sleep 1
fi
if [ "$TOOL" = syscalls ]; then
  # Counting starts now, in 500 ms intervals, and only the intervals of the
  # publishing phase are summed: enabling tracepoints waits for RCU, which
  # may take seconds while SCHED_FIFO work keeps both cores busy.
  ev=$(for s in $SYSCALLS; do printf 'syscalls:sys_enter_%s,' "$s"; done)raw_syscalls:sys_enter
  echo "+ perf stat -I 500 -x, -e <sys_enter tracepoints: $SYSCALLS, all> -p \$server (the publishing phase's intervals)"
  $RT_TOOL perf stat -I 500 -x, -e "$ev" -p "$SRV_PID" -o "$OUTDIR/syscalls.csv" &
  TOOL_PID=$!
  T_TOOL=$(date +%s.%N)
  sleep 1
fi

# the generator publishes DUR + 1 s; the tool sees DUR s from the first publish
READY=$TMP/publishing
args="${ROW[$ROW_NAME]} ${PROFILE_ARGS:-}" # a later --duration overrides the row's
echo "+ $RT taskset -c 1 hb_loadgen --target $TARGET $args --duration $((DUR + 1))"
# shellcheck disable=SC2086
$RT taskset -c 1 "$LG" --target "$TARGET" --port "$PORT" --pid "$SRV_PID" --tokens "$TOKENS" --api-token "$API_TOKEN" \
  --label "$ROW_NAME" --ready-file "$READY" $args --duration $((DUR + 1)) > "$OUTDIR/loadgen.json" &
LG_PID=$!
for _ in $(seq 1 600); do [ -e "$READY" ] && break; kill -0 $LG_PID 2>/dev/null || break; sleep 0.1; done
[ -e "$READY" ] || { echo "profile: the generator never started publishing"; exit 1; }
T_READY=$(date +%s.%N)
case $TOOL in
  none) ;;
  perf|syscalls) sleep "$DUR" ;;
  strace)
    echo "+ strace -c -f -p \$hubbub (for $DUR s)"
    $RT_TOOL timeout -s INT "$DUR" strace -c -f -p "$SRV_PID" -o "$OUTDIR/strace.txt" ;;
  *) echo "profile: unknown tool $TOOL"; exit 1 ;;
esac
wait $LG_PID
if [ -n "$TOOL_PID" ]; then kill -INT "$TOOL_PID"; wait "$TOOL_PID"; TOOL_PID=""; fi
cat "$OUTDIR/loadgen.json"

# per delivery and per publish, from the generator's totals over its DUR + 1 s
node -e '
  const fs = require("fs");
  const [dir, tool, dur, from] = process.argv.slice(1);
  const j = JSON.parse(fs.readFileSync(`${dir}/loadgen.json`, "utf8"));
  const secs = j.duration_s, dPerS = j.delivered / secs, pPerS = j.published / secs;
  console.log(`deliveries/s ${dPerS.toFixed(0)}, publishes/s ${pPerS.toFixed(0)}, CPU ns/delivery ${j.cpu_ns_per_delivery}, ` +
    `p50 ${j.lat_ms.p50} ms, p99 ${j.lat_ms.p99} ms; first p50/p99 ${j.first_ms.p50}/${j.first_ms.p99}, last p50/p99 ${j.last_ms.p50}/${j.last_ms.p99}`);
  if (tool === "syscalls") {
    // -I lines: time,count,unit,event,...; the intervals ending in (from + 0.5, from + dur]
    const sum = new Map();
    for (const l of fs.readFileSync(`${dir}/syscalls.csv`, "utf8").split("\n")) {
      const f = l.split(",");
      if (f.length < 4 || !/sys_enter/.test(f[3])) continue;
      const t = Number(f[0]);
      if (!(t > Number(from) + 0.5 && t <= Number(from) + Number(dur))) continue;
      const n = f[3].replace(/.*sys_enter_?/, "") || "all";
      sum.set(n, (sum.get(n) || 0) + (Number(f[1]) || 0));
    }
    const secs = Number(dur) - 0.5;
    console.log(`system call        count/s   per delivery   per publish   (${secs} s of publishing)`);
    for (const [n, c] of sum) {
      if (!c) continue;
      const r = c / secs;
      console.log(`${n.padEnd(16)} ${r.toFixed(0).padStart(9)} ${(r / dPerS).toFixed(3).padStart(14)} ${(r / pPerS).toFixed(2).padStart(13)}`);
    }
  }' "$OUTDIR" "$TOOL" "$DUR" "$(awk -v a="${T_TOOL:-0}" -v b="${T_READY:-0}" 'BEGIN{print b-a}')"
case $TOOL in
  perf)
    span=$(awk -v t="$(cat "$READY")" -v d="$DUR" 'BEGIN{printf "%.6f,%.6f", t + 0.5, t + d}')
    echo "+ perf report --time $span --no-children --sort dso"
    perf report -i "$OUTDIR/perf.data" --time "$span" --no-children --sort dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]|^# Samples' | head -9
    echo "+ perf report --time $span --no-children --sort dso,sym (top 40)"
    perf report -i "$OUTDIR/perf.data" --time "$span" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -40 ;;
  strace) head -30 "$OUTDIR/strace.txt" ;;
esac
[ "$OUTDIR" = "$TMP" ] || echo "profile: files in $OUTDIR"
