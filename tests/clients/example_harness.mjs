// The stub examples (clients/python/example.py, clients/node/example.mjs)
// against a real chat-server on loopback, one suite for each language.
//
// Strategy: each example runs as a user runs it, as a child process, and
// its transcript is checked line by line against what the echo provider
// answers, which is exact: the unary reply, the streamed reply (the deltas
// as printed, joined, equal to the answer the server stored, and one delta
// per word), and the history holding both turns. That the deltas are printed
// as they arrive is observed on the pipe: the streamed line is seen
// incomplete in one chunk of output before its end arrives (the server waits
// 20 ms between deltas). The API key is tested on a second server whose store
// holds a key (`chat-server keys create`), so a call without it is refused:
// the example must then exit 1 with the status on stderr.
//
// A missing runtime (python3-grpcio, clients/node/node_modules) skips the
// suite, or fails it under CHAT_TEST_REQUIRE_CLIENT_EXAMPLES=1, as CI sets.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { SERVER, SOURCE_DIR, startProcess } from '../gateway/harness.mjs';

export { SOURCE_DIR };

const REQUIRED = process.env.CHAT_TEST_REQUIRE_CLIENT_EXAMPLES === '1';
const ECHO_DELAY = '20ms';

// Runs `command args` to its exit with `env` added (and CHAT_SERVER /
// CHAT_API_KEY cleared unless `env` sets them, and PYTHONUNBUFFERED too). Resolves to its exit code,
// stdout, stderr, and whether the streamed line was ever seen incomplete.
export function run(command, args, env = {}, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const clean = { ...process.env };
    delete clean.CHAT_SERVER;
    delete clean.CHAT_API_KEY;
    // As a user's shell has it: the example must flush its deltas itself.
    delete clean.PYTHONUNBUFFERED;
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...clean, ...env },
    });
    let stdout = '';
    let stderr = '';
    let partialStream = false;
    child.stdout.on('data', (d) => {
      stdout += d;
      const start = stdout.indexOf('\nstream: ');
      if (start < 0) return;
      const line = stdout.slice(start + '\nstream: '.length);
      if (line.length > 0 && !line.includes('\n')) partialStream = true;
    });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not exit:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, partialStream });
    });
  });
}

// The echo provider's answers to a session's first and second message.
export function firstReply(m1) {
  return `You said: "${m1}". This is the start of our conversation.`;
}
export function secondReply(m1, m2) {
  return `You said: "${m2}". Before that you said: "${m1}". This is message 2 of our conversation.`;
}

// The value of the one line starting with `prefix`.
function lineAfter(stdout, prefix) {
  const lines = stdout.split('\n').filter((l) => l.startsWith(prefix));
  assert.equal(lines.length, 1, `one line starting with '${prefix}' in:\n${stdout}`);
  return lines[0].slice(prefix.length);
}

// Checks a whole transcript of session `session` with messages m1 then m2.
export function checkTranscript({ stdout, partialStream }, session, m1, m2) {
  assert.equal(lineAfter(stdout, 'session '), session);
  assert.equal(lineAfter(stdout, 'chat: '), firstReply(m1));
  assert.match(lineAfter(stdout, '  model='), /^echo stop_reason=end_turn turn=1 tokens in=\d+ out=\d+$/);

  const streamed = lineAfter(stdout, 'stream: ');
  const expected = secondReply(m1, m2);
  assert.equal(streamed, expected);
  // The echo provider streams one word (with its trailing space) per delta.
  const done = lineAfter(stdout, '  deltas=');
  assert.match(done, /^\d+ model=echo stop_reason=end_turn turn=2 tokens in=\d+ out=\d+$/);
  assert.equal(Number(done.split(' ')[0]), expected.split(' ').length);
  assert.ok(partialStream, `the streamed line was printed whole, not as the deltas arrived:\n${stdout}`);

  assert.equal(lineAfter(stdout, 'history: '),
    '2 turns, system prompt "You are a helpful AI assistant."');
  const messages = stdout.split('\n')
    .filter((l) => /^ {2}(user|assistant): /.test(l))
    .map((l) => l.trim());
  assert.deepEqual(messages, [
    `user: ${m1}`,
    `assistant: ${firstReply(m1)}`,
    `user: ${m2}`,
    // The answer the server stored is the one the deltas spelled out.
    `assistant: ${streamed}`,
  ]);
}

