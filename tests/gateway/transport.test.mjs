// The gateway's transport limits against the real binaries: the connection
// caps (--max_connections, --max_connections_per_client), the request-head
// timeout that answers 408 (--header_timeout) and the keep-alive idle cap
// (--idle_timeout). Strategy: raw sockets on loopback, several source
// addresses (127.0.0.2, ...) standing for several clients. Every wait is on
// an event the gateway causes (an answer, its end of the stream): the
// timeouts are the gateway's, set short, and no test sleeps.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startStack } from './harness.mjs';

const STATUS = 'GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n';
const STATUS_CLOSE = 'GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

// A connection from `localAddress` that has had one answer (so the gateway
// accepted it), or null if the gateway closed it without a byte (refused).
function openConnection(port, localAddress = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    let data = '';
    let settled = false;
    const settle = (value) => {
      if (settled) return;
      settled = true;
      socket.removeAllListeners('data');
      resolve(value);
    };
    socket.on('data', (d) => {
      data += d.toString();
      if (/\r\n\r\n[\s\S]*\}$/.test(data)) settle(socket);
    });
    // Refused: closed at once. Our request may meet the closed socket as a
    // reset instead of an orderly end; either way nothing was answered.
    socket.on('close', () => { if (!settled) { assert.equal(data, ''); settle(null); } });
    socket.on('error', (e) => { if (!['ECONNRESET', 'EPIPE'].includes(e.code)) reject(e); });
    socket.write(STATUS);
  });
}

// Everything the gateway sends on a fresh connection after `payload`, until
// it closes the connection.
function untilClosed(port, payload) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => { data += d.toString(); });
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
    if (payload) socket.write(payload);
  });
}

// Asks the gateway to close `socket` after one more answer and resolves once
// it has: its slot is free by then.
function closeByServer(socket) {
  return new Promise((resolve) => {
    socket.on('close', resolve);
    socket.resume();
    socket.write(STATUS_CLOSE);
  });
}

describe('connection caps', () => {
  let stack;
  let port;
  before(async () => {
    stack = await startStack({
      gatewayArgs: ['--max_connections=4', '--max_connections_per_client=2'],
    });
    port = stack.gateway.port;
  });
  after(async () => { await stack?.stop(); });

  it('refuses a client its third connection, and lets one in once one closes', async () => {
    const a = await openConnection(port, '127.0.0.2');
    const b = await openConnection(port, '127.0.0.2');
    assert.ok(a && b);
    assert.equal(await openConnection(port, '127.0.0.2'), null);
    // Another client is not affected.
    const other = await openConnection(port, '127.0.0.3');
    assert.ok(other);
    await closeByServer(a);
    const c = await openConnection(port, '127.0.0.2');
    assert.ok(c, 'a connection is let in once one of the client closed');
    for (const s of [b, c, other]) await closeByServer(s);
  });

  it('refuses any client past the total, and lets one in once one closes', async () => {
    const open = [];
    for (const address of ['127.0.0.4', '127.0.0.4', '127.0.0.5', '127.0.0.5']) {
      const s = await openConnection(port, address);
      assert.ok(s, `connection ${open.length + 1} of 4`);
      open.push(s);
    }
    assert.equal(await openConnection(port, '127.0.0.6'), null);
    await closeByServer(open.shift());
    const again = await openConnection(port, '127.0.0.6');
    assert.ok(again);
    open.push(again);
    for (const s of open) await closeByServer(s);
  });
});

describe('header and idle timeouts', () => {
  let stack;
  let port;
  before(async () => {
    stack = await startStack({
      gatewayArgs: ['--header_timeout=300ms', '--idle_timeout=300ms', '--read_timeout=30s'],
    });
    port = stack.gateway.port;
  });
  after(async () => { await stack?.stop(); });

  it('answers 408 and closes when the head does not arrive in time', async () => {
    const data = await untilClosed(port, 'GET /v1/status HTTP/1.1\r\nHost: x\r\n');
    assert.match(data, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.match(data, /Connection: close\r\n/);
    assert.match(data, /"message":"the request head was not received within 300ms"/);
  });

  it('closes a connection that never sends a byte, without an answer', async () => {
    assert.equal(await untilClosed(port, ''), '');
  });

  it('closes an idle keep-alive connection after the idle timeout', async () => {
    const data = await untilClosed(port, STATUS);
    // One whole answer, then the gateway closed the connection by itself.
    assert.equal((data.match(/HTTP\/1\.1 /g) || []).length, 1);
    assert.match(data, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(data, /Connection: keep-alive\r\n/);
  });

  it('still serves requests after the timeouts', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/status`);
    assert.equal(res.status, 200);
  });
});
