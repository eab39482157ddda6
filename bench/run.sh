#!/usr/bin/env bash
# `make bench`: hubbub side by side with nginx+nchan and uWebSockets.js.
#
#   bench/run.sh            the full run (W1..W5, C, the descriptor limit, wrk,
#                           the hubbub variants, 1 against 2 threads, the
#                           io_uring probe, presence); ~45 min; writes
#                           bench/results/<date>.md and <date>.jsonl
#   bench/run.sh --smoke    tiny sizes, one repetition, < 3 min; proves the
#                           harness works (exit non-zero if it breaks). No
#                           timing assertions: it only checks that every run
#                           printed its JSON line and delivered messages.
#
# Both end with bench/redis.sh (Redis mode against the in-process broker)
# when redis-server is installed.
#
# Environment: HB_BUILD (default build; hubbub and hb_loadgen come from there),
# BENCH_REPS (3), BENCH_DURATION (seconds per measurement, 5), BENCH_OUT
# (bench/results), BENCH_PEERS ("hubbub nchan uws"), BENCH_ONLY (an extended
# regex: only the measurements whose name matches, e.g. 'W1|W4-19k'),
#   BENCH_HB_VARIANTS   hubbub configurations measured beside the default one,
#                       each LABEL=JSON (an object merged over the bench config),
#                       separated by ';'. Default: the write path's features off
#                       one at a time, 'writev={"io_uring":false};fixed window,
#                       writev={"flush_adaptive":false,"io_uring":false}' (the
#                       second is the server as it was before both).
#                       E.g. 'history off={"history_size":0};presence off={"presence":false}'.
#                       Each is a column "hubbub, LABEL" of the report; "" for none.
#   BENCH_VARIANT_ONLY  the measurements the variants run (regex; default the
#                       issue's rows: W1-1k-if32, W1-5k-if32, W1-5k-200, W2, W2-even,
#                       W3, W3-paced, W5-lone-ws, W5-lone-http)
#   BENCH_THREADS_ONLY  the measurements of the threads section (regex; default
#                       W1-1k-if32, W1-5k-if32, W2-even, W3, W5-lone-ws); '' for none
#   BENCH_QUIET         before each measurement wait (at most BENCH_QUIET_WAIT s,
#                       default 300) until the machine's CPU pressure (the "some
#                       avg10" of /proc/pressure/cpu, % of time a task waited
#                       for a CPU) is at most this; default 0 = do not wait.
#                       Every result records its cpu_wait_pct either way.
#   BENCH_RT            1: run every server and the generator SCHED_FIFO (chrt -f
#                       10), so that other work on a shared machine waits for
#                       them instead of the other way round (the kernel still
#                       leaves others 5 % of each second). Default 0.
#
# Pinning. The machine has 2 cores: every server is fresh per measurement, on
# 127.0.0.1 only, pinned to core 0 (taskset) while the generator runs on core 1;
# targets alternate within each repetition. The threads section cannot give the
# generator a core of its own: hubbub --threads 1 and 2 and uWS with 1 and 2
# workers all run unpinned there, and so does the generator, so the three share
# the two cores alike (see docs/performance.md). Everything is bounded by timeout.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
BUILD=${HB_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
HB=$BUILD/hubbub
LG=$BUILD/hb_loadgen
[ -x "$HB" ] || { echo "bench: $HB missing (make build)"; exit 1; }
[ -x "$LG" ] || { echo "bench: $LG missing (make build)"; exit 1; }
REPS=${BENCH_REPS:-3}
DUR=${BENCH_DURATION:-5}
PEERS=${BENCH_PEERS:-hubbub nchan uws}
OUT=${BENCH_OUT:-bench/results}
NCPU=$(nproc)
RT="" RT_JSON=false
[ "${BENCH_RT:-0}" = 1 ] && RT="chrt -f 10" RT_JSON=true
SRV_CPU=0
GEN_CPU=$((NCPU > 1 ? 1 : 0))
[ $SMOKE = 1 ] && { REPS=1; DUR=1; }

TMP=$(mktemp -d /tmp/hb-bench-run.XXXXXX)
SRV_PID=""
SRV_CPU_PID=""
HOLD_PID=""
stop_server() {
  [ -n "$HOLD_PID" ] && { kill "$HOLD_PID" 2>/dev/null; wait "$HOLD_PID" 2>/dev/null; HOLD_PID=""; }
  if [ -n "$SRV_PID" ]; then
    kill -TERM "$SRV_PID" 2>/dev/null
    for _ in $(seq 1 80); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=""
  fi
}
cleanup() { stop_server; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ $SMOKE = 0 ]; then
  mkdir -p "$OUT"
  STAMP=$(date -u +%Y-%m-%d)
  JSONL=$OUT/$STAMP.jsonl
  : > "$JSONL"
else
  JSONL=$TMP/smoke.jsonl
fi
FAIL=0
PORT=$((20000 + RANDOM % 20000))

# --- peers availability ---------------------------------------------------------
have_nchan=0; have_uws=0
[ -x /usr/sbin/nginx ] && [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] && have_nchan=1
node -e "require('$REPO/node_modules/uwebsockets')" 2>/dev/null && have_uws=1
want() { # target is asked for and available
  case " $PEERS " in *" $1 "*) ;; *) return 1 ;; esac
  case $1 in nchan) [ $have_nchan = 1 ] ;; uws) [ $have_uws = 1 ] ;; *) true ;; esac
}
for p in nchan uws; do
  case " $PEERS " in *" $p "*) want $p || echo "bench: $p is not installed: skipped (scripts/install-deps.sh all)";; esac
