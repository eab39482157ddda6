// Type declarations for the hubbub JavaScript SDK (sdk/js/src/hubbub.js): the
// documented API of docs/sdk.md, nothing more. build.mjs makes two files of it:
//   dist/hubbub.d.mts  beside hubbub.mjs (ES module):
//                      `import PubSub, { createClient } from './hubbub.mjs'`
//   dist/hubbub.d.ts   beside hubbub.js (classic <script>, CommonJS require):
//                      the same, plus the globals `PubSub` and `HubbubSDK`
//                      (the block between the @@classic markers at the end).

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
/** Any JSON object: what subscribers receive by default. */
export type JsonObject = { [key: string]: JsonValue };

/** Who receives a publish: one session (room), every session of the event, or the whole organization. */
export type Scope = 'session' | 'event' | 'organization';

/** `idle` before connect(); `closed` after close(), a refusal, or a close code that forbids reconnecting. */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Error codes: the server's (docs/protocol.md) and the SDK's own (docs/sdk.md, "Errors"). */
export type HubbubErrorCode =
  // the server refused the connection (docs/protocol.md section 2)
  | 'bad_request' | 'missing_token' | 'invalid_token' | 'token_expired' | 'token_revoked'
  | 'origin_forbidden' | 'shutting_down'
  // an operator ended the connection (docs/protocol.md section 4)
  | 'user_disconnected' | 'plugin_deleted' | 'room_closed'
  // the server refused a request
  | 'invalid_json' | 'missing_field' | 'invalid_type' | 'invalid_event_name' | 'invalid_scope'
  | 'invalid_value' | 'unknown_type' | 'data_too_large' | 'scope_forbidden'
  | 'too_many_subscriptions' | 'rate_limited' | 'broker_unavailable'
  // the SDK
  | 'invalid_argument' | 'queue_full' | 'timeout' | 'closed' | 'connection_refused'
  | 'connect_timeout' | 'connect_failed' | 'connection_lost' | 'connection_closed'
  | 'reconnect_failed' | 'token_refresh_failed' | 'callback_error' | 'unsubscribed' | 'not_subscribed'
  // codes a newer server may add
  | (string & {});

export declare class HubbubError extends Error {
  readonly name: 'HubbubError';
  /** Stable machine-readable code. */
  readonly code: HubbubErrorCode;
  /** The WebSocket close code that ended the connection, when one did. */
  readonly closeCode?: number;
  /** The close reason (a refusal's reason is its code, e.g. 'token_expired'). */
  readonly reason?: string;
  /** The HTTP status of a refused upgrade, where the WebSocket implementation exposes it (Node's `ws`). */
  readonly status?: number;
  /** The event name of the failed publish/subscribe, when known. */
  readonly eventName?: string;
  /** The id of the request that failed, when the server named it. */
  readonly requestId?: string;
  readonly cause?: unknown;
  constructor(code: string, message?: string, extra?: Record<string, unknown>);
}

/** The first message of every connection: who and where we are. */
export interface Welcome {
  type: 'welcome';
  protocol: number;
  connection_id: string;
  room: { organization_id: string; plugin_id: string; event_id: string; session_id: string };
  user_id: string;
  scopes: Scope[];
  expires_at: number;
  ping_interval_ms: number;
  limits: { max_message_bytes: number; max_data_bytes: number; max_subscriptions: number; presence_list_max?: number };
  /** The event names subscribed at the upgrade (`?subscribe=`), when there were any. */
  subscribed?: string[];
  /** The current position of each of the room's three channels (docs/protocol.md section 6). */
  positions?: Record<Scope, Position>;
  /** Present when the client asked to recover (`since=`): whether it got everything it missed. */
  recovered?: boolean;
  /** With `recovered: false`: why, per scope that could not be recovered. */
  recovery?: { failed: Partial<Record<Scope, RecoveryFailure>> };
  [key: string]: unknown;
}

/** A place in a channel: `epoch` names one unbroken history of it, `offset` counts its messages. */
export interface Position {
  epoch: string;
  offset: number;
}

/**
 * Why messages of a scope are lost: the server's reasons (docs/protocol.md section 6), or the
 * SDK's `too_many_subscriptions` (the names did not fit the reconnect URL, so it could not ask)
 * and `unknown` (a server that did not say).
 */
export type RecoveryFailure =
  | 'epoch_changed' | 'trimmed' | 'too_many' | 'unknown_position' | 'too_many_subscriptions' | 'unknown'
  | (string & {});

