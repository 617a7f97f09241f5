// Two chat-server replicas on one PostgreSQL behind one gateway: 50 sessions
// x 20 turns sent concurrently through the gateway (each session's turns in
// order, round-robin across the replicas), then every history read back
// whole and in order. Needs CHAT_TEST_POSTGRES_DSN (scripts/test.sh starts a
// cluster); with CHAT_TEST_REQUIRE_POSTGRES=1 its absence fails the test.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { SERVER, startProcess, startGateway, postJson } from './harness.mjs';

const DSN = process.env.CHAT_TEST_POSTGRES_DSN;
if (!DSN && process.env.CHAT_TEST_REQUIRE_POSTGRES === '1') {
  throw new Error('CHAT_TEST_REQUIRE_POSTGRES=1 but CHAT_TEST_POSTGRES_DSN is unset');
}

// A fresh schema, so this test starts from an empty database.
function freshStore() {
  const schema = `gw_${process.pid}_${Date.now()}`;
  execFileSync('psql', [DSN, '-q', '-c', `CREATE SCHEMA ${schema}`]);
  return `postgres:${DSN} options='-c search_path=${schema}'`;
}

describe('two replicas, one PostgreSQL, one gateway', { skip: DSN ? false : 'no CHAT_TEST_POSTGRES_DSN' }, () => {
  let replicas = [];
  let gateway;
  let base;
  before(async () => {
    const store = freshStore();
    for (let i = 0; i < 2; i++) {
      replicas.push(await startProcess(SERVER, [
        '--listen=127.0.0.1:0', '--provider=echo', '--echo_delay=0s',
        `--store=${store}`, '--shutdown_grace=1s',
      ]));
    }
    gateway = await startGateway([`--backend=${replicas.map((r) => r.address).join(',')}`]);
    base = `http://127.0.0.1:${gateway.port}`;
  });
  after(async () => {
    const codes = [await gateway?.stop(), ...(await Promise.all(replicas.map((r) => r.stop())))];
    assert.deepEqual(codes, [0, 0, 0], 'every process exits 0 on SIGTERM');
  });

  it('keeps 50 concurrent conversations of 20 turns whole and in order', async () => {
    const SESSIONS = 50;
    const TURNS = 20;
    const failures = [];
    await Promise.all(Array.from({ length: SESSIONS }, async (_, s) => {
      for (let t = 0; t < TURNS; t++) {
        const res = await postJson(base, '/chat', {
          message: `session ${s} turn ${t}`, session_id: `gw-${s}`,
        });
        const body = await res.json();
        if (res.status !== 200 || body.turn_count !== t + 1) {
          failures.push({ s, t, status: res.status, body });
        }
      }
    }));
    assert.deepEqual(failures, []);

    for (let s = 0; s < SESSIONS; s++) {
      const res = await fetch(`${base}/history/gw-${s}`);
      assert.equal(res.status, 200);
      const history = await res.json();
      assert.equal(history.turn_count, TURNS);
      assert.equal(history.messages.length, 2 * TURNS);
      history.messages.forEach((m, i) => {
        assert.equal(m.role, i % 2 === 0 ? 'user' : 'assistant');
        if (i % 2 === 0) {
          assert.equal(m.content, `session ${s} turn ${i / 2}`);
        } else {
          // Each reply answers the message just before it.
          assert.ok(m.content.includes(`You said: "${history.messages[i - 1].content}"`), m.content);
        }
      });
    }
    const stats = await (await fetch(`${base}/stats`)).json();
    assert.equal(stats.total_sessions, SESSIONS);
    assert.equal(stats.total_messages, SESSIONS * TURNS * 2);
  });
});
