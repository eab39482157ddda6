// /metrics (docs/operations.md, "Metrics"): valid Prometheus text format
// 0.0.4, read with a real parser (parse-prometheus-text-format) and checked
// line by line (every family has HELP and TYPE before its samples, names and
// labels are valid, histograms cumulative with +Inf = _count); then each
// series an operator alerts on moves when its event happens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  REPO, startServer, startRedis, room, mintJwt, rawWs, publishBody, poll, withTimeout, WebSocket,
} from './harness.mjs';

const parsePrometheus = createRequire(path.join(REPO, 'package.json'))('parse-prometheus-text-format');

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Check the text format line by line; returns Map(series text -> value) and the families. */
function validate(text) {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const families = new Map(); // name -> { type, help, samples: [] }
  const series = new Map();
  let current = null;
  const closed = new Set();
  const owner = (sample) => {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const base = sample.endsWith(suffix) ? sample.slice(0, -suffix.length) : null;
      if (base && families.get(base)?.type === 'histogram') return base;
    }
    return sample;
  };
  for (const line of text.slice(0, -1).split('\n')) {
    let m;
    if ((m = /^# HELP (\S+) (.+)$/.exec(line))) {
      assert.match(m[1], NAME_RE);
      assert.ok(!families.has(m[1]), `one HELP for ${m[1]}`);
      if (current) closed.add(current);
      current = m[1];
      families.set(m[1], { help: m[2], type: null, samples: [] });
    } else if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      assert.equal(m[1], current, `TYPE right after HELP for ${m[1]}`);
      assert.equal(families.get(m[1]).type, null, `one TYPE for ${m[1]}`);
      families.get(m[1]).type = m[2];
    } else {
      m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
      assert.ok(m, `a sample line: ${JSON.stringify(line)}`);
      const fam = owner(m[1]);
      assert.equal(fam, current, `${m[1]} belongs to the family being written (${current}): HELP/TYPE first, samples together`);
      assert.ok(!closed.has(fam));
      const labels = {};
      if (m[3]) {
        const re = /([^=,]+)="((?:[^"\\]|\\.)*)"(,|$)/gy;
        let lm;
        let end = 0;
        while ((lm = re.exec(m[3]))) {
          assert.match(lm[1], LABEL_RE);
          labels[lm[1]] = lm[2];
          end = re.lastIndex;
        }
        assert.equal(end, m[3].length, `labels of ${line}`);
      }
      const v = m[4] === '+Inf' ? Infinity : Number(m[4]);
      assert.ok(!Number.isNaN(v), `a number: ${line}`);
      const key = m[1] + (m[2] || '');
      assert.ok(!series.has(key), `one sample per series: ${key}`);
      series.set(key, v);
      families.get(fam).samples.push({ name: m[1], labels, value: v });
    }
  }
  for (const [name, f] of families) {
    assert.ok(f.type, `${name} has a TYPE`);
    assert.ok(f.samples.length > 0, `${name} has samples`);
    if (f.type === 'counter') assert.match(name, /_total$/, `a counter's name ends in _total: ${name}`);
    if (f.type !== 'histogram') continue;
    const buckets = f.samples.filter((s) => s.name === name + '_bucket');
    const les = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
    assert.deepEqual(les, [...les].sort((a, b) => a - b), `${name}: buckets in order`);
    assert.equal(les[les.length - 1], Infinity, `${name}: a +Inf bucket`);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, `${name}: cumulative`);
    const count = f.samples.find((s) => s.name === name + '_count');
    const sum = f.samples.find((s) => s.name === name + '_sum');
    assert.ok(count && sum, `${name}: _sum and _count`);
    assert.equal(buckets[buckets.length - 1].value, count.value, `${name}: +Inf = _count`);
  }
  // And the parser from npm reads the same families.
  const parsed = parsePrometheus(text);
  assert.deepEqual(parsed.map((f) => f.name).sort(), [...families.keys()].sort());
  for (const f of parsed) assert.equal(f.type, families.get(f.name).type.toUpperCase());
  return { series, families, parsed };
}