/** 'recovered': a reconnect got every message it missed, replayed before its welcome. */
export interface RecoveredInfo {
  /** Events replayed (of the subscribed names, after dropping any already delivered). */
  replayed: number;
}

/**
 * 'resync': messages of these scopes were lost and will not come; reload what you show
 * from them (your backend, or GET /api/v1/history).
 */
export interface ResyncInfo {
  /** 'recovery_failed': a reconnect could not recover; 'gap': the server's gap notice while connected. */
  cause: 'recovery_failed' | 'gap';
  scopes: Partial<Record<Scope, RecoveryFailure>>;
}

/** 'gap': the server's notice that messages of `scope` up to (`epoch`, `offset`) will not come. */
export interface GapNotice {
  scope: Scope;
  epoch: string;
  offset: number;
  reason: RecoveryFailure;
}

/** Second argument of a subscriber callback (the first is exactly the published `data`). */
export interface EventMeta {
  eventName: string;
  scope: Scope;
  messageId: string;
  /** Server clock, milliseconds since the epoch, when the publish was accepted. */
  sentAt: number;
  /** The event's position in its scope's channel (servers with history). */
  offset?: number;
}

export interface ConnectOptions {
  /** ws://, wss://, http:// or https:// base URL of the server (default in a page: its origin). `/api/v1/ws` is appended. */
  url?: string;
  /** A connection token (JWT). Required unless getToken is given. */
  token?: string;
  /** A fresh token: called before every reconnect attempt, and after close code 4401/4410. */
  getToken?: () => string | Promise<string>;
  /**
   * How the token travels: 'protocol' (default) in the Sec-WebSocket-Protocol header,
   * 'query' as `?token=` for servers that predate it (refusals are then invisible in browsers).
   */
  tokenTransport?: 'protocol' | 'query';
  /** A WebSocket constructor, e.g. the `ws` package on Node 20. Default: the global WebSocket. */
  WebSocket?: unknown;
  /** Reconnect automatically (default true). */
  reconnect?: boolean;
  /** Backoff: first retry waits a random 0..backoffBaseMs (default 250). */
  backoffBaseMs?: number;
  /** Backoff: no retry waits longer than this (default 10000). */
  backoffCapMs?: number;
  /** Give up after this many consecutive failed attempts (default Infinity). */
  maxReconnectAttempts?: number;
  /** Publishes kept while not connected (default 1000); more fail with `queue_full`. */
  maxQueue?: number;
  /** A queued publish not sent within this fails with `timeout` (default 30000; Infinity: never). */
  queueTimeoutMs?: number;
  /** Socket open + welcome must take at most this (default 10000). */
  connectTimeoutMs?: number;
  /** A request without answer fails with `timeout` after this (default 15000). */
  ackTimeoutMs?: number;
  /** Application ping interval; 0 (default) uses the server's ping_interval_ms. */
  pingIntervalMs?: number;
  /** No message at all this long after a ping means the link is dead (default 10000). */
  pongTimeoutMs?: number;
}

/**
 * The options of publish(). `data` is required and must be a plain JSON object;
 * any `T extends object` is accepted, interfaces included (the SDK checks at run time).
 */
export interface PublishOptions<T extends object = JsonObject> {
  /** A JSON object, delivered unchanged to subscribers. */
  data: T;
  /** Default 'session'. */
  scope?: Scope;
}

/** Returned by subscribe(): call it to unsubscribe. */
export interface Unsubscribe {
  (): void;
  /** Resolves once the server has confirmed the subscription. */
  ready: Promise<void>;
}

export type Callback<T = any> = (data: T, meta: EventMeta) => void;

/** Presence is kept per session and per event (every session of the webinar). */
export type PresenceScope = 'session' | 'event';

/** One member: a user (its tabs count once) and the public info of its connection token. */
export interface PresenceMember<I = JsonObject> {
  /** The `sub` of the member's connection token. */
  userId: string;
  /** The token's `info` claim, when it had one. */
  info?: I;
}

/** One page of a channel's members, in the order they joined. */
export interface PresencePage<I = JsonObject> {
  scope: PresenceScope;
  /** Exact number of members. */
  count: number;
  members: PresenceMember<I>[];
  /** More members follow: pass `cursor` to presence.get() for the next page. */
  truncated: boolean;
  cursor?: string;
  /** The presence version the page reflects. */
  version: number;
}

