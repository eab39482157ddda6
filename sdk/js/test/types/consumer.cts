// A TypeScript CommonJS consumer: require() resolves the package's "require"
// condition (dist/hubbub.js, typed by dist/hubbub.d.ts).
import sdk = require('@hubbub/sdk');

interface Hello { custom: string }
const client = sdk.createClient({ url: 'ws://127.0.0.1:8080', token: 'a.b.c' });
client.publish<Hello>('say-hello', { data: { custom: 'payload' } }).catch((e: InstanceType<typeof sdk.HubbubError>) => console.log(e.code));
sdk.PubSub.subscribe<Hello>('say-hello', (m) => console.log(m.custom));
sdk.default.close();
