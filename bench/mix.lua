-- wrk request mix for bench/make_capture.sh: microservice-like JSON traffic.
-- Rotates over small/medium/large JSON documents, order lookups with a query
-- token and a bearer header (so privacy code paths run), and JSON POSTs.
local paths = {
  "/api/small", "/api/medium", "/api/large", "/orders/1234?token=bench-secret",
  "/orders/1235", "/users/42", "/catalog/items", "/health", "/orders/9999",
}
local n = 0
request = function()
  n = n + 1
  -- start from wrk.headers so -H (e.g. "Connection: close") still applies:
  -- wrk.format uses the table it is given instead of wrk.headers
  local hdrs = {}
  for k, v in pairs(wrk.headers) do hdrs[k] = v end
  hdrs["Authorization"] = "Bearer bench.fake.token"
  hdrs["Accept"] = "application/json"
  if n % 7 == 0 then
    hdrs["Content-Type"] = "application/json"
    return wrk.format("POST", "/payments", hdrs, '{"order_id":1234,"amount_cents":4999}')
  end
  return wrk.format("GET", paths[(n % #paths) + 1], hdrs)
end
