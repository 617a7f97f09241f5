// Slowloris against chat-gateway: holds N connections that each send one
// byte of a never-ending request head per second, reopening any the gateway
// closes, for a fixed time. Bounded: stops by itself after `seconds`.
//
// The connections are spread over `addresses` loopback source addresses
// (127.0.0.2, 127.0.0.3, ...), standing for that many attacking clients, so
// that the gateway's per-client cap (--max_connections_per_client, 1,000 by
// default) does not cap the attack below N, and the normal client measured
// beside it (on 127.0.0.1) is a different client.
//
// Usage: node bench/slowloris.mjs HOST:PORT [connections=1000] [seconds=20]
//        [addresses=10]
// Prints "slowloris: N open" once all N are open the first time (a script
// can wait for that line), then a summary when done.
import net from 'node:net';

const [target, connArg = '1000', secsArg = '20', addrArg = '10'] = process.argv.slice(2);
if (!target) {
  console.error('usage: node bench/slowloris.mjs HOST:PORT [connections] [seconds] [addresses]');
  process.exit(2);
}
const [host, portText] = [target.slice(0, target.lastIndexOf(':')), target.slice(target.lastIndexOf(':') + 1)];
const port = Number(portText);
const connections = Number(connArg);
const seconds = Number(secsArg);
const addresses = Math.max(1, Math.min(250, Number(addrArg)));
const deadline = Date.now() + seconds * 1000;

// A head that never ends: a request line, then one header value that grows
// by a byte a second.
const HEAD = 'GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ';
const byteAt = (i) => (i < HEAD.length ? HEAD[i] : 'a');

const stats = { opened: 0, answered408: 0, otherAnswer: 0, closedSilently: 0, errors: 0, bytes: 0 };
const live = new Set();
let announced = false;

function open(index) {
  if (Date.now() >= deadline) return;
  const localAddress = `127.0.0.${2 + (index % addresses)}`;
  const socket = net.connect({ host, port, localAddress });
  const conn = { socket, sent: 0, data: '' };
  stats.opened++;
  socket.setNoDelay(true);
  socket.on('connect', () => {
    live.add(conn);
    if (!announced && live.size >= connections) {
      announced = true;
      console.log(`slowloris: ${live.size} open`);
    }
  });
  socket.on('data', (d) => { conn.data += d.toString(); });
  socket.on('error', () => { stats.errors++; });
  socket.on('close', () => {
    live.delete(conn);
    if (conn.data.startsWith('HTTP/1.1 408')) stats.answered408++;
    else if (conn.data) stats.otherAnswer++;
    else stats.closedSilently++;
    if (Date.now() < deadline) open(index);  // The attacker comes back.
  });
}

for (let i = 0; i < connections; i++) open(i);

const tick = setInterval(() => {
  for (const conn of live) {
    if (conn.socket.writable) {
      conn.socket.write(byteAt(conn.sent++));
      stats.bytes++;
    }
  }
}, 1000);

setTimeout(() => {
  clearInterval(tick);
  const stillOpen = live.size;
  for (const conn of live) conn.socket.destroy();
  console.log(`slowloris: ${connections} target connections over ${addresses} addresses for ${seconds}s: ` +
    `${stats.opened} opened, ${stillOpen} open at the end, ${stats.answered408} answered 408, ` +
    `${stats.closedSilently} closed without an answer, ${stats.otherAnswer} other answers, ` +
    `${stats.errors} socket errors, ${stats.bytes} bytes sent`);
  process.exit(0);
}, seconds * 1000);
