// HTTPS on chat-gateway (--tls_cert / --tls_key) against the real binaries.
// Strategy: openssl makes a CA and two server certificates (serials 1001 and
// 2002) in a temp dir at test time; real clients connect: curl --cacert,
// Node's tls.connect (to read the certificate the gateway presents) and the
// JS client under NODE_EXTRA_CA_CERTS. The reload test swaps the files,
// sends SIGHUP and waits for the gateway's own log line saying it reloaded;
// nothing sleeps. The backend reload test does the same for the gateway's
// client certificate to a mutual-TLS chat-server, while a stream started
// before the reloads runs on.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, writeFileSync, copyFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startStack, postJson, words, GATEWAY, SOURCE_DIR } from './harness.mjs';

const dir = mkdtempSync(join(tmpdir(), 'chatd-tls-'));
const file = (name) => join(dir, name);

function openssl(...args) {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

// A CA, then server certificates for 127.0.0.1 / localhost signed by it.
function makeCertificates() {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
    '-subj', '/CN=chatd test CA', '-keyout', file('ca.key'), '-out', file('ca.crt'));
  writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const [name, serial] of [['one', '0x1001'], ['two', '0x2002']]) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=gateway ${name}`,
      '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`));
    openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.crt'),
      '-CAkey', file('ca.key'), '-set_serial', serial, '-days', '2',
      '-extfile', file('san.ext'), '-out', file(`${name}.crt`));
  }
}

