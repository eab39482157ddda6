// A plain script (no import/export) using the classic build's globals,
// <script src="/sdk/hubbub.js">, typed by hubbub.d.ts.
/// <reference path="../../dist/hubbub.d.ts" />

interface Hello { custom: string }
PubSub.subscribe<Hello>('say-hello', (message) => console.log(message.custom));
PubSub.publish<Hello>('say-hello', { data: { custom: 'payload' } });
PubSub.connect({ url: 'https://rooms.example.com', token: 'a.b.c' });
const other: HubbubSDK.Client = HubbubSDK.createClient({ token: 'a.b.c' });
other.on('error', (e: HubbubSDK.HubbubError) => console.warn(e.code, e.closeCode));
// @ts-expect-error the payload must be under `data`
PubSub.publish('say-hello', { custom: 'payload' });