async function scrape(srv) {
  const r = await srv.http('GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  return validate(r.text);
}

const EXISTING = ['connections_total', 'connections_rejected_total', 'publishes_http_total', 'publishes_ws_total',
  'deliveries_total', 'fanout_flushes_total', 'fanout_flush_turns_total', 'slow_consumers_closed_total',
  'http_requests_total', 'http_errors_total', 'json_fast_decodes_total', 'connections_open', 'websockets_open',
  'heap_bytes', 'io_threads'];

test('every series parses; each one an operator alerts on moves with its event', async () => {
  const srv = await startServer({
    config: { token_publish_rate: 1, token_publish_burst: 1, conn_publish_rate: 1, conn_publish_burst: 1 },
  });
  try {
    let m = await scrape(srv);
    for (const n of EXISTING) assert.ok(m.families.has('hubbub_' + n), `the existing series hubbub_${n} is kept`);
    for (const n of ['process_cpu_seconds_total', 'process_start_time_seconds', 'process_resident_memory_bytes', 'process_open_fds', 'process_max_fds'])
      assert.ok(m.families.has(n), n);
    assert.ok(m.series.get('process_open_fds') > 3);
    assert.ok(m.series.get('process_resident_memory_bytes') > 1e6);
    const start = m.series.get('process_start_time_seconds');
    assert.ok(start <= Date.now() / 1000 + 1 && start > Date.now() / 1000 - 3600, `start time ${start}`);
    const info = m.families.get('hubbub_build_info').samples[0];
    assert.equal(info.value, 1);
    assert.equal(info.labels.version, '0.1.0');
    assert.match(info.labels.commit, /^([0-9a-f]{7,40}(-dirty)?|unknown)$/);
    assert.equal(m.series.get('hubbub_broker_up'), 1);
    assert.equal(m.series.get('hubbub_broker_state{state="up"}'), 1);
    // Alerting on a rate needs the series before the first event.
    for (const k of ['hubbub_refusals_total{reason="invalid_token",transport="http"}', 'hubbub_refusals_total{reason="rate_limited",transport="ws"}',
      'hubbub_ws_closes_total{code="4000"}', 'hubbub_rate_limited_total{kind="connection"}', 'hubbub_rate_limited_total{kind="api_token"}',
      'hubbub_errors_total{code="invalid_json"}'])
      assert.equal(m.series.get(k), 0, k);

    const t = await srv.tenant();
    const r = room();
    const sub = await srv.join(t, r, { subscribe: ['m'] });
    const body = publishBody({ type: 'session', ...r }, 'm', { n: 1 });
    assert.equal((await srv.publish(t.apiToken, body)).status, 202);
    await sub.waitFor((x) => x.type === 'event');
    assert.equal((await srv.publish(t.apiToken, body)).status, 429); // token rate 1/s
    assert.equal((await srv.publish('hbk_wrong', body)).status, 401);
    // The connection's rate (1/s): the second publish is refused.
    await sub.request({ type: 'publish', eventName: 'm', data: {} });
    const limited = await sub.request({ type: 'publish', eventName: 'm', data: {} });
    assert.equal(limited.code, 'rate_limited');
    const bad = await sub.request({ type: 'publish', eventName: 'm', data: 5 });
    assert.equal(bad.code, 'invalid_type');
    // In-band refusal (ws transport) and an HTTP one on the WebSocket route.
    const tok = mintJwt('forged', srv.claims(t, r));
    const w = new WebSocket(`${srv.wsUrl}/api/v1/ws`, ['hubbub.v1', 'hubbub.token.' + tok], { perMessageDeflate: false });
    assert.equal(await withTimeout(new Promise((res) => w.on('close', res)), 5000, 'refusal'), 4401);
    await assert.rejects(srv.connect('garbage'));
    // A close the server initiates: a binary message (1003).
    const raw = await rawWs(srv.port, await srv.connToken(t, { ...r, user_id: 'raw' }));
    raw.send({ opcode: 0x2, payload: Buffer.from('x') });
    await withTimeout(raw.closed, 3000, 'close');
    raw.destroy();

    m = await poll(async () => {
      const s = await scrape(srv);
      return s.series.get('hubbub_delivery_latency_seconds_count') >= 1 ? s : null;
    }, 3000, 'a delivery latency observation');
    const v = (k) => m.series.get(k);
    assert.ok(v('hubbub_delivery_latency_seconds_sum') > 0);
    assert.ok(v('hubbub_http_request_duration_seconds_count') >= 5);
    assert.equal(v('hubbub_rate_limited_total{kind="api_token"}'), 1);
    assert.equal(v('hubbub_rate_limited_total{kind="connection"}'), 1);
    assert.equal(v('hubbub_refusals_total{reason="rate_limited",transport="http"}'), 1);
    assert.equal(v('hubbub_refusals_total{reason="rate_limited",transport="ws"}'), 1);
    assert.equal(v('hubbub_refusals_total{reason="invalid_token",transport="http"}'), 1);
    assert.equal(v('hubbub_refusals_total{reason="invalid_token",transport="ws"}'), 2);
    assert.equal(v('hubbub_errors_total{code="invalid_token"}'), 3);
    assert.equal(v('hubbub_errors_total{code="rate_limited"}'), 2);
    assert.equal(v('hubbub_errors_total{code="invalid_type"}'), 1, 'a WebSocket request error');
    assert.equal(v('hubbub_ws_closes_total{code="4401"}'), 1);
    assert.equal(v('hubbub_ws_closes_total{code="1003"}'), 1);
    await sub.close();
  } finally {
    await srv.stop();
  }
});

test('hubbub_broker_up and hubbub_broker_state follow the Redis link', async () => {
  const redis = await startRedis();
  let srv;
  try {
    srv = await startServer({ threads: 1, args: ['--redis', redis.url] });
    let m = await scrape(srv);
    assert.equal(m.series.get('hubbub_broker_up'), 1);
    const states = m.families.get('hubbub_broker_state').samples;
    assert.deepEqual(states.map((s) => s.labels.state), ['down', 'connecting', 'up', 'backoff']);
    assert.deepEqual(states.map((s) => s.value), [0, 0, 1, 0], 'one-hot');
    await redis.stop();
    m = await poll(async () => {
      const s = await scrape(srv);
      return s.series.get('hubbub_broker_up') === 0 ? s : null;
    }, 10000, 'broker_up 0 after Redis stopped');
    assert.equal(m.series.get('hubbub_broker_state{state="up"}'), 0);
    assert.equal(m.families.get('hubbub_broker_state').samples.reduce((a, s) => a + s.value, 0), 1, 'still one-hot');
  } finally {
    await srv?.stop();
    await redis.stop();
  }
});
