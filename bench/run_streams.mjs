// N concurrent SSE streams through chat-gateway (POST /v1/chat:stream), each
// on its own connection and a new session, for bench/run.sh: the load of
// gateway_streams.mjs, on node:http (lighter than fetch: the client shares
// the machine's cores with what it measures). Prints one line:
//   RESULT n=.. ok=.. failed=.. wall_s=.. fb_p50_ms=.. fb_p99_ms=.. error=..
// First byte: the answer's first body bytes (its first delta event).
// Bounded: N streams, once. Usage: node bench/run_streams.mjs BASE_URL N
import http from 'node:http';

const [base, nArg] = process.argv.slice(2);
const n = Number(nArg ?? 1000);
const url = new URL('/v1/chat:stream', base);
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const tag = `${process.pid}-${Date.now()}`;

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function one(i) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const body = JSON.stringify({ message: 'Hello there', session_id: `streams-${tag}-${i}` });
    const req = http.request(url, {
      method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode}`));
        return;
      }
      let first = 0;
      let tail = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        if (!first) first = performance.now() - start;
        tail = (tail + chunk).slice(-4096);
      });
      res.on('end', () => {
        if (!tail.includes('event: done')) reject(new Error('no done event'));
        else resolve(first);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const t0 = performance.now();
const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => one(i)));
const wall = (performance.now() - t0) / 1000;
const ok = results.filter((r) => r.status === 'fulfilled').map((r) => r.value).sort((a, b) => a - b);
const failed = results.filter((r) => r.status === 'rejected');
const error = failed.length ? String(failed[0].reason?.message ?? failed[0].reason) : '';
console.log(`RESULT n=${n} ok=${ok.length} failed=${failed.length} wall_s=${wall.toFixed(3)} ` +
  `fb_p50_ms=${ok.length ? pct(ok, 50).toFixed(1) : 'nan'} ` +
  `fb_p99_ms=${ok.length ? pct(ok, 99).toFixed(1) : 'nan'} error="${error.replace(/\s+/g, '_')}"`);