/** What a presence subscriber is called with: after the snapshot and after every change. */
export interface PresenceState<I = JsonObject> {
  scope: PresenceScope;
  /** Exact number of members. */
  count: number;
  /** The members known: all of them while `complete`, else a sample (a large room). */
  members: PresenceMember<I>[];
  complete: boolean;
  /** Who joined and left in this change (empty for a snapshot; a sample when the room is large). */
  joins: PresenceMember<I>[];
  leaves: string[];
}

export interface PresenceGetOptions {
  /** Default 'session'. */
  scope?: PresenceScope;
  /** The cursor of the previous page. */
  cursor?: string;
  /** Members per page, 1 to 1000 (default: the server's presence_list_max, 100). */
  limit?: number;
}

export interface PresenceSubscribeOptions {
  /** Default 'session'. */
  scope?: PresenceScope;
}

/** Who is in this session or event (docs/sdk.md, "Presence"). */
export interface Presence {
  /** One page of members; waits for the connection like a queued publish. Rejects with `scope_forbidden` when the token does not allow the scope. */
  get<I = JsonObject>(options?: PresenceGetOptions): Promise<PresencePage<I>>;
  /**
   * Call `callback` with the snapshot, then after every change (at most once per
   * presence interval, one second by default). After a reconnect it is called with a
   * fresh snapshot. Throws HubbubError('invalid_argument') for bad arguments.
   */
  subscribe<I = JsonObject>(callback: (state: PresenceState<I>) => void, options?: PresenceSubscribeOptions): Unsubscribe;
}

export declare class Client {
  constructor(options?: ConnectOptions);
  readonly state: ConnectionState;
  /** The last welcome message (null before the first). */
  readonly welcome: Welcome | null;
  readonly room: Welcome['room'] | null;
  readonly connectionId: string | null;
  /** Where the client is in the room's channels, as the resume string a reconnect sends (null before a welcome with positions). */
  readonly resumePosition: string | null;
  /** Who is in this session or event. */
  readonly presence: Presence;
  /**
   * Connect; resolves with the welcome message, rejects with the error that made the
   * client give up. Throws HubbubError('invalid_argument') for bad options.
   */
  connect(options: ConnectOptions): Promise<Welcome>;
  /**
   * Resolves with the server-assigned message id once acknowledged. Never throws:
   * bad arguments reject with HubbubError('invalid_argument').
   */
  publish<T extends object = JsonObject>(eventName: string, options: PublishOptions<T>): Promise<{ message_id: string }>;
  /** Throws HubbubError('invalid_argument') for a bad name or a callback that is not a function. */
  subscribe<T = any>(eventName: string, callback: Callback<T>): Unsubscribe;
  /** Resolves when eventName is subscribed on the current connection (waits for re-subscription after a reconnect). */
  subscribed(eventName: string): Promise<void>;
  /** Remove one callback, or all callbacks of eventName when omitted. */
  unsubscribe(eventName: string, callback?: Callback<any>): void;
  onStateChange(callback: (state: ConnectionState, previous: ConnectionState) => void): () => void;
  on(event: 'error', callback: (error: HubbubError) => void): () => void;
  on(event: 'state', callback: (state: ConnectionState, previous: ConnectionState) => void): () => void;
  on(event: 'welcome', callback: (welcome: Welcome) => void): () => void;
  /** A reconnect got everything it missed (after its 'welcome'). */
  on(event: 'recovered', callback: (info: RecoveredInfo) => void): () => void;
  /** Messages were lost and will not come: reload what you show from those scopes. */
  on(event: 'resync', callback: (info: ResyncInfo) => void): () => void;
  /** The server's gap notice (followed by a 'resync' with cause 'gap'). */
  on(event: 'gap', callback: (notice: GapNotice) => void): () => void;
  off(event: 'error' | 'state' | 'welcome' | 'recovered' | 'resync' | 'gap', callback: (...args: any[]) => void): void;
  /** Close for good; queued publishes fail with `closed`. */
  close(): void;
}

export interface DefaultClient extends Client {
  createClient: typeof createClient;
  HubbubError: typeof HubbubError;
  VERSION: string;
}

/** The default connection used by plugin code. */
export declare const PubSub: DefaultClient;
/** A new independent connection; connects at once when url/token are given. */
export declare function createClient(options?: ConnectOptions): Client;
export declare const VERSION: string;
export default PubSub;
// @@classic-begin (build.mjs: only in hubbub.d.ts, for <script src="/sdk/hubbub.js">)

/** Classic-script build: `<script src="/sdk/hubbub.js">` defines these globals. */
export as namespace HubbubSDK;
declare global {
  var PubSub: DefaultClient;
}
// @@classic-end
