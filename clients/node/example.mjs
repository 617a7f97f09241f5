#!/usr/bin/env node
// Talks to chat-server over gRPC from Node: @grpc/grpc-js for the calls,
// @grpc/proto-loader reading proto/chat/v1/chat.proto at run time (no
// generated code).
//
// One session, three calls: Chat (the whole reply at once), ChatStream (the
// reply printed piece by piece as it arrives) and GetHistory (the stored
// turns).
//
//   (cd clients/node && npm ci)
//   node clients/node/example.mjs --server localhost:50051 "Hello"
//
// The server comes from --server, else CHAT_SERVER, else localhost:50051. An
// API key in CHAT_API_KEY (or --api_key) is sent as `authorization: Bearer
// KEY`. Exit status: 0 when every call succeeded, 1 when one failed (its
// gRPC status is printed on stderr), 2 for bad usage.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

// Every call gives up after this long rather than waiting on a dead server.
const TIMEOUT_MS = 30_000;
// The repository's proto/ folder: chat.proto imports google/api/ from it.
const PROTO_DIR = fileURLToPath(new URL('../../proto', import.meta.url));

const USAGE = `usage: example.mjs [--server HOST:PORT] [--api_key KEY] [--session ID] [MESSAGE [FOLLOW_UP]]`;

function parseCommandLine() {
  try {
    const { values, positionals } = parseArgs({
      options: {
        server: { type: 'string', default: process.env.CHAT_SERVER || 'localhost:50051' },
        // Prefer CHAT_API_KEY: a flag shows in the process list.
        api_key: { type: 'string', default: process.env.CHAT_API_KEY || '' },
        session: { type: 'string', default: `example-${randomUUID().replaceAll('-', '').slice(0, 12)}` },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: true,
    });
    if (values.help) {
      console.log(USAGE);
      process.exit(0);
    }
    if (positionals.length > 2) throw new Error('at most two messages');
    return {
      ...values,
      message: positionals[0] ?? 'Hello from Node!',
      followUp: positionals[1] ?? 'Now say it as a stream.',
    };
  } catch (e) {
    console.error(`example.mjs: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
}

// keepCase: fields keep their proto names (session_id, turn_count), as on
// the wire; oneofs: a stream event says which of delta/done it holds.
function loadChatService() {
  const definition = protoLoader.loadSync('chat/v1/chat.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).chat.v1.ChatService;
}

const deadline = () => ({ deadline: Date.now() + TIMEOUT_MS });

// grpc-js answers by callback; one promise per unary call.
function unary(client, method, request, metadata) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, deadline(), (err, response) =>
      err ? reject(err) : resolve(response));
  });
}

function describe(r) {
  return `model=${r.model} stop_reason=${r.stop_reason} turn=${r.turn_count} ` +
    `tokens in=${r.usage.input_tokens} out=${r.usage.output_tokens}`;
}

async function main() {
  const args = parseCommandLine();
  const ChatService = loadChatService();
  // Plain text: for a server behind TLS pass
  // grpc.credentials.createSsl(rootCertificates) instead.
  const client = new ChatService(args.server, grpc.credentials.createInsecure());
  // Metadata travels with each call; the server reads the key from it.
  const metadata = new grpc.Metadata();
  if (args.api_key) metadata.set('authorization', `Bearer ${args.api_key}`);
  const session_id = args.session;

  try {
    console.log(`session ${session_id}`);

    // 1. Unary: the reply arrives whole, after the turn was stored.
    console.log(`> ${args.message}`);
    const reply = await unary(client, 'Chat', { message: args.message, session_id }, metadata);
    console.log(`chat: ${reply.response}`);
    console.log(`  ${describe(reply)}`);

    // 2. Server streaming: deltas as the model writes them, then one `done`
    // carrying what ChatResponse carries.
    console.log(`> ${args.followUp}`);
    process.stdout.write('stream: ');
    let deltas = 0;
    let done = null;
    const call = client.ChatStream({ message: args.followUp, session_id }, metadata, deadline());
    for await (const event of call) {
      if (event.event === 'delta') {
        deltas += 1;
        process.stdout.write(event.delta.text);
      } else if (event.event === 'done') {
        done = event.done;
      }
    }
    process.stdout.write('\n');
    if (done === null) throw new Error('the stream ended without its `done` event');
    console.log(`  deltas=${deltas} ${describe(done)}`);

    // 3. The stored history: both turns, oldest first.
    const history = await unary(client, 'GetHistory', { session_id }, metadata);
    console.log(`history: ${history.turn_count} turns, system prompt "${history.system_prompt}"`);
    for (const m of history.messages) console.log(`  ${m.role}: ${m.content}`);
  } finally {
    client.close();
  }
}

try {
  await main();
} catch (e) {
  // A failed call carries its status, e.g. UNAVAILABLE when nothing listens,
  // UNAUTHENTICATED without a valid key.
  const status = e.code !== undefined && grpc.status[e.code] ? `${grpc.status[e.code]}: ${e.details}` : e.message;
  console.error(`\nexample.mjs: ${status}`);
  process.exitCode = 1;
}
