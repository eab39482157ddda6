// Type declarations for the hubbub JavaScript SDK (sdk/js/src/hubbub.js).
// ES module: `import PubSub, { createClient } from '/sdk/hubbub.mjs'`.
// Classic <script src="/sdk/hubbub.js">: the same API as the globals
// `PubSub` and `HubbubSDK` (declared at the end of this file).

/** Any JSON object: what `publish` sends and what subscribers receive. */
export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

/** Who receives a publish: one session (room), every session of the event, or the whole organization. */
export type Scope = 'session' | 'event' | 'organization';

/** `idle` before connect(); `closed` after close() or a close code that forbids reconnecting. */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Error codes: the server's (docs/protocol.md) and the SDK's own. */
export type HubbubErrorCode =
  | 'invalid_json' | 'missing_field' | 'invalid_type' | 'invalid_event_name' | 'invalid_scope'
  | 'invalid_value' | 'unknown_type' | 'data_too_large' | 'scope_forbidden'
  | 'too_many_subscriptions' | 'rate_limited' | 'broker_unavailable' | 'shutting_down'
  | 'invalid_argument' | 'queue_full' | 'connection_lost' | 'connection_refused'
  | 'connection_closed' | 'closed' | 'timeout' | 'unsubscribed' | 'callback_error'
  | 'token_refresh_failed' | 'connect_failed' | 'reconnect_failed' | 'not_subscribed'
  | (string & {});

export declare class HubbubError extends Error {
  readonly name: 'HubbubError';
  /** Stable machine-readable code. */
  readonly code: HubbubErrorCode;
  /** The id of the request that failed, when the server named it. */
  readonly requestId?: string;
  /** The event name of the failed publish/subscribe, when known. */
  readonly eventName?: string;
  /** The WebSocket close code (or HTTP status of a refused handshake) that ended the connection. */
  readonly closeCode?: number;
  readonly reason?: string;
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
  limits: { max_message_bytes: number; max_data_bytes: number; max_subscriptions: number };
  /** The event names subscribed at the upgrade (`?subscribe=`), when there were any. */
  subscribed?: string[];
  [key: string]: unknown;
}

/** Second argument of a subscriber callback (the first is exactly the published `data`). */
export interface EventMeta {
  eventName: string;
  scope: Scope;
  messageId: string;
  /** Server clock, milliseconds since the epoch, when the publish was accepted. */
  sentAt: number;
}

export interface ConnectOptions {
  /** ws://, wss://, http:// or https:// base URL of the server (default in a page: its origin). `/api/v1/ws` is appended. */
  url?: string;
  /** A connection token (JWT). Required unless getToken is given. */
  token?: string;
  /** Called for a fresh token before every reconnect, and after close code 4401 (token expired). */
  getToken?: () => string | Promise<string>;
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
  /** Publishes kept while offline (default 1000); more fail with `queue_full`. */
  maxQueue?: number;
  /** Socket open + welcome must take at most this (default 10000). */
  connectTimeoutMs?: number;
  /** A request without answer fails with `timeout` after this (default 15000). */
  ackTimeoutMs?: number;
  /** Application ping interval; 0 (default) uses the server's ping_interval_ms. */
  pingIntervalMs?: number;
  /** No message at all this long after a ping means the link is dead (default 10000). */
  pongTimeoutMs?: number;
}

export interface PublishOptions<T extends JsonObject = JsonObject> {
  /** Any JSON object, delivered unchanged to subscribers. Default `{}`. */
  data?: T;
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

export declare class Client {
  constructor(options?: ConnectOptions);
  readonly state: ConnectionState;
  /** The last welcome message (null before the first). */
  readonly welcome: Welcome | null;
  readonly room: Welcome['room'] | null;
  readonly connectionId: string | null;
  /** Connect; resolves with the welcome message. Calls made before are queued. */
  connect(options: ConnectOptions): Promise<Welcome>;
  /** Resolves with the server-assigned message id once acknowledged. */
  publish<T extends JsonObject = JsonObject>(eventName: string, options?: PublishOptions<T>): Promise<{ message_id: string }>;
  subscribe<T = any>(eventName: string, callback: Callback<T>): Unsubscribe;
  /** Resolves when eventName is subscribed on the current connection (waits for re-subscription after a reconnect). */
  subscribed(eventName: string): Promise<void>;
  /** Remove one callback, or all callbacks of eventName when omitted. */
  unsubscribe(eventName: string, callback?: Callback<any>): void;
  onStateChange(callback: (state: ConnectionState, previous: ConnectionState) => void): () => void;
  on(event: 'error', callback: (error: HubbubError) => void): () => void;
  on(event: 'state', callback: (state: ConnectionState, previous: ConnectionState) => void): () => void;
  on(event: 'welcome', callback: (welcome: Welcome) => void): () => void;
  off(event: 'error' | 'state' | 'welcome', callback: (...args: any[]) => void): void;
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
/** Full-jitter exponential backoff: random in [0, min(cap, base * 2^attempt)). */
export declare function backoffDelay(attempt: number, options?: { backoffBaseMs?: number; backoffCapMs?: number }, random?: () => number): number;
/** Whether the SDK reconnects after this close code. */
export declare function shouldReconnect(code: number, hasGetToken: boolean): boolean;
/** The WebSocket URL the SDK opens for a base URL and a token. */
/** `subscribe`: event names to subscribe to at the upgrade (`&subscribe=a,b`). */
export declare function buildSocketUrl(url: string, token: string, subscribe?: string[]): string;
export declare const VERSION: string;
export declare const STATES: ConnectionState[];
export default PubSub;

/** Classic-script build: `<script src="/sdk/hubbub.js">` defines these globals. */
export as namespace HubbubSDK;
declare global {
  var PubSub: DefaultClient;
}
