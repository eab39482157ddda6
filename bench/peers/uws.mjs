// The uWebSockets.js peer of the benchmark (npm uwebsockets 3.0.6).
//   GET  /ws/<room>   WebSocket: the socket is subscribed to topic <room>; every
//                     text message it sends is published to <room> (to every
//                     subscriber, the sender included, as hubbub and nchan do).
//   POST /pub/<room>  the body is published to <room>; 202.
// usage: node bench/peers/uws.mjs PORT
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../package.json'));
const uWS = require('uwebsockets');

const port = Number(process.argv[2] || 9003);
const app = uWS.App();

app.ws('/ws/:room', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  idleTimeout: 120,
  // the benchmark's slow-consumer bound, like hubbub's 1 MiB default
  maxBackpressure: 1024 * 1024,
  upgrade: (res, req, context) => {
    res.upgrade({ room: req.getParameter(0) }, req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
  },
  open: (ws) => { ws.subscribe(ws.getUserData().room); },
  // app.publish, not ws.publish: the sender receives its own message too
  message: (ws, msg, isBinary) => { app.publish(ws.getUserData().room, msg, isBinary); },
});

app.post('/pub/:room', (res, req) => {
  const room = req.getParameter(0);
  const chunks = [];
  res.onAborted(() => { res.aborted = true; });
  res.onData((ab, last) => {
    chunks.push(Buffer.from(ab.slice(0)));
    if (!last) return;
    if (res.aborted) return;
    app.publish(room, Buffer.concat(chunks), false);
    res.cork(() => { res.writeStatus('202 Accepted').end(); });
  });
});

app.listen('127.0.0.1', port, (token) => {
  if (!token) {
    console.error(`uws peer: cannot listen on 127.0.0.1:${port}`);
    process.exit(1);
  }
  console.error(`uws peer: listening on 127.0.0.1:${port}`);
});
