-- wrk script: POST /chat over many sessions (one turn each, mostly), so the
-- figure is the gateway + server path, not one session's serialized queue.
-- With CHAT_API_KEY set, every request carries it (`Authorization: Bearer`).
local counter = 0
local prefix = tostring(os.time())
local headers = {["Content-Type"] = "application/json"}
local key = os.getenv("CHAT_API_KEY")
if key ~= nil and key ~= "" then
  headers["Authorization"] = "Bearer " .. key
end
request = function()
  counter = counter + 1
  local body = string.format('{"message":"Hello there","session_id":"wrk-%s-%d"}',
                             prefix, counter)
  return wrk.format("POST", "/chat", headers, body)
end
