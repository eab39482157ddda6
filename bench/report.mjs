// bench/report.mjs RESULTS.jsonl: the markdown report of a bench/run.sh run.
// Medians over the repetitions with the spread (min-max); every ratio is
// hubbub's median over uWebSockets.js's (one pinned core each, same run).
// Works on older result files too (what they lack is left out).
import fs from 'node:fs';
import os from 'node:os';

const file = process.argv[2];
const all = fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const meta = all.filter((r) => r.measure === 'meta');
const probe = all.find((r) => r.measure === 'probe-io');
const rows = all.filter((r) => r.measure !== 'meta' && r.measure !== 'probe-io');

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const get = (o, path) => path.split('.').reduce((v, k) => (v == null ? undefined : v[k]), o);
// who ran: the column a result belongs to
const who = (r) => {
  if (r.variant) return `${r.target}, ${r.variant}`;
  if (r.pinned === false) {
    if (r.target === 'uws') return r.threads > 1 ? `uws ${r.threads} workers` : 'uws 1 worker, unpinned';
    return r.threads > 1 ? `hubbub ${r.threads} threads` : 'hubbub 1 thread, unpinned';
  }
  // results before the "pinned" field: 2 threads ran unpinned
  if (r.target === 'hubbub' && r.threads > 1) return `hubbub ${r.threads} threads`;
  return r.target;
};
const variants = [...new Set(rows.filter((r) => r.variant && r.target === 'hubbub').map((r) => r.variant))];
const TARGETS = ['hubbub', ...variants.map((v) => `hubbub, ${v}`), 'uws', 'nchan'];

