// Opens N concurrent SSE streams through chat-gateway (POST /v1/chat:stream),
// each on its own connection, and prints how many completed, the time to
// the first delta (p50 / p99) and the wall time. Bounded: N streams, once.
// Usage: node bench/gateway_streams.mjs BASE_URL N


const [base, nArg] = process.argv.slice(2);
const n = Number(nArg ?? 1000);
const words = Array.from({ length: 8 }, (_, i) => `w${i}`).join(' ');

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function one(i) {
  const start = performance.now();
  const res = await fetch(`${base}/v1/chat:stream`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message: words, session_id: `bench-${process.pid}-${i}` }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  const reader = res.body.getReader();
  let first = 0;
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!first) first = performance.now() - start;
    text += new TextDecoder().decode(value);
  }
  if (!text.includes('event: done')) throw new Error('no done event');
  return first;
}

const t0 = performance.now();
const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => one(i)));
const wall = (performance.now() - t0) / 1000;
const ok = results.filter((r) => r.status === 'fulfilled').map((r) => r.value).sort((a, b) => a - b);
const failed = results.filter((r) => r.status === 'rejected');
console.log(`streams: ${n} concurrent, ${ok.length} completed, ${failed.length} failed` +
  (failed.length ? ` (first error: ${failed[0].reason?.message})` : ''));
if (ok.length) {
  console.log(`first delta: p50 ${pct(ok, 50).toFixed(1)} ms, p99 ${pct(ok, 99).toFixed(1)} ms; wall ${wall.toFixed(2)} s`);
}