// A loopback port nobody listens on (it was free a moment ago).
function deadPort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startServer(store) {
  return startProcess(SERVER, [
    '--listen=127.0.0.1:0', '--provider=echo', `--store=${store}`,
    `--echo_delay=${ECHO_DELAY}`, '--shutdown_grace=1s',
  ]);
}

// Creates an API key on `store` with `chat-server keys create`; the key.
async function createKey(store) {
  const { code, stdout, stderr } = await run(SERVER, [
    'keys', 'create', `--store=${store}`, '--tenant=examples', '--name=stubs',
  ]);
  assert.equal(code, 0, stderr);
  return stdout.trim();
}

async function stopServer(server) {
  const code = await server.stop();
  assert.equal(code, 0, `chat-server exited with ${code}:\n${server.log()}`);
}

// The suite for one example. `example` is { name, missing, command, args,
// env, setUp }: `missing()` returns why the example cannot run here, or ''
// when it can; `setUp()` (optional) runs once before any test and may fill
// `env`; the example runs as `command [...args, ...its own args]` with `env`
// added.
export function exampleSuite(example) {
  const why = example.missing();
  if (why) {
    if (REQUIRED) {
      it(`has what ${example.name} needs (CHAT_TEST_REQUIRE_CLIENT_EXAMPLES=1)`, () => {
        assert.fail(why);
      });
      return;
    }
    describe(example.name, { skip: why }, () => {});
    return;
  }

  const exec = (args, env = {}) => run(example.command, [...example.args, ...args],
    { ...example.env, ...env });

  if (example.setUp) before(() => example.setUp());

  describe(`${example.name} against chat-server`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatd-examples-'));
    let open;
    before(async () => {
      open = await startServer(`sqlite:${join(dir, 'open.db')}`);
    });
    after(async () => {
      if (open) await stopServer(open);
      rmSync(dir, { recursive: true, force: true });
    });

    it('chats, streams and reads the history, server from CHAT_SERVER', async () => {
      const m1 = 'Hello there';
      const m2 = 'Tell me once more, word by word';
      const result = await exec(['--session', 'env-session', m1, m2],
        { CHAT_SERVER: open.address });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      checkTranscript(result, 'env-session', m1, m2);
    });

    it('takes the server from --server over CHAT_SERVER, and its default messages', async () => {
      const dead = await deadPort();
      const result = await exec(['--server', open.address, '--session', 'flag-session'],
        { CHAT_SERVER: `127.0.0.1:${dead}` });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      // The default messages, whatever they say, make the same two turns.
      const prompts = [...result.stdout.matchAll(/^> (.*)$/gm)].map((m) => m[1]);
      assert.equal(prompts.length, 2, result.stdout);
      checkTranscript(result, 'flag-session', ...prompts);
    });

    it('exits 1 with UNAVAILABLE when nothing listens', async () => {
      const dead = await deadPort();
      const result = await exec([], { CHAT_SERVER: `127.0.0.1:${dead}` });
      assert.equal(result.code, 1, result.stdout + result.stderr);
      assert.match(result.stderr, /UNAVAILABLE/);
      assert.doesNotMatch(result.stdout, /^chat: /m);
    });
  });

  describe(`${example.name} with an API key`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatd-examples-key-'));
    const store = `sqlite:${join(dir, 'keyed.db')}`;
    let keyed;
    let key;
    before(async () => {
      key = await createKey(store);
      assert.match(key, /\S{16,}/);
      keyed = await startServer(store);
    });
    after(async () => {
      if (keyed) await stopServer(keyed);
      rmSync(dir, { recursive: true, force: true });
    });

    it('sends CHAT_API_KEY as a Bearer token', async () => {
      const m1 = 'Keyed hello';
      const m2 = 'Keyed stream';
      const result = await exec(['--session', 'keyed-session', m1, m2],
        { CHAT_SERVER: keyed.address, CHAT_API_KEY: key });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      checkTranscript(result, 'keyed-session', m1, m2);
      assert.ok(!result.stdout.includes(key) && !result.stderr.includes(key), 'the key was printed');
    });

    it('exits 1 with UNAUTHENTICATED without a key, or with a wrong one', async () => {
      for (const env of [{}, { CHAT_API_KEY: `${key}x` }]) {
        const result = await exec([], { CHAT_SERVER: keyed.address, ...env });
        assert.equal(result.code, 1, result.stdout + result.stderr);
        assert.match(result.stderr, /UNAUTHENTICATED/);
        assert.doesNotMatch(result.stdout, /^chat: /m);
      }
    });
  });
}
