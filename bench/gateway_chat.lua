-- wrk script: POST /chat over many sessions (one turn each, mostly), so the
-- figure is the gateway + server path, not one session's serialized queue.
local counter = 0
local prefix = tostring(os.time())
request = function()
  counter = counter + 1
  local body = string.format('{"message":"Hello there","session_id":"wrk-%s-%d"}',
                             prefix, counter)
  return wrk.format("POST", "/chat", {["Content-Type"] = "application/json"}, body)
end