done

# --- hubbub data: one org, plugin, API token and 20 room tokens, copied per run --
SEED=$TMP/seed TOKENS=$TMP/tokens.txt
MAXCONN=19900
[ $SMOKE = 1 ] && MAXCONN=60
. bench/seed.sh || exit 1
HB_BASE_CONFIG=$TMP/hubbub.json
HB_CONFIG=$HB_BASE_CONFIG
VARIANT=""
PINNED=1

# --- hubbub variants: LABEL=JSON merged over the bench config, one file each --
VARIANT_LABELS=()
VARIANT_FILES=()
DEFAULT_VARIANTS='writev={"io_uring":false};fixed window, writev={"flush_adaptive":false,"io_uring":false}'
IFS=';' read -r -a _variants <<< "${BENCH_HB_VARIANTS-$DEFAULT_VARIANTS}"
for v in "${_variants[@]}"; do
  [ -n "${v// /}" ] || continue
  label=${v%%=*}; json=${v#*=}
  [ "$label" != "$v" ] || { echo "bench: BENCH_HB_VARIANTS entry without '=': $v"; exit 1; }
  f=$TMP/hubbub-variant-${#VARIANT_FILES[@]}.json
  node -e 'const fs = require("fs");
    const [base, extra, out] = process.argv.slice(1);
    let add;
    try { add = JSON.parse(extra); } catch (e) { console.error(`bench: variant JSON: ${e.message}: ${extra}`); process.exit(1); }
    if (!add || typeof add !== "object" || Array.isArray(add)) { console.error(`bench: variant is not a JSON object: ${extra}`); process.exit(1); }
    fs.writeFileSync(out, JSON.stringify({ ...JSON.parse(fs.readFileSync(base, "utf8")), ...add }));' \
    "$HB_BASE_CONFIG" "$json" "$f" || exit 1
  VARIANT_LABELS+=("$label"); VARIANT_FILES+=("$f")
done

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$SRV_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# wait_log TEXT: the server logged TEXT (uWS with workers: every worker listens)
wait_log() {
  for _ in $(seq 1 100); do
    grep -qF "$1" "$TMP/server.log" && return 0
    kill -0 "$SRV_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# start_server TARGET [threads]: fresh server on a new port; sets SRV_PID
# (what we stop) and SRV_CPU_PID (whose /proc CPU and RSS are measured).
# Pinned to $SRV_CPU when PINNED=1; threads is hubbub's --threads and the
# uWS peer's workers.
start_server() {
  local target=$1 threads=${2:-1} pin="taskset -c $SRV_CPU"
  PORT=$((PORT + 1)); [ $PORT -gt 60000 ] && PORT=20001
  [ "$PINNED" = 1 ] || pin=""
  pin="$RT $pin"
  case $target in
    hubbub)
      rm -rf "$TMP/data"; cp -r "$SEED" "$TMP/data"
      $pin "$HB" serve --listen "127.0.0.1:$PORT" --data "$TMP/data" --threads "$threads" \
        --config "$HB_CONFIG" 2>>"$TMP/server.log" &
      SRV_PID=$!; SRV_CPU_PID=$SRV_PID ;;
    nchan)
      local d=$TMP/nginx; rm -rf "$d"; mkdir -p "$d"
      sed -e "s#@DIR@#$d#g" -e "s#@PORT@#$PORT#g" bench/peers/nchan.conf.in > "$d/nginx.conf"
      $pin /usr/sbin/nginx -c "$d/nginx.conf" -p "$d" -e "$d/error.log" 2>>"$TMP/server.log" &
      SRV_PID=$! ;;
    uws)
      $pin node bench/peers/uws.mjs "$PORT" "$threads" 2>>"$TMP/server.log" &
      SRV_PID=$!; SRV_CPU_PID=$SRV_PID ;;
  esac
  if ! wait_port "$PORT" || { [ "$target" = uws ] && ! wait_log "listening on 127.0.0.1:$PORT"; }; then
    echo "bench: $target did not start"; tail -5 "$TMP/server.log"; stop_server; return 1
  fi
  if [ "$target" = nchan ]; then
    # measure the one worker, not the idle master
    SRV_CPU_PID=$(ps --ppid "$SRV_PID" -o pid= | head -1 | tr -d ' ')
  fi
  return 0
}