// CAs for client certificates ('ca' signs chat-server's certificate and the
// first client certificate), and client certificates signed by them (EC
// keys: quicker to make).
function makeClientCertificates() {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const name of ['newca', 'rogueca']) {
    openssl('req', '-x509', ...ec, '-days', '2', '-subj', `/CN=chatd test ${name}`,
      '-keyout', file(`${name}.key`), '-out', file(`${name}.crt`));
  }
  writeFileSync(file('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, ca, serial] of [['clientold', 'ca', '0x3003'], ['clientnew', 'newca', '0x4004'],
    ['clientrogue', 'rogueca', '0x5005']]) {
    openssl('req', ...ec, '-subj', `/CN=gateway ${name}`,
      '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`));
    openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${ca}.crt`),
      '-CAkey', file(`${ca}.key`), '-set_serial', serial, '-days', '2',
      '-extfile', file('client.ext'), '-out', file(`${name}.crt`));
  }
}

// Replaces file `to` whole with a copy of `from`.
function replaceFile(from, to) {
  copyFileSync(file(from), file(`${to}.tmp`));
  renameSync(file(`${to}.tmp`), file(to));
}

// Installs certificate `name` as the files the gateway reads; each file is
// replaced whole (rename), as a deployment would.
function install(name) {
  for (const ext of ['crt', 'key']) {
    copyFileSync(file(`${name}.${ext}`), file(`server.${ext}.tmp`));
    renameSync(file(`server.${ext}.tmp`), file(`server.${ext}`));
  }
}

// Resolves once the process's log (so far or later) matches `pattern`.
function waitForLog(proc, pattern) {
  return new Promise((resolve) => {
    const check = () => {
      const m = pattern.exec(proc.log());
      if (m) {
        proc.child.stdout.off('data', check);
        proc.child.stderr.off('data', check);
        resolve(m);
      }
    };
    proc.child.stdout.on('data', check);
    proc.child.stderr.on('data', check);
    check();
  });
}

// A TLS connection trusting only the test CA.
function connectTls(port) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(file('ca.crt')),
      ALPNProtocols: ['h2', 'http/1.1'] }, () => resolve(socket));
    socket.on('error', reject);
  });
}

// Sends a keep-alive GET /v1/status on `socket` and resolves to the answer.
function statusOver(socket) {
  return new Promise((resolve, reject) => {
    let data = '';
    const onData = (d) => {
      data += d.toString();
      if (/\r\n\r\n[\s\S]*\}$/.test(data)) {
        socket.off('data', onData);
        resolve(data);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write('GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  });
}

function curl(args) {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', ...args], (error, stdout, stderr) => resolve({ error, stdout, stderr }));
  });
}

// Runs chat-gateway with `args` and resolves to its exit code and output.
function runGateway(args) {
  return new Promise((resolve) => {
    const child = spawn(GATEWAY, ['--listen=127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code) => resolve({ code, out }));
  });
}

makeCertificates();
makeClientCertificates();
install('one');

describe('HTTPS', () => {
  let stack;
  let port;
  let url;
  before(async () => {
    stack = await startStack({
      gatewayArgs: [`--tls_cert=${file('server.crt')}`, `--tls_key=${file('server.key')}`],
    });
    port = stack.gateway.port;
    url = `https://127.0.0.1:${port}`;
  });
  after(async () => { await stack?.stop(); });

  it('serves curl --cacert over HTTPS with HTTP/1.1', async () => {
    const { error, stdout, stderr } = await curl(['--cacert', file('ca.crt'),
      '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `${url}/v1/status`]);
    assert.ifError(error, stderr);
    assert.equal(stdout, '200 1.1');
  });

  it('negotiates ALPN http/1.1 and TLS 1.2 or later', async () => {
    const socket = await connectTls(port);
    assert.equal(socket.alpnProtocol, 'http/1.1');
    assert.match(socket.getProtocol(), /^TLSv1\.[23]$/);
    socket.destroy();
  });

  it('refuses TLS 1.1', async () => {
    await assert.rejects(new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(file('ca.crt')),
        minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }, () => resolve(socket));
      socket.on('error', reject);
    }));
  });

  it('fails plain HTTP to the HTTPS port cleanly, and keeps serving', async () => {
    const data = await new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      let got = '';
      socket.on('data', (d) => { got += d.toString('latin1'); });
      socket.on('close', () => resolve(got));
      socket.on('error', (e) => (e.code === 'ECONNRESET' ? resolve(got) : reject(e)));
      socket.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    assert.doesNotMatch(data, /^HTTP\//);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/v1/status`));
    const { stdout } = await curl(['--cacert', file('ca.crt'), '-o', '/dev/null', '-w', '%{http_code}', `${url}/`]);
    assert.equal(stdout, '200');
  });

  it('serves the JS client from Node with NODE_EXTRA_CA_CERTS', async () => {
    const client = pathToFileURL(join(SOURCE_DIR, 'clients/js/chat-client.js')).href;
    const script = `const { ChatClient } = await import(${JSON.stringify(client)});
      const c = new ChatClient(${JSON.stringify(url)});
      const r = await c.chatTurn('hello over tls');
      console.log(JSON.stringify(r));`;
    const out = await new Promise((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script],
        { env: { ...process.env, NODE_EXTRA_CA_CERTS: file('ca.crt') } },
        (error, stdout, stderr) => (error ? reject(new Error(stderr)) : resolve(stdout)));
    });
    const reply = JSON.parse(out);
    assert.equal(typeof reply.response, 'string');
    assert.ok(reply.response.length > 0);
  });

  it('re-reads the certificate on SIGHUP: new connections get it, open ones stay up', async () => {
    const before = await connectTls(port);
    assert.equal(before.getPeerCertificate().serialNumber, '1001');
    assert.match(await statusOver(before), /^HTTP\/1\.1 200 OK/);

    install('two');
    stack.gateway.child.kill('SIGHUP');
    await waitForLog(stack.gateway, /reloaded TLS certificate .*serial=2002/);

    const after = await connectTls(port);
    assert.equal(after.getPeerCertificate().serialNumber, '2002');
    assert.equal(after.getPeerCertificate().subject.CN, 'gateway two');
    assert.match(await statusOver(after), /^HTTP\/1\.1 200 OK/);
    // The connection opened before the reload goes on with its certificate.
    assert.match(await statusOver(before), /^HTTP\/1\.1 200 OK/);
    assert.equal(before.getPeerCertificate().serialNumber, '1001');
    before.destroy();
    after.destroy();
  });

  it('keeps the current certificate when a reload fails, and never logs the key', async () => {
    // Certificate two with key one: a pair that does not match.
    copyFileSync(file('one.key'), file('server.key.tmp'));
    renameSync(file('server.key.tmp'), file('server.key'));
    stack.gateway.child.kill('SIGHUP');
    await waitForLog(stack.gateway, /TLS reload failed, keeping the current certificate: --tls_key .* does not match/);
    const socket = await connectTls(port);
    assert.equal(socket.getPeerCertificate().serialNumber, '2002');
    assert.match(await statusOver(socket), /^HTTP\/1\.1 200 OK/);
    socket.destroy();
    const keyLines = readFileSync(file('one.key'), 'utf8').split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));
    for (const line of keyLines) assert.ok(!stack.gateway.log().includes(line));
    install('two');
  });

  it('SIGHUP does not stop the gateway', async () => {
    stack.gateway.child.kill('SIGHUP');
    await waitForLog(stack.gateway, /reloaded TLS certificate [^\n]*\n[\s\S]*reloaded TLS certificate /);
    assert.equal(stack.gateway.child.exitCode, null);
  });
});

