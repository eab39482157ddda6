// Helpers for the presence suites (20-presence, 21-presence-load,
// 30-redis-presence): members, presence requests, and what a client keeps
// of a presence it observes (its snapshot with every later delta applied).
import assert from 'node:assert/strict';
import { mintJwt, poll } from './harness.mjs';

/** A connection of `sub` in room `r` of `tenant` on `server` (offline token), scopes and info as given. */
export function member(server, tenant, r, sub, { scopes = ['session'], info } = {}) {
  const claims = server.claims(tenant, r, { sub, scopes });
  if (info !== undefined) claims.info = info;
  return server.connect(mintJwt(tenant.signingSecret, claims));
}

let reqN = 0;
/** Send a presence request; resolve with its answer (snapshot, ack or error). */
export async function ask(c, msg) {
  const id = `p${++reqN}`;
  c.send({ ...msg, id });
  return c.waitFor((m) => m.id === id, 3000, `answer to ${msg.type}`);
}

/** Subscribe to presence; returns the snapshot. */
export async function observe(c, scope = 'session') {
  const s = await ask(c, { type: 'presence.subscribe', scope });
  assert.equal(s.type, 'presence.snapshot', JSON.stringify(s));
  c.snapshotId = { ...c.snapshotId, [scope]: s.id };
  return s;
}

/** What a client keeps: its subscription's snapshot, then every later delta
 * applied; `complete` while nothing it was told was truncated. */
export function view(c, scope = 'session') {
  const snap = c.messages.find((m) => m.id === c.snapshotId[scope]);
  const members = new Map(snap.members.map((m) => [m.user_id, m.info]));
  let count = snap.count;
  let version = snap.version;
  let complete = !snap.truncated;
  for (const d of c.messages.filter((m) => m.type === 'presence.delta' && m.scope === scope)) {
    if (d.version <= snap.version) continue;
    assert.equal(d.version, version + 1, 'deltas arrive in order, none missing');
    version = d.version;
    for (const u of d.leaves) members.delete(u);
    for (const j of d.joins) members.set(j.user_id, j.info);
    count = d.count;
    if (d.truncated) complete = false;
  }
  return { members, count, version, complete };
}

/** Wait until the client's view has `count` members (and lists them all, when it can). */
export async function until(c, count, scope = 'session', ms = 5000) {
  await poll(() => {
    const v = view(c, scope);
    return v.count === count && (!v.complete || v.members.size === count);
  }, ms, `presence count ${count} (${scope}); have ${JSON.stringify([...view(c, scope).members.keys()]).slice(0, 300)}`);
  return view(c, scope);
}
