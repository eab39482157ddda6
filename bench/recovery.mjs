// bench/recovery.mjs: issue 17's "recovery of 100 messages for 1,000
// reconnecting clients at once". One server (SQLite history, defaults), one
// room; an SDK client takes the resume position, MESSAGES events are
// published over HTTP, then CLIENTS raw WebSockets open at once with
// `since=` and `subscribe=`; measured: the time from the first open to the
// last client holding every replayed event and its welcome (recovered:true),
// and the server's peak resident memory (VmHWM) before and after.
//   HUBBUB_BIN=build/hubbub node bench/recovery.mjs [CLIENTS] [MESSAGES]
import { readFileSync } from 'node:fs';
import { startServer, room, publishBody, WebSocket, poll } from '../test/e2e/harness.mjs';
import { createClient } from '../sdk/js/dist/hubbub.mjs';

const CLIENTS = Number(process.argv[2] || 1000);
const MESSAGES = Number(process.argv[3] || 100);
const hwm = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

const srv = await startServer({ threads: 2, config: { max_recover_messages: Math.max(1000, MESSAGES), conn_publish_rate: 0, token_publish_rate: 0 } });
try {
  const t = await srv.tenant();
  const r = room();
  const token = await srv.connToken(t, { ...r, user_id: 'probe', scopes: ['session', 'event', 'organization'] });
  const probe = createClient({ url: srv.url, token, WebSocket });
  probe.subscribe('h', () => {});
  await probe.subscribed('h');
  const since = probe.resumePosition;
  probe.close();
  for (let i = 0; i < MESSAGES; i++) {
    const res = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', { i }));
    if (res.status !== 202) throw new Error(`publish ${i}: ${res.status} ${res.text}`);
  }
  const tokens = [];
  for (let i = 0; i < CLIENTS; i++) tokens.push(await srv.connToken(t, { ...r, user_id: `u${i}`, scopes: ['session', 'event', 'organization'] }));
  const before = hwm(srv.pid);
  let done = 0;
  let failed = 0;
  const socks = [];
  const t0 = process.hrtime.bigint();
  let tEnd = 0n;
  for (const tok of tokens) {
    const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/api/v1/ws?subscribe=h&since=${since}`, ['hubbub.v1', 'hubbub.token.' + tok]);
    let events = 0;
    ws.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      if (msg.type === 'event') events++;
      if (msg.type === 'welcome') {
        if (msg.recovered === true && events === MESSAGES) done++;
        else failed++;
        if (done + failed === CLIENTS) tEnd = process.hrtime.bigint();
      }
    });
    ws.on('error', () => {});
    socks.push(ws);
  }
  await poll(() => done + failed === CLIENTS, 120000, 'every client recovered', 50);
  const after = hwm(srv.pid);
  const ms = Number(tEnd - t0) / 1e6;
  console.log(JSON.stringify({ clients: CLIENTS, messages: MESSAGES, recovered: done, failed, ms: Math.round(ms),
    replayed_per_s: Math.round((done * MESSAGES) / (ms / 1000)), server_hwm_kib_before: before, server_hwm_kib_after: after }));
  for (const ws of socks) ws.terminate();
} finally {
  await srv.stop();
}
