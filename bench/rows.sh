# bench/rows.sh, sourced by bench/run.sh and bench/profile.sh: the measurements.
# Needs SMOKE (0/1) and DUR (seconds); sets ROW[name] (hb_loadgen arguments),
# PER_TARGET (the rows every target runs, in order) and the defaults of
# VARIANT_ONLY and THREADS_ONLY (regexes of row names; see bench/run.sh).
# shellcheck shell=bash
# ROW[name]: hb_loadgen arguments. The same names, smaller, for --smoke.
declare -A ROW
if [ $SMOKE = 1 ]; then
  ROW[W1]="--workload fanout --rooms 1 --subs 20 --inflight 4 --duration $DUR"
  ROW[W2]="--workload fanout --rooms 2 --subs 5 --pub all --per-conn-rate 2 --pace burst --duration $DUR"
  ROW[W2-even]="--workload fanout --rooms 4 --subs 5 --pub all --per-conn-rate 20 --duration $DUR"
  ROW[W3]="--workload http --rooms 1 --subs 5 --http-conns 2 --duration $DUR"
  ROW[W3-paced]="--workload http --rooms 1 --subs 5 --http-conns 2 --rate 500 --duration $DUR"
  ROW[W5-lone-ws]="--workload fanout --rooms 1 --subs 1 --rate 20 --duration $DUR"
  ROW[W5-lone-http]="--workload http --rooms 1 --subs 1 --http-conns 1 --rate 20 --duration $DUR"
  ROW[W4]="--workload idle --rooms 1 --subs 50"
  ROW[C]="--workload connect --rooms 1 --subs 50 --window 16"
  PER_TARGET="W1 W2 W2-even W3 W3-paced W5-lone-ws W5-lone-http W4 C"
  VARIANT_ONLY=${BENCH_VARIANT_ONLY:-W2-even|W5-lone-http}
  THREADS_ONLY=${BENCH_THREADS_ONLY-W2-even}
else
  W1="--workload fanout --rooms 1 --duration $DUR"
  ROW[W1-1k-if1]="$W1 --subs 1000 --inflight 1"
  ROW[W1-1k-if32]="$W1 --subs 1000 --inflight 32"
  ROW[W1-5k-if1]="$W1 --subs 5000 --inflight 1"
  ROW[W1-5k-if32]="$W1 --subs 5000 --inflight 32"
  ROW[W1-5k-200]="$W1 --subs 5000 --rate 200"
  # the older storm: 1 ms ticks, a room's members publishing one after the other
  ROW[W2]="--workload fanout --rooms 20 --subs 100 --pub all --per-conn-rate 2 --pace burst --duration $DUR"
  # the storm spread evenly: a publish every 250 us, consecutive ones to consecutive rooms
  ROW[W2-even]="--workload fanout --rooms 20 --subs 100 --pub all --per-conn-rate 2 --pace even --duration $DUR"
  # the same at an eighth of the rate, 50,000 deliveries/s: a send costs ~10 us
  # here, so at 400,000 (and 200,000, and 100,000) deliveries/s every server
  # sending about one frame per write uses its whole core, and CPU per
  # delivery is 1 s / deliveries; this one leaves the servers headroom
  ROW[W2-even-50k]="--workload fanout --rooms 20 --subs 100 --pub all --per-conn-rate 0.25 --pace even --duration $DUR"
  ROW[W3]="--workload http --rooms 1 --subs 10 --http-conns 32 --duration $DUR"
  ROW[W3-paced]="--workload http --rooms 1 --subs 10 --http-conns 4 --rate 5000 --duration $DUR"
  # a publish every 100 ms into an idle server; twice as long for ~100 samples
  ROW[W5-lone-ws]="--workload fanout --rooms 1 --subs 1 --rate 10 --duration $((DUR * 2))"
  ROW[W5-lone-http]="--workload http --rooms 1 --subs 1 --http-conns 1 --rate 10 --duration $((DUR * 2))"
  ROW[W4-10k]="--workload idle --rooms 1 --subs 10000"
  ROW[W4-19k]="--workload idle --rooms 1 --subs 19000"
  ROW[C]="--workload connect --rooms 1 --subs 10000 --window 256"
  PER_TARGET="W1-1k-if1 W1-1k-if32 W1-5k-if1 W1-5k-if32 W1-5k-200 W2 W2-even W2-even-50k W3 W3-paced W5-lone-ws W5-lone-http W4-10k W4-19k C"
  VARIANT_ONLY=${BENCH_VARIANT_ONLY:-W1-1k-if32|W1-5k-if32|W1-5k-200|W2|W2-even|W2-even-50k|W3|W3-paced|W5-lone-ws|W5-lone-http}
  THREADS_ONLY=${BENCH_THREADS_ONLY-W1-1k-if32|W1-5k-if32|W2-even|W3|W5-lone-ws}
fi
