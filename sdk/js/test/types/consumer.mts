// A TypeScript ES-module consumer of the SDK, compiled by types.test.mjs with
// `tsc --noEmit` (strict, module nodenext). It must compile, and each line
// after an expect-error directive must be an error.
import PubSub, {
  createClient, HubbubError, type ConnectionState, type Welcome, type RecoveredInfo, type ResyncInfo, type GapNotice,
} from '../../dist/hubbub.mjs';
import ByName from '@hubbub/sdk'; /* the package's "import" condition: dist/hubbub.d.mts */

interface Hello { custom: string; n?: number; nested: { list: number[] } }

// publish<T>: interfaces are accepted; data is checked against T.
const ack: { message_id: string } = await PubSub.publish<Hello>('say-hello', { data: { custom: 'payload', nested: { list: [1] } } });
void ack;
PubSub.publish('say-hello', { data: { custom: 'payload' }, scope: 'event' });
ByName.publish<Hello>('say-hello', { data: { custom: 'x', nested: { list: [] } }, scope: 'organization' });
// @ts-expect-error data is required
PubSub.publish('say-hello', {});
// @ts-expect-error the payload must be under `data`
PubSub.publish('say-hello', { custom: 'payload' });
// @ts-expect-error data must match T
PubSub.publish<Hello>('say-hello', { data: { custom: 1, nested: { list: [] } } });
// @ts-expect-error not a scope
PubSub.publish('say-hello', { data: {}, scope: 'room' });
// @ts-expect-error data is an object, not a string
PubSub.publish('say-hello', { data: 'text' });

// subscribe<T>: the callback gets T and the metadata.
const off = PubSub.subscribe<Hello>('say-hello', (message, meta) => {
  const upper: string = message.custom.toUpperCase();
  const when: number = meta.sentAt;
  void upper;
  void when;
});
await off.ready;
off();
// @ts-expect-error a callback is required
PubSub.subscribe('say-hello');

// Presence: a typed member list and count, per session or event.
interface Attendee { name: string; avatar?: string }
const stopWatching = PubSub.presence.subscribe<Attendee>((p) => {
  const n: number = p.count;
  const names: string[] = p.members.map((m) => m.info?.name ?? m.userId);
  const left: string[] = p.leaves;
  const sample: boolean = !p.complete;
  void n, names, left, sample;
}, { scope: 'event' });
await stopWatching.ready;
stopWatching();
const page = await PubSub.presence.get<Attendee>({ scope: 'session', limit: 50 });
if (page.truncated) await PubSub.presence.get({ cursor: page.cursor, limit: 50 });
// @ts-expect-error presence is not kept per organization
PubSub.presence.get({ scope: 'organization' });
// @ts-expect-error the callback comes first
PubSub.presence.subscribe({ scope: 'session' });

// Errors: one channel, typed codes and close details.
PubSub.on('error', (e: HubbubError) => {
  if (e.code === 'token_expired' || e.code === 'origin_forbidden') console.warn('refused', e.closeCode, e.reason);
  const status: number | undefined = e.status;
  void status;
});
PubSub.onStateChange((state: ConnectionState, previous: ConnectionState) => console.log(previous, '->', state));

// Recovery: typed outcomes; a gap notice's fields.
PubSub.on('recovered', ({ replayed }: RecoveredInfo) => console.log(replayed));
PubSub.on('resync', (info: ResyncInfo) => {
  const cause: 'recovery_failed' | 'gap' = info.cause;
  const why: string | undefined = info.scopes.event;
  console.log(cause, why);
});
PubSub.on('gap', (g: GapNotice) => console.log(g.scope, g.epoch, g.offset, g.reason));
const where: string | null = PubSub.resumePosition;
void where;
PubSub.subscribe('x', (_data, meta) => {
  const at: number | undefined = meta.offset;
  void at;
});
// @ts-expect-error not an event of the client
PubSub.on('recover', () => {});
// @ts-expect-error a resync's cause is one of two
const bad: ResyncInfo = { cause: 'lost', scopes: {} };
void bad;

const client = createClient({ url: 'ws://127.0.0.1:8080', getToken: async () => 'a.b.c', queueTimeoutMs: 5000 });
const welcome: Welcome = await client.connect({ token: 'a.b.c', tokenTransport: 'protocol' });
console.log(welcome.room.session_id, client.state);
// @ts-expect-error an unknown transport
client.connect({ token: 'x', tokenTransport: 'header' });
// @ts-expect-error an unknown option
createClient({ url: 'ws://h', tokn: 'x' });

// SDK internals are not part of the typed API.
// @ts-expect-error not exported by the types
import { backoffDelay } from '../../dist/hubbub.mjs';
void backoffDelay;