describe('HTTPS configuration', () => {
  it('refuses --tls_cert without --tls_key (exit 2, naming the flag)', async () => {
    const { code, out } = await runGateway([`--tls_cert=${file('one.crt')}`]);
    assert.equal(code, 2);
    assert.match(out, /--tls_key must be set with --tls_cert/);
  });

  it('refuses an unreadable certificate file', async () => {
    const { code, out } = await runGateway([`--tls_cert=${file('missing.crt')}`, `--tls_key=${file('one.key')}`]);
    assert.equal(code, 2);
    assert.match(out, /--tls_cert cannot read '.*missing\.crt': No such file/);
  });

  it('refuses a key that does not match, without printing the key', async () => {
    const { code, out } = await runGateway([`--tls_cert=${file('one.crt')}`, `--tls_key=${file('two.key')}`]);
    assert.equal(code, 2);
    assert.match(out, /--tls_key '.*two\.key' does not match the certificate of --tls_cert/);
    assert.doesNotMatch(out, /PRIVATE KEY|MII/);
  });

  it('refuses a key file that is not a key, without printing it', async () => {
    const { code, out } = await runGateway([`--tls_cert=${file('one.crt')}`, `--tls_key=${file('one.crt')}`]);
    assert.equal(code, 2);
    assert.match(out, /--tls_key '.*one\.crt' is not an unencrypted PEM private key/);
    assert.doesNotMatch(out, /BEGIN|MII/);
  });
});

describe('SIGHUP without HTTPS', () => {
  let stack;
  before(async () => { stack = await startStack(); });
  after(async () => { await stack?.stop(); });

  it('is logged and does not stop the gateway', async () => {
    stack.gateway.child.kill('SIGHUP');
    await waitForLog(stack.gateway, /SIGHUP: not serving HTTPS/);
    const res = await fetch(`${stack.base}/v1/status`);
    assert.equal(res.status, 200);
  });
});