# wait_quiet: see BENCH_QUIET (the machine is shared with other work)
wait_quiet() {
  local max=${BENCH_QUIET:-0} end=$((SECONDS + ${BENCH_QUIET_WAIT:-300})) p
  [ "$max" != 0 ] && [ -r /proc/pressure/cpu ] || return 0
  while :; do
    p=$(sed -n 's/^some avg10=\([0-9.]*\).*/\1/p' /proc/pressure/cpu)
    awk -v p="$p" -v m="$max" 'BEGIN{exit !(p <= m)}' && return 0
    [ $SECONDS -lt $end ] || { echo "bench: CPU pressure still $p % after ${BENCH_QUIET_WAIT:-300} s: measuring anyway"; return 0; }
    sleep 2
  done
}

# selected NAME: BENCH_ONLY allows it, and so does VARIANT_ONLY for a variant
# (which names the rows without the smoke- prefix)
selected() {
  [[ $1 =~ ^(${BENCH_ONLY:-.*})$ ]] || return 1
  [ -z "$VARIANT" ] || [[ ${1#smoke-} =~ ^($VARIANT_ONLY)$ ]]
}

# measure NAME TARGET THREADS LOADGEN-ARGS...: one fresh server, one loadgen run,
# one JSON line (tagged with name, rep, threads, pinning, variant) appended to $JSONL.
measure() {
  local name=$1 target=$2 threads=$3; shift 3
  selected "$name" || return 0
  wait_quiet
  start_server "$target" "$threads" || { FAIL=1; return 1; }
  local line gen="taskset -c $GEN_CPU"
  [ "$PINNED" = 1 ] || gen=""
  gen="$RT $gen"
  line=$(timeout 180 $gen "$LG" --target "$target" --port "$PORT" --pid "$SRV_CPU_PID" \
         --tokens "$TOKENS" --api-token "$API_TOKEN" --label "$name" "$@")
  local rc=$?
  stop_server
  [ -n "$line" ] || { echo "bench: $name $target: no output (rc $rc)"; FAIL=1; return 1; }
  local pinned=true; [ "$PINNED" = 1 ] || pinned=false
  line="{\"measure\":\"$name\",\"rep\":$REP,\"threads\":$threads,\"pinned\":$pinned,\"rt\":$RT_JSON,\"rc\":$rc,${VARIANT:+\"variant\":\"$VARIANT\",}${line#\{}"
  echo "$line" >> "$JSONL"
  local tag=""; [ "$PINNED" = 1 ] || tag=" unpinned"
  echo "  $name $target t$threads${VARIANT:+ ($VARIANT)}$tag rep $REP: rc $rc ${line:0:160}..."
  [ $rc = 0 ] || { echo "bench: $name $target failed (rc $rc)"; FAIL=1; }
  return 0
}

# wrk_measure NAME TARGET: W3 with wrk; 10 subscribers held by hb_loadgen.
wrk_measure() {
  local name=$1 target=$2 path body auth=""
  selected "$name" || return 0
  command -v wrk >/dev/null || { echo "bench: wrk missing: skipped"; return 0; }
  wait_quiet
  start_server "$target" 1 || { FAIL=1; return 1; }
  $RT taskset -c $GEN_CPU "$LG" --target "$target" --port "$PORT" --workload idle --rooms 1 --subs 10 \
    --tokens "$TOKENS" --hold $((DUR + 3)) >/dev/null &
  HOLD_PID=$!
  sleep 1.5
  if [ "$target" = hubbub ]; then
    path=/api/v1/publish; auth=$API_TOKEN
    body="{\"scope\":{\"type\":\"session\",\"event_id\":\"$EV0\",\"session_id\":\"$SE0\"},\"payload\":{\"event\":{\"eventName\":\"b\",\"data\":{\"s\":1,\"t\":1,\"p\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}}}"
  else
    path=/pub/r0; body='{"s":1,"t":1,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
  fi
  local c0 c1 line
  c0=$(awk '{print $14+$15}' "/proc/$SRV_CPU_PID/stat" 2>/dev/null)
  line=$(HB_WRK_PATH=$path HB_WRK_BODY=$body HB_WRK_AUTH=$auth timeout 60 $RT taskset -c $GEN_CPU \
         wrk -t1 -c32 -d"${DUR}s" -s bench/wrk-publish.lua "http://127.0.0.1:$PORT" | grep '^{"tool"')
  c1=$(awk '{print $14+$15}' "/proc/$SRV_CPU_PID/stat" 2>/dev/null)
  stop_server
  [ -n "$line" ] || { echo "bench: $name $target: wrk printed nothing"; FAIL=1; return 1; }
  local cpu_s; cpu_s=$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.3f",(b-a)/hz}')
  line="{\"measure\":\"$name\",\"rep\":$REP,\"threads\":1,\"pinned\":true,\"target\":\"$target\",\"server_cpu_s\":$cpu_s,${line#\{}"
  echo "$line" >> "$JSONL"
  echo "  $name $target rep $REP: ${line:0:160}..."
}

# probe_io CONNS ROUNDS: bench/probe/uring_probe.c (io_uring there? the CPU of a
# loopback send by write, writev with 1..32 frames, sendmsg, io_uring), when
# liburing is installed (Debian liburing-dev); one JSON line.
probe_io() {
  selected probe-io || return 0
  if [ ! -f /usr/include/liburing.h ]; then
    echo "bench: liburing-dev missing: io_uring probe skipped (scripts/install-deps.sh all)"; return 0
  fi
  cc -O2 -o "$TMP/hb_uring_probe" bench/probe/uring_probe.c -luring || { echo "bench: uring_probe.c did not build"; FAIL=1; return 1; }
  local line
  line=$(timeout 120 $RT "$TMP/hb_uring_probe" --conns "$1" --rounds "$2")
  [ -n "$line" ] || { echo "bench: io_uring probe printed nothing"; FAIL=1; return 1; }
  echo "{\"measure\":\"probe-io\",\"rep\":1,\"rc\":0,${line#\{}" >> "$JSONL"
  echo "  probe-io: $line"
}

# --- presence (issue 12): hubbub only ---------------------------------------------
# presence_measure NAME LOADGEN-ARGS...: the presence workload of hb_loadgen in
# room 0, members' tokens minted by the generator with the plugin's secret.
presence_measure() {
  local name=$1; shift
  local org plugin secret
  org=$(sed -n 's/.*"organization_id":"\([^"]*\)".*/\1/p' "$TMP/plugin.json")
  plugin=$(sed -n 's/.*"id":"\([^"]*\)","name".*/\1/p' "$TMP/plugin.json")
  secret=$(sed -n 's/.*"signing_secret":"\([^"]*\)".*/\1/p' "$TMP/plugin.json")
  measure "$name" hubbub 1 --workload presence --rooms 1 --secret "$secret" --org "$org" --plugin "$plugin" "$@"
}
# Memory per present member (slope 5,000 -> 10,000, and against the same
# connections all of one user), the server CPU for 10,000 joins, and what an
# observer receives per second while 1 % of the room changes every second:
# flat from 1,000 to 10,000 members (one message per interval, at most
# presence_list_max members listed).
presence_block() {
  want hubbub || return 0
  presence_measure P-1k --subs 1000 --observers 10 --churn 1 --duration "$DUR"
  presence_measure P-5k --subs 5000 --observers 10 --churn 1 --duration "$DUR"
  presence_measure P-10k --subs 10000 --observers 10 --churn 1 --duration "$DUR"
  presence_measure P-10k-one-user --subs 10000 --observers 10 --churn 1 --duration "$DUR" --distinct 0
}

# targets in an order that alternates from one repetition to the next
order() {
  local list=() t
  for t in hubbub nchan uws; do want $t && list+=("$t"); done
  local n=${#list[@]} i
  for ((i = 0; i < n; i++)); do echo "${list[$(((i + REP) % n))]}"; done
}

# --- the measurements -----------------------------------------------------------
# ROW[name] (hb_loadgen arguments), PER_TARGET, and the smoke sizes: bench/rows.sh
. bench/rows.sh
PFX=""; [ $SMOKE = 1 ] && PFX="smoke-"
# row NAME TARGET THREADS: measure ROW[NAME] (named smoke-NAME in a smoke run)
row() { measure "$PFX$1" "$2" "$3" ${ROW[$1]}; }

# one repetition: every row on every target, then the hubbub variants, then
# the threads section (unpinned)
repetition() {
  local t r i
  for t in $(order); do
    for r in $PER_TARGET; do
      row "$r" "$t" 1
      [ "$r" = W3 ] && wrk_measure "${PFX}W3-wrk" "$t"
    done
  done
  if want hubbub; then
    for i in "${!VARIANT_FILES[@]}"; do
      HB_CONFIG=${VARIANT_FILES[$i]} VARIANT=${VARIANT_LABELS[$i]}
      for r in $PER_TARGET; do row "$r" hubbub 1; done
      HB_CONFIG=$HB_BASE_CONFIG VARIANT=""
    done
    # subscribing at the upgrade (?subscribe=) as the nchan and uWS peers do,
    # instead of with a subscribe message
    local saved=$VARIANT_ONLY
    VARIANT="subscribe at upgrade" VARIANT_ONLY=C
    measure "${PFX}C" hubbub 1 ${ROW[C]} --subscribe upgrade
    VARIANT="" VARIANT_ONLY=$saved
  fi
  # 1 against 2 threads on the same two cores: nobody pinned
  if [ -n "$THREADS_ONLY" ]; then
    PINNED=0
    for r in $PER_TARGET; do
      [[ $r =~ ^($THREADS_ONLY)$ ]] || continue
      for t in hubbub uws; do
        want $t || continue
        row "$r" "$t" 1
        row "$r" "$t" 2
      done
    done
    PINNED=1
  fi
}

echo "bench: $(date -u '+%F %T') UTC, reps $REPS, $DUR s per measurement, peers: $(REP=0 order | tr '\n' ' ')"
# load_note WHEN: the load average into the results (the machine is shared)
load_note() {
  local l; l=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "bench: load $1: $l"
  echo "{\"measure\":\"meta\",\"rep\":${REP:-0},\"rc\":0,\"at\":\"$1\",\"time\":\"$(date -u '+%F %T')\",\"loadavg\":\"$l\"}" >> "$JSONL"
}
REP=0
load_note "before the start"
if [ $SMOKE = 1 ]; then
  REP=0
  probe_io 16 3
  repetition
  # the smoke server allows 60 connections: 60 held, the 61st refused
  want hubbub && measure smoke-limit hubbub 1 --workload limit --rooms 1 --subs 60 --window 16
  want hubbub && presence_measure smoke-P --subs 40 --observers 2 --churn 5 --duration 2
  lines=$(wc -l < "$JSONL")
  echo "bench smoke: $lines JSON lines"
  # every line parses and every delivery run delivered something
  node -e '
    const fs = require("fs");
    let bad = 0;
    for (const l of fs.readFileSync(process.argv[1], "utf8").trim().split("\n")) {
      const j = JSON.parse(l);
      const ok = j.tool === "wrk" ? j.requests > 0 && j.non2xx === 0 : j.rc === 0;
      if (!ok) { console.error("bench smoke: failed:", l); bad++; }
    }
    process.exit(bad ? 1 : 0);' "$JSONL" || FAIL=1
  node bench/report.mjs "$JSONL" > "$TMP/smoke.md" || { echo "bench smoke: report.mjs failed"; FAIL=1; }
  # Redis mode (one node, two nodes) against the in-process broker
  if want hubbub && command -v redis-server >/dev/null; then
    HB=$HB LG=$LG bench/redis.sh --smoke >"$TMP/redis-smoke.log" 2>&1 ||
      { echo "bench smoke: bench/redis.sh failed:"; grep -v '"rc":0,' "$TMP/redis-smoke.log" | tail -20; FAIL=1; }
  fi
  exit $FAIL
fi

# --- the full run ------------------------------------------------------------------
probe_io 256 200
for REP in $(seq 1 "$REPS"); do
  echo "bench: repetition $REP of $REPS"
  load_note "repetition $REP"
  repetition
  presence_block
done
# the descriptor limit: 19,900 held, the next refused, the server unharmed
REP=1
want hubbub && measure limit-19900 hubbub 1 --workload limit --rooms 1 --subs 19900 --window 256
load_note "the end"
node bench/report.mjs "$JSONL" > "$OUT/$STAMP.md" || FAIL=1
# Redis mode: what a publish through Redis costs (bench/redis.sh: local, one
# node on Redis, two nodes), in its own file bench/results/redis-<date>.jsonl
if want hubbub && command -v redis-server >/dev/null; then
  HB=$HB LG=$LG BENCH_REPS=$REPS BENCH_DURATION=$DUR BENCH_OUT=$OUT bench/redis.sh || FAIL=1
fi
echo "bench: wrote $JSONL and $OUT/$STAMP.md"
exit $FAIL
