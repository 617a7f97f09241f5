-- wrk script for bench/run.sh: POST /chat, every request a new session
-- (unique across wrk's threads and across runs), and one machine-readable
-- line at the end with the figures run.sh reads. UPSTREAM=1 posts the
-- Anthropic request chat-server sends straight to the fake upstream's
-- /v1/messages instead, to measure the upstream's own latency.
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

local counter = 0
local prefix = os.getenv("RUN_TAG") or tostring(os.time())
local upstream = os.getenv("UPSTREAM") == "1"

local chat_headers = {["Content-Type"] = "application/json"}
-- What the anthropic provider posts for one "Hello there" turn (nlohmann
-- orders the keys), with its headers.
local upstream_headers = {
  ["x-api-key"] = "bench",
  ["anthropic-version"] = "2023-06-01",
  ["content-type"] = "application/json",
  ["accept"] = "text/event-stream",
}
local upstream_body = '{"max_tokens":1024,"messages":[{"content":"Hello there",' ..
  '"role":"user"}],"model":"claude-sonnet-4-6","stream":true,' ..
  '"system":"You are a helpful AI assistant."}'

request = function()
  if upstream then
    return wrk.format("POST", "/v1/messages", upstream_headers, upstream_body)
  end
  counter = counter + 1
  local body = string.format('{"message":"Hello there","session_id":"wrk-%s-%d-%d"}',
                             prefix, id or 0, counter)
  return wrk.format("POST", "/chat", chat_headers, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "status_errors=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
