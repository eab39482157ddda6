// bench/report.mjs RESULTS.jsonl: the markdown report of a bench/run.sh run.
// Medians over the repetitions with the spread (min-max), ratios against
// hubbub (one thread, pinned), the targets and the memory projection.
import fs from 'node:fs';
import os from 'node:os';

const file = process.argv[2];
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const get = (o, path) => path.split('.').reduce((v, k) => (v == null ? undefined : v[k]), o);
const who = (r) => (r.variant ? `${r.target}, ${r.variant}` : r.target === 'hubbub' && r.threads !== 1 ? `hubbub ${r.threads} threads` : r.target);
const TARGETS = ['hubbub', 'hubbub 2 threads', 'hubbub, flush_interval_ms 0', 'hubbub, subscribe at upgrade', 'nchan', 'uws'];

function stats(measure, target, path) {
  const v = rows.filter((r) => r.measure === measure && who(r) === target).map((r) => get(r, path)).filter((x) => typeof x === 'number');
  if (!v.length) return null;
  return { med: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}
const fmt = (x) => {
  if (x == null || Number.isNaN(x)) return '–';
  const a = Math.abs(x);
  if (a >= 100000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
};
const cell = (s) => (s ? (s.n > 1 ? `${fmt(s.med)} (${fmt(s.min)}–${fmt(s.max)})` : fmt(s.med)) : '–');

const SECTIONS = [
  ['W1-1k-if1', 'W1: 1 room, 1,000 subscribers, 1 message in flight'],
  ['W1-1k-if32', 'W1: 1 room, 1,000 subscribers, 32 in flight'],
  ['W1-5k-if1', 'W1: 1 room, 5,000 subscribers, 1 in flight'],
  ['W1-5k-if32', 'W1: 1 room, 5,000 subscribers, 32 in flight'],
  ['W1-5k-200', 'W1: 1 room, 5,000 subscribers, 200 msg/s paced'],
  ['W2', 'W2: reaction storm, 20 rooms × 100 subscribers, each publishing 2 msg/s'],
  ['W3', 'W3: HTTP publish (32 keep-alive connections, hb_loadgen) into a room of 10'],
  ['W3-wrk', 'W3 with wrk (1 thread, 32 connections, 10 subscribers held)'],
  ['W4-10k', 'W4: 10,000 idle subscribed connections'],
  ['W4-19k', 'W4: 19,000 idle subscribed connections'],
  ['C', 'C: connections established per second (10,000, 256 in progress)'],
  ['limit-19900', 'The descriptor limit: 19,900 held, one more, one closed and reopened'],
];
const COLS = {
  fanout: [['cpu_ns_per_delivery', 'CPU ns/delivery', 'low'], ['deliveries_per_s', 'deliveries/s', 'high'],
    ['loss_pct', 'loss %'], ['lat_ms.p50', 'p50 ms'], ['lat_ms.p90', 'p90 ms'], ['lat_ms.p99', 'p99 ms'],
    ['lat_ms.max', 'max ms'], ['server_rss_kb', 'RSS KiB']],
  http: [['publish_per_s', 'req/s', 'high'], ['cpu_ns_per_delivery', 'CPU ns/delivery'],
    ['deliveries_per_s', 'deliveries/s'], ['loss_pct', 'loss %'], ['lat_ms.p50', 'p50 ms'], ['lat_ms.p99', 'p99 ms'],
    ['http_bad', 'non-2xx']],
  wrk: [['req_per_s', 'req/s', 'high'], ['lat_ms.p50', 'p50 ms'], ['lat_ms.p99', 'p99 ms'], ['errors', 'errors'],
    ['server_cpu_s', 'server CPU s']],
  idle: [['rss_bytes_per_conn', 'RSS bytes/conn', 'low'], ['server_rss_kb', 'RSS KiB'], ['subscribed', 'subscribed'],
    ['setup_s', 'setup s']],
  connect: [['conn_per_s', 'conn/s', 'high'], ['server_cpu_us_per_conn', 'server CPU µs/conn'],
    ['established', 'established'], ['refused', 'refused'], ['handshake_failed', 'failed']],
  limit: [['established', 'established'], ['extra_refused_cleanly', 'next refused (503)'],
    ['reopen_after_close_ok', 'reopen after close'], ['server_rss_kb', 'RSS KiB']],
};

const out = [];
const p = (s = '') => out.push(s);
const first = rows[0] || {};
p(`# hubbub benchmark, ${file.replace(/.*\//, '').replace('.jsonl', '')}`);
p();
p(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model || '?'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${os.release()}.`);
p('Server pinned to core 0, hb_loadgen (and wrk) to core 1, a fresh server per measurement, targets');
p('alternated within each repetition; "hubbub 2 threads" runs both unpinned; "hubbub, flush_interval_ms 0" is one pinned');
p('thread without the fan-out flush window (the default is 5 ms); "hubbub, subscribe at upgrade" (C) subscribes with');
p('`?subscribe=` on the WebSocket URL, as the peers do at the upgrade, instead of a subscribe message and its ack.');
p('Cells: median (min–max)');
p(`over the repetitions; "× hubbub" is the peer's median over hubbub's (one thread). Raw: \`${file.replace(/.*\//, '')}\`.`);
p();
for (const [m, title] of SECTIONS) {
  const rs = rows.filter((r) => r.measure === m);
  if (!rs.length) continue;
  const kind = m === 'W3-wrk' ? 'wrk' : m.startsWith('limit') ? 'limit' : rs[0].workload === 'http' ? 'http'
    : rs[0].workload === 'idle' ? 'idle' : rs[0].workload === 'connect' ? 'connect' : 'fanout';
  const cols = COLS[kind];
  p(`## ${title} (\`${m}\`)`);
  p();
  p(`| target | ${cols.map((c) => c[1]).join(' | ')} | × hubbub (${cols[0][1]}) |`);
  p(`|---|${cols.map(() => '---:').join('|')}|---:|`);
  const base = stats(m, 'hubbub', cols[0][0]);
  for (const t of TARGETS) {
    if (!rs.some((r) => who(r) === t)) continue;
    const cs = cols.map((c) => cell(stats(m, t, c[0])));
    const me = stats(m, t, cols[0][0]);
    const ratio = base && me && base.med ? `${(me.med / base.med).toFixed(2)}` : '–';
    p(`| ${t} | ${cs.join(' | ')} | ${t === 'hubbub' ? '1.00' : ratio} |`);
  }
  p();
}

// --- targets (hubbub, one core) -------------------------------------------------------
const med = (m, path, t = 'hubbub') => stats(m, t, path)?.med;
const T = [];
const target = (name, value, unit, goal, ok) => T.push([name, value == null ? '–' : `${fmt(value)} ${unit}`, goal,
  value == null ? 'not measured' : ok(value) ? 'met' : 'NOT met']);
target('W1 5,000 subs, 32 in flight: CPU/delivery', med('W1-5k-if32', 'cpu_ns_per_delivery'), 'ns', '≤ 300 ns', (v) => v <= 300);
target('W1 1,000 subs, 32 in flight: CPU/delivery', med('W1-1k-if32', 'cpu_ns_per_delivery'), 'ns', '≤ 350 ns', (v) => v <= 350);
target('W1 5,000 subs at 200 msg/s: loss', med('W1-5k-200', 'loss_pct'), '%', '0 %', (v) => v === 0);
target('W1 5,000 subs at 200 msg/s: p99', med('W1-5k-200', 'lat_ms.p99'), 'ms', '≤ 60 ms', (v) => v <= 60);
target('W2: CPU/delivery', med('W2', 'cpu_ns_per_delivery'), 'ns', '≤ 1,200 ns', (v) => v <= 1200);
target('W2: p99', med('W2', 'lat_ms.p99'), 'ms', '≤ 20 ms', (v) => v <= 20);
target('W3 (hb_loadgen): HTTP publishes/s', med('W3', 'publish_per_s'), 'req/s', '≥ 70,000', (v) => v >= 70000);
target('W3 (wrk): HTTP publishes/s', med('W3-wrk', 'req_per_s'), 'req/s', '≥ 70,000', (v) => v >= 70000);
target('W4 10,000: RSS per idle subscribed connection', med('W4-10k', 'rss_bytes_per_conn'), 'B', '≤ 700 B', (v) => v <= 700);
target('W4 19,000: RSS per idle subscribed connection', med('W4-19k', 'rss_bytes_per_conn'), 'B', '≤ 700 B', (v) => v <= 700);
target('C: connections/s', med('C', 'conn_per_s'), 'conn/s', '≥ 25,000', (v) => v >= 25000);
target('C, subscribing at the upgrade (as the peers do): connections/s', med('C', 'conn_per_s', 'hubbub, subscribe at upgrade'),
  'conn/s', '≥ 25,000', (v) => v >= 25000);
const lim = rows.find((r) => r.measure === 'limit-19900');
if (lim) T.push(['descriptor limit: 19,900 held, next refused, server unharmed',
  `${lim.established} held, next refused: ${lim.extra_refused_cleanly === 1 ? 'yes' : 'no'}, reopen: ${lim.reopen_after_close_ok === 1 ? 'yes' : 'no'}`,
  'no errors, clean refusal', lim.rc === 0 ? 'met' : 'NOT met']);
p('## Targets (hubbub, medians, one server core)');
p();
p('| target | measured | goal | |');
p('|---|---:|---|---|');
for (const r of T) p(`| ${r.join(' | ')} |`);
p();

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