function stats(measure, target, path) {
  const v = rows.filter((r) => r.measure === measure && who(r) === target).map((r) => get(r, path))
    .filter((x) => typeof x === 'number');
  if (!v.length) return null;
  return { med: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}
const med = (m, t, path) => stats(m, t, path)?.med;
const fmt = (x) => {
  if (x == null || Number.isNaN(x)) return '–';
  const a = Math.abs(x);
  if (a >= 100000) return Math.round(x).toLocaleString('en-US');
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
};
const cell = (s) => (s ? (s.n > 1 ? `${fmt(s.med)} (${fmt(s.min)}–${fmt(s.max)})` : fmt(s.med)) : '–');
const ratio = (a, b) => (a != null && b != null && b !== 0 && !Number.isNaN(a) && !Number.isNaN(b) ? (a / b).toFixed(2) : '–');

const out = [];
const p = (s = '') => out.push(s);
const name = file.replace(/.*\//, '').replace('.jsonl', '');
p(`# hubbub benchmark, ${name}`);
p();
p(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model || '?'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${os.release()}.`);
if (meta.length) p(`Load average (1, 5, 15 min): ${meta.map((m) => `${m.at} ${m.loadavg}`).join('; ')}.`);
p('Every server fresh per measurement, pinned to core 0, hb_loadgen (and wrk) pinned to core 1, targets alternated');
p('within each repetition. "hubbub, X" is one pinned hubbub thread with configuration X (BENCH_HB_VARIANTS).');
p('The threads section runs every server and the generator unpinned (two cores for all three).');
if (rows.some((r) => r.rt)) p('BENCH_RT=1: servers and generator ran SCHED_FIFO (chrt -f 10), ahead of the other work on this shared machine.');
p('Cells: median (min–max) over the repetitions; "÷ uWS" is a median over uWebSockets.js\'s median in the same run.');
p(`Latency: from the generator writing the publish (WebSocket frame or HTTP request) to each subscriber reading it. Raw: \`${name}.jsonl\`.`);
p();

// --- the issue's table ------------------------------------------------------------------
const ISSUE = [
  ['W1-1k-if32', '1 room × 1,000, 32 in flight'],
  ['W1-5k-if32', '1 room × 5,000, 32 in flight'],
  ['W1-5k-200', '1 room × 5,000 at 200 msg/s'],
  ['W2-even', '20 rooms × 100, each member 2 msg/s, spread evenly'],
  ['W2-even-50k', 'the same at 0.25 msg/s per member (50,000 deliveries/s)'],
  ['W2', '20 rooms × 100, 2 msg/s each, in bursts (the older W2)'],
  ['W3-paced', 'HTTP publish, 10 subscribers, 5,000 req/s'],
  ['W3', 'HTTP publish, 10 subscribers, 32 connections as fast as answered'],
  ['W5-lone-ws', 'lone publish, idle server: WebSocket, 1 subscriber, 10 msg/s'],
  ['W5-lone-http', 'lone publish, idle server: HTTP, 1 subscriber, 10 req/s'],
].filter(([m]) => rows.some((r) => r.measure === m));
const isHttp = (m) => rows.find((r) => r.measure === m)?.workload === 'http';
if (ISSUE.length) {
  const cols = TARGETS.filter((t) => ISSUE.some(([m]) => stats(m, t, 'lat_ms.p50')));
  const hb = cols.filter((t) => t.startsWith('hubbub'));
  p('## The issue\'s rows');
  p();
  p('CPU is the server\'s (its threads\' time on a CPU, /proc/PID/task/*/schedstat) per delivery, or per request for');
  p('the HTTP rows; p50/p99 in ms; "server CPU %" near 100 means saturated: CPU per delivery is then one core over the rate.');
  p();
  p(`| workload | metric | ${cols.join(' | ')} | ${hb.map((t) => `${t} ÷ uWS`).join(' | ')} |`);
  p(`|---|---|${cols.map(() => '---:').join('|')}|${hb.map(() => '---:').join('|')}|`);
  for (const [m, title] of ISSUE) {
    // a lone publish is about latency: its CPU is a few ms over the whole run
    // server CPU % says whether the server had headroom: at ~100 % the CPU per
    // delivery is one core over the deliveries per second, whoever serves
    const metrics = m.startsWith('W5') ? [['lat_ms.p50', 'p50 ms'], ['lat_ms.p99', 'p99 ms']]
      : isHttp(m)
        ? [['cpu_ns_per_publish', 'CPU ns/request'], ['publish_per_s', 'req/s'], ['lat_ms.p50', 'p50 ms'], ['lat_ms.p99', 'p99 ms'],
          ['server_cpu_pct', 'server CPU %'], ['gen_cpu_pct', 'generator CPU %']]
        : [['cpu_ns_per_delivery', 'CPU ns/delivery'], ['lat_ms.p50', 'p50 ms'], ['lat_ms.p99', 'p99 ms'], ['loss_pct', 'loss %'],
          ['server_cpu_pct', 'server CPU %'], ['gen_cpu_pct', 'generator CPU %']];
    metrics.forEach(([path, label], i) => {
      if (!cols.some((t) => stats(m, t, path))) return; // older results lack the field
      const cs = cols.map((t) => cell(stats(m, t, path)));
      const rs = hb.map((t) => (path.endsWith('_pct') ? '' : ratio(med(m, t, path), med(m, 'uws', path))));
      p(`| ${i === 0 ? `${title} (\`${m}\`)` : ''} | ${label} | ${cs.join(' | ')} | ${rs.join(' | ')} |`);
    });
  }
  p();

  // the lead's goals, stated against uWS in the same run
  const G = [];
  const goal = (what, value, target, ok) => G.push([what, value, target, value === '–' ? 'not measured' : ok ? 'met' : 'NOT met']);
  const r = (m, path, t = 'hubbub') => {
    const a = med(m, t, path), b = med(m, 'uws', path);
    return a != null && b != null && b ? a / b : null;
  };
  for (const [m, title] of ISSUE) {
    if (m === 'W2') continue;
    for (const [path, label] of [['lat_ms.p50', 'p50'], ['lat_ms.p99', 'p99']]) {
      const v = r(m, path);
      goal(`${title}: ${label} ÷ uWS`, v == null ? '–' : v.toFixed(2), '≤ 1.0', v != null && v <= 1.0);
    }
    const cpath = isHttp(m) ? 'cpu_ns_per_publish' : 'cpu_ns_per_delivery';
    if (!m.startsWith('W5')) {
      const v = r(m, cpath);
      const sat = ['hubbub', 'uws'].filter((t) => (med(m, t, 'server_cpu_pct') ?? 0) >= 90);
      goal(`${title}: CPU ÷ uWS${sat.length ? ` (saturated: ${sat.join(', ')})` : ''}`, v == null ? '–' : v.toFixed(2), '≤ 0.6',
        v != null && v <= 0.6);
    }
  }
  const ev = med('W2-even', 'hubbub', 'cpu_ns_per_delivery');
  if (ev != null) goal('even storm: CPU per delivery', `${fmt(ev)} ns`, '≤ 1,200 ns', ev <= 1200);
  const l2 = med('W1-5k-200', 'hubbub', 'loss_pct'), p2 = med('W1-5k-200', 'hubbub', 'lat_ms.p99');
  if (l2 != null) goal('5,000 at 200 msg/s: loss', `${fmt(l2)} %`, '0 %', l2 === 0);
  if (p2 != null) goal('5,000 at 200 msg/s: p99', `${fmt(p2)} ms`, '≤ 60 ms', p2 <= 60);
  for (const m of ['W5-lone-ws', 'W5-lone-http']) {
    for (const path of ['lat_ms.p50', 'lat_ms.p99']) {
      const a = med(m, 'hubbub', path), b = med(m, 'uws', path);
      if (a == null || b == null) continue;
      const d = (a - b) * 1000;
      goal(`${m}: ${path.slice(7)} hubbub − uWS`, `${d >= 0 ? '+' : ''}${d.toFixed(0)} µs`, '≤ +50 µs', d <= 50);
    }
  }
  p('### Goals (hubbub, one pinned thread, against uWS in this run)');
  p();
  p('| goal | measured | target | |');
  p('|---|---:|---|---|');
  for (const g of G) p(`| ${g.join(' | ')} |`);
  p();
}

// --- 1 against 2 threads -----------------------------------------------------------------
const TH = ['hubbub 1 thread, unpinned', 'hubbub 2 threads', 'uws 1 worker, unpinned', 'uws 2 workers'];
const thMeasures = [...new Set(rows.filter((r) => r.pinned === false).map((r) => r.measure))];
if (thMeasures.length) {
  p('## One thread against two (everything unpinned on the two cores)');
  p();
  p('"hand-off" is the 2-thread median minus the 1-thread median of the same server, per delivery and per');
  p('published message (× deliveries per message): what the second thread costs, hand-off included. On W5 (10');
  p('deliveries/s) it is mostly the second loop\'s own idle cost (its timers); where the 1-thread server was');
  p('saturated it can be negative (two threads share the passes over the subscribers).');
  p();
  p(`| measurement | metric | ${TH.join(' | ')} | hubbub 2 ÷ uWS 2 | hubbub hand-off | uWS hand-off |`);
  p(`|---|---|${TH.map(() => '---:').join('|')}|---:|---:|---:|`);
  for (const m of thMeasures) {
    const http = isHttp(m);
    const cpath = http ? 'cpu_ns_per_publish' : 'cpu_ns_per_delivery';
    const perMsg = (t) => {
      const d = med(m, t, 'delivered'), n = med(m, t, 'published');
      return d && n ? d / n : null;
    };
    const hand = (one, two) => {
      const a = med(m, one, cpath), b = med(m, two, cpath);
      if (a == null || b == null) return '–';
      const per = b - a, k = http ? 1 : perMsg(two);
      return `${per >= 0 ? '+' : ''}${fmt(per)} ns${k && !http ? ` (${fmt((per * k) / 1000)} µs/msg)` : ''}`;
    };
    [[cpath, http ? 'CPU ns/request' : 'CPU ns/delivery'], ['lat_ms.p50', 'p50 ms'], ['lat_ms.p99', 'p99 ms']].forEach(([path, label], i) => {
      p(`| ${i === 0 ? `\`${m}\`` : ''} | ${label} | ${TH.map((t) => cell(stats(m, t, path))).join(' | ')} | ` +
        `${ratio(med(m, 'hubbub 2 threads', path), med(m, 'uws 2 workers', path))} | ` +
        `${i === 0 ? hand('hubbub 1 thread, unpinned', 'hubbub 2 threads') : ''} | ${i === 0 ? hand('uws 1 worker, unpinned', 'uws 2 workers') : ''} |`);
    });
  }
  p();
}

// --- every measurement in detail ---------------------------------------------------------
const SECTIONS = [
  ['W1-1k-if1', 'W1: 1 room, 1,000 subscribers, 1 message in flight'],
  ['W1-1k-if32', 'W1: 1 room, 1,000 subscribers, 32 in flight'],
  ['W1-5k-if1', 'W1: 1 room, 5,000 subscribers, 1 in flight'],
  ['W1-5k-if32', 'W1: 1 room, 5,000 subscribers, 32 in flight'],
  ['W1-5k-200', 'W1: 1 room, 5,000 subscribers, 200 msg/s paced'],
  ['W2', 'W2: reaction storm, 20 rooms × 100, each publishing 2 msg/s, in bursts (1 ms ticks, a room\'s members in a row)'],
  ['W2-even', 'W2-even: the same storm spread evenly (a publish every 250 µs, consecutive ones to consecutive rooms)'],
  ['W2-even-50k', 'W2-even-50k: the even storm at 0.25 msg/s per member (50,000 deliveries/s)'],
  ['W3', 'W3: HTTP publish (32 keep-alive connections, hb_loadgen) into a room of 10'],
  ['W3-paced', 'W3-paced: HTTP publish at 5,000 req/s (4 connections) into a room of 10'],
  ['W3-wrk', 'W3 with wrk (1 thread, 32 connections, 10 subscribers held)'],
  ['W5-lone-ws', 'W5: a lone WebSocket publish every 100 ms, 1 subscriber (the publisher)'],
  ['W5-lone-http', 'W5: a lone HTTP publish every 100 ms, 1 subscriber'],
  ['W4-10k', 'W4: 10,000 idle subscribed connections'],
  ['W4-19k', 'W4: 19,000 idle subscribed connections'],
  ['C', 'C: connections established per second (10,000, 256 in progress)'],
  ['limit-19900', 'The descriptor limit: 19,900 held, one more, one closed and reopened'],
];
const FAN = [['cpu_ns_per_delivery', 'CPU ns/delivery'], ['deliveries_per_s', 'deliveries/s'], ['loss_pct', 'loss %'],
  ['lat_ms.p50', 'p50 ms'], ['lat_ms.p90', 'p90 ms'], ['lat_ms.p99', 'p99 ms'], ['lat_ms.max', 'max ms'],
  ['first_ms.p50', 'first p50'], ['first_ms.p99', 'first p99'], ['last_ms.p99', 'last p99'],
  ['deliveries_per_write', 'deliv./write'], ['server_cpu_pct', 'server CPU %'], ['gen_cpu_pct', 'generator CPU %'],
  ['cpu_wait_pct', 'CPU wait %'], ['late_sends', 'late sends'], ['server_rss_kb', 'RSS KiB']];
const COLS = {
  fanout: FAN,
  http: [['publish_per_s', 'req/s'], ['cpu_ns_per_publish', 'CPU ns/request'], ['cpu_ns_per_delivery', 'CPU ns/delivery'],
    ...FAN.slice(2, 11), ['server_cpu_pct', 'server CPU %'], ['gen_cpu_pct', 'generator CPU %'], ['cpu_wait_pct', 'CPU wait %'],
    ['late_sends', 'late sends'], ['http_bad', 'non-2xx']],
  wrk: [['req_per_s', 'req/s'], ['lat_ms.p50', 'p50 ms'], ['lat_ms.p99', 'p99 ms'], ['errors', 'errors'],
    ['server_cpu_s', 'server CPU s']],
  idle: [['rss_bytes_per_conn', 'RSS bytes/conn'], ['server_rss_kb', 'RSS KiB'], ['subscribed', 'subscribed'],
    ['setup_s', 'setup s']],
  connect: [['conn_per_s', 'conn/s'], ['server_cpu_us_per_conn', 'server CPU µs/conn'],
    ['established', 'established'], ['refused', 'refused'], ['handshake_failed', 'failed']],
  limit: [['established', 'established'], ['extra_refused_cleanly', 'next refused (503)'],
    ['reopen_after_close_ok', 'reopen after close'], ['server_rss_kb', 'RSS KiB']],
};
const DETAIL_TARGETS = [...TARGETS, ...TH, 'hubbub, subscribe at upgrade'];
p('## Every measurement');
p();
p('"first"/"last": latency of the first and of the last subscriber of each message (when the fan-out began and');
p('ended); "deliv./write": deliveries per write()/writev() of the server (`syscw` of /proc/PID/io; uWS and nchan');
p('send with send()/sendmsg(), which that counter does not see); "generator CPU %": hb_loadgen\'s own CPU over the');
p('run (near 100 % it measures itself); "server CPU %": the server\'s CPU over the run (near 100 % it was saturated:');
p('its CPU per delivery is then one core over the deliveries per second); "CPU wait %": the share of the run in which');
p('some task on the machine waited for a CPU (/proc/pressure/cpu; the machine is shared; under BENCH_RT those are the');
p('neighbours waiting for the benchmark); "late sends": paced publishes written more than 1 ms after their time.');
p();
for (const [m, title] of SECTIONS) {
  const rs = rows.filter((r) => r.measure === m || r.measure === `smoke-${m}`);
  if (!rs.length) continue;
  const mm = rs[0].measure;
  const kind = m === 'W3-wrk' ? 'wrk' : m.startsWith('limit') ? 'limit' : rs[0].workload === 'http' ? 'http'
    : rs[0].workload === 'idle' ? 'idle' : rs[0].workload === 'connect' ? 'connect' : 'fanout';
  const cols = COLS[kind].filter(([path]) => rs.some((r) => typeof get(r, path) === 'number'));
  p(`### ${title} (\`${mm}\`)`);
  p();
  p(`| target | ${cols.map((c) => c[1]).join(' | ')} | ÷ uWS (${cols[0][1]}) |`);
  p(`|---|${cols.map(() => '---:').join('|')}|---:|`);
  for (const t of DETAIL_TARGETS.filter((x, i, a) => a.indexOf(x) === i)) {
    if (!rs.some((r) => who(r) === t)) continue;
    const cs = cols.map((c) => cell(stats(mm, t, c[0])));
    const base = t.startsWith('uws') || t.endsWith('unpinned') || t.includes('threads') || t.includes('workers')
      ? null : med(mm, 'uws', cols[0][0]);
    p(`| ${t} | ${cs.join(' | ')} | ${base == null ? '' : ratio(med(mm, t, cols[0][0]), base)} |`);
  }
  p();
}

// --- the io_uring probe ------------------------------------------------------------------
if (probe) {
  const c = probe.cpu_ns_per_frame;
  p('## What a loopback send costs here (bench/probe/uring_probe.c)');
  p();
  p(`io_uring: **${probe.io_uring}** (kernel ${probe.kernel}). ${probe.conns} loopback connections, a ${probe.frame_bytes}-byte`);
  p(`frame to each per round, ${probe.rounds} rounds 1 ms apart, a reader process on the other core; the sender\'s CPU per frame:`);
  p();
  p('| how | CPU ns per frame |');
  p('|---|---:|');
  const names = { null_syscall: 'getppid() (a null system call)', write: 'write(), 1 frame', sendmsg: 'sendmsg(), 1 frame',
    writev1: 'writev(), 1 frame per call', writev2: 'writev(), 2 frames per call', writev4: 'writev(), 4 frames per call',
    writev8: 'writev(), 8 frames per call', writev16: 'writev(), 16 frames per call', writev32: 'writev(), 32 frames per call',
    uring_send: `io_uring IORING_OP_SEND, ${probe.conns} per io_uring_enter`, uring_sendmsg: `io_uring IORING_OP_SENDMSG, ${probe.conns} per io_uring_enter` };
  for (const [k, v] of Object.entries(c)) p(`| ${names[k] || k} | ${v < 0 ? 'unavailable' : fmt(v)} |`);
  p();
  const rd = probe.reader_cpu_ns_per_frame;
  if (rd) {
    p('The reading side (one frame per write; the reader\'s CPU per frame, as a load generator reads):');
    p();
    p('| how | CPU ns per frame |');
    p('|---|---:|');
    p(`| epoll_wait + read() (hb_loadgen) | ${fmt(rd.epoll_read)} |`);
    p(`| multishot IORING_OP_RECV, provided buffers | ${rd.uring_recv_multishot < 0 ? 'unavailable' : fmt(rd.uring_recv_multishot)} |`);
    p();
  }
}

// --- memory projection ------------------------------------------------------------------
const a = stats('W4-10k', 'hubbub', 'server_rss_kb'), b = stats('W4-19k', 'hubbub', 'server_rss_kb');
const base0 = stats('W4-10k', 'hubbub', 'server_rss_kb_start');
if (a && b) {
  const slope = ((b.med - a.med) * 1024) / 9000;
  const proj = (base0 ? base0.med * 1024 : 0) + slope * 1e6;
  p('## Memory for 1,000,000 connections per node (projection)');
  p();
  p(`Slope between 10,000 and 19,000 idle subscribed connections: **${fmt(slope)} bytes per connection** (server RSS).`);
  p(`Projected server RSS at 1,000,000 connections: ${fmt(base0?.med / 1024)} MiB base + ${fmt(slope)} B × 10⁶ ≈ **${fmt(proj / 2 ** 30)} GiB**`);
  p('(user space only: the kernel\'s socket memory, about 2–4 KiB per idle TCP connection on loopback, comes on top).');
  p();
}
presenceReport();
process.stdout.write(out.join('\n'));

// --- presence (issue 12) ----------------------------------------------------------------
function presenceReport() {
  const P = [['P-1k', '1,000'], ['P-5k', '5,000'], ['P-10k', '10,000'], ['P-10k-one-user', '10,000 connections, one user']];
  if (!P.some(([m]) => rows.some((r) => r.measure === m))) return;
  const cols = [['server_cpu_s_joins', 'server CPU s (joins)'], ['server_cpu_us_per_join', 'µs/join'],
    ['rss_bytes_per_member', 'RSS B/connection'], ['churn_per_s', 'joins+leaves/s (each)'],
    ['presence_msgs_per_s', 'msgs/s per observer'], ['presence_bytes_per_s', 'bytes/s per observer'], ['counts_exact', 'counts exact']];
  p('## Presence: one session, 10 observers, members joining, then 1 % of them replaced every second (`P-*`)');
  p();
  p(`| members | ${cols.map((c) => c[1]).join(' | ')} |`);
  p(`|---|${cols.map(() => '---:').join('|')}|`);
  for (const [m, label] of P) if (rows.some((r) => r.measure === m)) p(`| ${label} | ${cols.map((c) => cell(stats(m, 'hubbub', c[0]))).join(' | ')} |`);
  p();
  const r5 = stats('P-5k', 'hubbub', 'server_rss_kb'), r10 = stats('P-10k', 'hubbub', 'server_rss_kb');
  const pm = stats('P-10k', 'hubbub', 'rss_bytes_per_member'), one = stats('P-10k-one-user', 'hubbub', 'rss_bytes_per_member');
  if (r5 && r10) p(`Slope between 5,000 and 10,000 members (connection and member): **${fmt(((r10.med - r5.med) * 1024) / 5000)} bytes per member**.`);
  if (pm && one) p(`The same 10,000 connections as one user: ${fmt(one.med)} B each; presence alone: **${fmt(pm.med - one.med)} bytes per present member**.`);
  p('Traffic per observer stays at one message per presence_interval_ms whatever the size; what it lists is capped at presence_list_max.');
  p();
}
