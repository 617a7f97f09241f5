// Starts chat-server and chat-gateway on free loopback ports for the Node
// integration tests, and stops them afterwards. Binary paths come from the
// environment (tests/gateway/CMakeLists.txt sets them).
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SERVER = process.env.CHAT_SERVER_BINARY;
export const GATEWAY = process.env.CHAT_GATEWAY_BINARY;
export const SOURCE_DIR = process.env.CHAT_SOURCE_DIR;

// Runs `binary args`, resolving once it logs "listening on HOST:PORT".
export function startProcess(binary, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let log = '';
    let done = false;
    const onData = (data) => {
      log += data.toString();
      const m = /listening on (\S+):(\d+)/.exec(log);
      if (m && !done) {
        done = true;
        resolve({
          child,
          host: m[1],
          port: Number(m[2]),
          address: `${m[1]}:${m[2]}`,
          log: () => log,
          stop: () => stopProcess(child),
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      if (!done) {
        done = true;
        reject(new Error(`${binary} exited with ${code}:\n${log}`));
      }
    });
    setTimeout(() => {
      if (!done) {
        done = true;
        child.kill('SIGKILL');
        reject(new Error(`${binary} did not start listening:\n${log}`));
      }
    }, 60000).unref();  // Ends on the log line; generous for a loaded machine.
  });
}

// SIGTERM, then SIGKILL after 60 s (well past the gateway's 10 s default
// grace, plus a sanitizer's report at exit); resolves to the exit code (or the
// signal's name).
export function stopProcess(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      return resolve(child.exitCode ?? child.signalCode);
    }
    child.once('exit', (code, signal) => resolve(code ?? signal));
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 60000).unref();
  });
}

// chat-server (echo provider, in-memory store) and a gateway in front.
// `provider` and `serverEnv` replace the echo provider (e.g. with the fake
// upstream's Anthropic API). `embedded`: no chat-gateway; chat-server serves
// the REST routes on its own HTTP port (--http_listen), as scripts/run.sh
// starts it.
export async function startStack({
  echoDelay = '1ms', gatewayArgs = [], serverArgs = [], provider = 'echo', serverEnv = {},
  embedded = false,
} = {}) {
  if (embedded && gatewayArgs.length > 0) {
    throw new Error('gatewayArgs need chat-gateway: not with embedded');
  }
  const dir = mkdtempSync(join(tmpdir(), 'chatd-gw-'));
  const server = await startProcess(SERVER, [
    '--listen=127.0.0.1:0',
    `--provider=${provider}`,
    `--store=sqlite:${join(dir, 'chat.db')}`,
    `--echo_delay=${echoDelay}`,
    '--shutdown_grace=1s',
    ...(embedded ? ['--http_listen=127.0.0.1:0'] : []),
    ...serverArgs,
  ], serverEnv);
  if (embedded) {
    // Logged before "listening on", which startProcess waited for.
    const m = /REST\/JSON on (http:\/\/127\.0\.0\.1:\d+)/.exec(server.log());
    if (!m) {
      await server.stop();
      throw new Error(`no HTTP port in chat-server's log:\n${server.log()}`);
    }
    return {
      server,
      base: m[1],
      stop: async () => {
        const serverCode = await server.stop();
        if (serverCode !== 0) throw new Error(`chat-server exited with ${serverCode}:\n${server.log()}`);
      },
    };
  }
  let gateway;
  try {
    gateway = await startGateway([`--backend=${server.address}`, ...gatewayArgs]);
  } catch (e) {
    await server.stop();
    throw e;
  }
  return {
    server,
    gateway,
    base: `http://127.0.0.1:${gateway.port}`,
    // Both must stop cleanly: a crash or a sanitizer report at shutdown
    // fails the suite.
    stop: async () => {
      const gatewayCode = await gateway.stop();
      const serverCode = await server.stop();
      if (gatewayCode !== 0) throw new Error(`chat-gateway exited with ${gatewayCode}:\n${gateway.log()}`);
      if (serverCode !== 0) throw new Error(`chat-server exited with ${serverCode}:\n${server.log()}`);
    },
  };
}

export function startGateway(args) {
  return startProcess(GATEWAY, ['--listen=127.0.0.1:0', ...args]);
}

export async function postJson(base, path, body, headers = {}) {
  return fetch(base + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

// Calls `probe` (maybe async) every 20 ms until it returns something truthy,
// for at most `timeoutMs`; its last result. For a condition only another
// process shows (its counters, its log, a title made after the answer):
// the wait ends on the condition, and the bound only matters when a test
// fails, so it is generous for a loaded machine.
export async function poll(probe, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// Per-minute limits count in UTC minutes: a test that needs several
// requests inside one minute starts them at least 20 s before its end.
export async function waitForRoomInTheMinute() {
  const into = Date.now() % 60000;
  if (into > 40000) await new Promise((r) => setTimeout(r, 60000 - into));
}

// A message of `n` words: the echo provider streams one word per delta.
export function words(n) {
  return Array.from({ length: n }, (_, i) => `w${i}`).join(' ');
}