describe('HTTPS transport limits', () => {
  let stack;
  before(async () => {
    stack = await startStack({
      gatewayArgs: [`--tls_cert=${file('two.crt')}`, `--tls_key=${file('two.key')}`, '--header_timeout=300ms'],
    });
  });
  after(async () => { await stack?.stop(); });

  it('answers 408 over TLS when the head does not arrive in time', async () => {
    const socket = await connectTls(stack.gateway.port);
    const data = await new Promise((resolve) => {
      let got = '';
      socket.on('data', (d) => { got += d.toString(); });
      socket.on('close', () => resolve(got));
      socket.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n');
    });
    assert.match(data, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  });
});

describe('SIGHUP re-reads the backend TLS files', () => {
  let stack;
  before(async () => {
    // chat-server: certificate 'one' (signed by 'ca'), client certificates
    // signed by the CA in clientca.crt, which starts as 'ca'.
    replaceFile('ca.crt', 'clientca.crt');
    replaceFile('clientold.crt', 'backend.crt');
    replaceFile('clientold.key', 'backend.key');
    stack = await startStack({
      echoDelay: '20ms',
      serverArgs: [`--tls_cert=${file('one.crt')}`, `--tls_key=${file('one.key')}`,
        `--tls_client_ca=${file('clientca.crt')}`],
      gatewayArgs: [`--backend_ca=${file('ca.crt')}`, `--backend_client_cert=${file('backend.crt')}`,
        `--backend_client_key=${file('backend.key')}`, '--request_timeout=60s'],
    });
  });
  after(async () => { await stack?.stop(); });

  // A call that finds no backend waits for one until its deadline: 2 s here,
  // so the untrusted certificate's calls end well within the stream.
  const chat = (sessionId) => postJson(stack.base, '/v1/chat', { message: 'hi', session_id: sessionId },
    { 'grpc-timeout': '2S' });

  it('new calls use the new client certificate; a stream started before finishes', async () => {
    await waitForLog(stack.gateway, /backend TLS, client certificate subject=.*serial=3003/);
    assert.equal((await chat('before')).status, 200);

    // 400 words at 20 ms each: the stream outlives the reloads by seconds.
    const response = await postJson(stack.base, '/v1/chat:stream',
      { message: words(400), session_id: 'long' });
    assert.equal(response.status, 200);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let streamed = '';
    let finished = false;
    const firstEvent = (async () => {
      while (!streamed.includes('event: delta')) {
        const { done, value } = await reader.read();
        if (done) break;
        streamed += decoder.decode(value, { stream: true });
      }
    })();
    await firstEvent;
    assert.match(streamed, /event: delta/);
    const rest = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        streamed += decoder.decode(value, { stream: true });
      }
      finished = true;
    })();

    // A bad set (the key of another certificate): logged, old channel kept.
    replaceFile('clientnew.key', 'backend.key');
    stack.gateway.child.kill('SIGHUP');
    await waitForLog(stack.gateway,
      /backend TLS reload failed, keeping the current channel to chat-server: --backend_client_key: the key in '.*backend\.key' does not match/);
    assert.equal((await chat('kept')).status, 200);
    const keyLines = readFileSync(file('clientnew.key'), 'utf8').split('\n')
      .filter((l) => l.length > 20 && !l.startsWith('-----'));
    for (const line of keyLines) assert.ok(!stack.gateway.log().includes(line));

    // A good set that chat-server does not trust: new calls fail, so they
    // do go through the new channel.
    replaceFile('clientrogue.crt', 'backend.crt');
    replaceFile('clientrogue.key', 'backend.key');
    stack.gateway.child.kill('SIGHUP');
    await waitForLog(stack.gateway, /reloaded backend TLS files; new calls to .* use TLS, client certificate .*serial=5005/);
    assert.notEqual((await chat('rogue')).status, 200);

    // The rotation: chat-server trusts the new CA (only), then the gateway
    // takes the certificate it signed.
    replaceFile('newca.crt', 'clientca.crt');
    stack.server.child.kill('SIGHUP');
    await waitForLog(stack.server, /re-read the TLS certificate, key and client CA/);
    replaceFile('clientnew.crt', 'backend.crt');
    replaceFile('clientnew.key', 'backend.key');
    stack.gateway.child.kill('SIGHUP');
    await waitForLog(stack.gateway, /reloaded backend TLS files; new calls to .* use TLS, client certificate .*serial=4004/);
    const after = await chat('after');
    assert.equal(after.status, 200, await after.text());
    assert.equal(finished, false, 'the stream ended before the reloads: make it longer');

    // The stream opened before all this runs to its end on the old channel.
    await rest;
    assert.match(streamed, /event: done/);
    assert.doesNotMatch(streamed, /event: error/);
    assert.ok(streamed.includes('w399'));
    assert.doesNotMatch(stack.gateway.log(), /PRIVATE KEY/);
  });
});
