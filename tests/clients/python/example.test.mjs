// clients/python: generate.sh makes the stubs with Debian's protoc and
// grpc_python_plugin into a fresh folder, then example.py runs against a
// real chat-server (tests/clients/example_harness.mjs has the strategy).
// The interpreter is CHAT_TEST_PYTHON (tests/clients/python/CMakeLists.txt
// prefers Debian's, where python3-grpcio is installed).
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

import { SOURCE_DIR, exampleSuite, run } from '../example_harness.mjs';

const PYTHON = process.env.CHAT_TEST_PYTHON || 'python3';
const env = {};

exampleSuite({
  name: 'clients/python/example.py',
  missing: () => {
    const probe = spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { encoding: 'utf8' });
    if (probe.error) return `${PYTHON}: ${probe.error.message}`;
    if (probe.status !== 0) {
      return `${PYTHON} cannot import grpc and google.protobuf ` +
        `(apt-get install python3-grpcio python3-protobuf): ${probe.stderr.trim().split('\n').pop()}`;
    }
    return '';
  },
  command: PYTHON,
  args: [join(SOURCE_DIR, 'clients/python/example.py')],
  env,
  // Fresh stubs, so a stale clients/python/gen/ cannot stand in for them:
  // PYTHONPATH is searched before the example's own gen/.
  setUp: async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'chatd-pystubs-')), 'gen');
    const result = await run('bash', [join(SOURCE_DIR, 'clients/python/generate.sh'), out]);
    assert.equal(result.code, 0, result.stderr);
    env.PYTHONPATH = out;
  },
});
