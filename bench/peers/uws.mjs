// The uWebSockets.js peer of the benchmark (npm uwebsockets 3.0.6).
//   GET  /ws/<room>   WebSocket: the socket is subscribed to topic <room>; every
//                     text message it sends is published to <room> (to every
//                     subscriber, the sender included, as hubbub and nchan do).
//   POST /pub/<room>  the body is published to <room>; 202.
// usage: node bench/peers/uws.mjs PORT [WORKERS]
//
// WORKERS (default 1): with 1 the app runs on the main thread, as it always
// has. With N > 1, N worker threads each run their own App on PORT (uSockets
// listens with SO_REUSEPORT, so the kernel spreads the connections, as it does
// over hubbub's --threads), and a publish is published locally and posted to
// every other worker, which publishes it to its own subscribers. uWS's pub/sub
// is per App, hence per thread: this relay (worker_threads MessagePorts, the
// bytes transferred, not copied) is the cross-thread hand-off uWS itself does
// not have, the counterpart of hubbub's per-thread inboxes.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../package.json'));

function serve(port, peers, onListening) {
  const uWS = require('uwebsockets');
  const app = uWS.App();
  // publish here, and hand it to every other worker
  const publish = (room, buf, isBinary) => {
    app.publish(room, buf, isBinary);
    if (!peers.length) return;
    for (let i = 0; i < peers.length; i++) {
      // a copy per peer: the ArrayBuffer moves to the other thread
      const copy = new Uint8Array(buf.byteLength);
      copy.set(buf instanceof ArrayBuffer ? new Uint8Array(buf) : buf);
      peers[i].postMessage({ room, isBinary, buf: copy.buffer }, [copy.buffer]);
    }
  };
  for (const p of peers) p.on('message', (m) => app.publish(m.room, m.buf, m.isBinary));

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
    message: (ws, msg, isBinary) => { publish(ws.getUserData().room, msg, isBinary); },
  });

  app.post('/pub/:room', (res, req) => {
    const room = req.getParameter(0);
    const chunks = [];
    res.onAborted(() => { res.aborted = true; });
    res.onData((ab, last) => {
      chunks.push(Buffer.from(ab.slice(0)));
      if (!last) return;
      if (res.aborted) return;
      publish(room, Buffer.concat(chunks), false);
      res.cork(() => { res.writeStatus('202 Accepted').end(); });
    });
  });

  app.listen('127.0.0.1', port, (token) => {
    if (!token) {
      console.error(`uws peer: cannot listen on 127.0.0.1:${port}`);
      process.exit(1);
    }
    onListening();
  });
}

if (isMainThread) {
  const port = Number(process.argv[2] || 9003);
  const workers = Number(process.argv[3] || 1);
  if (workers <= 1) {
    serve(port, [], () => console.error(`uws peer: listening on 127.0.0.1:${port}`));
  } else {
    // a MessageChannel between every pair of workers
    const ports = Array.from({ length: workers }, () => []);
    for (let i = 0; i < workers; i++) {
      for (let j = i + 1; j < workers; j++) {
        const { port1, port2 } = new MessageChannel();
        ports[i].push(port1);
        ports[j].push(port2);
      }
    }
    let up = 0;
    for (let i = 0; i < workers; i++) {
      const w = new Worker(fileURLToPath(import.meta.url), { workerData: { port, peers: ports[i] }, transferList: ports[i] });
      w.on('message', () => {
        if (++up === workers) console.error(`uws peer: ${workers} workers listening on 127.0.0.1:${port}`);
      });
      w.on('error', (e) => { console.error(`uws peer: worker ${i}: ${e.stack || e}`); process.exit(1); });
    }
  }
} else {
  serve(workerData.port, workerData.peers, () => parentPort.postMessage('listening'));
}
