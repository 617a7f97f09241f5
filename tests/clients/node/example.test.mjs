// clients/node: example.mjs (grpc-js, proto-loader) against a real
// chat-server (tests/clients/example_harness.mjs has the strategy). Its
// packages come from clients/node/package-lock.json (`npm ci` there;
// scripts/test.sh does it).
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { SOURCE_DIR, exampleSuite } from '../example_harness.mjs';

const MODULES = join(SOURCE_DIR, 'clients/node/node_modules');

exampleSuite({
  name: 'clients/node/example.mjs',
  missing: () => {
    for (const name of ['@grpc/grpc-js', '@grpc/proto-loader']) {
      if (!existsSync(join(MODULES, name, 'package.json'))) {
        return `${name} is not installed: run (cd clients/node && npm ci)`;
      }
    }
    return '';
  },
  command: process.execPath,
  args: [join(SOURCE_DIR, 'clients/node/example.mjs')],
  env: {},
});
