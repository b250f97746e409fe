-- wrk script for bench/rewrap.sh: POST /v1/rewrap with a session token and a fixed body.
--
--   wrk -s bench/rewrap.lua URL -- BODY_FILE SESSION_TOKEN
--
-- Every request is the same rewrap (one message, one signed-in recipient, one client key);
-- the key service still does all of its work for each one (session, revocation, license,
-- durable audit record, HPKE seal). At the end it prints one machine-readable line,
--   RESULT requests=N duration_s=S non2xx=N socket_errors=N p50_ms=X p90_ms=X p99_ms=X max_ms=X
-- which bench/rewrap.sh parses (wrk's own "--latency" table is printed as well).

local body_file, token

function init(args)
  body_file = args[1]
  token = args[2]
  if body_file == nil or token == nil then
    error("usage: wrk -s rewrap.lua URL -- BODY_FILE SESSION_TOKEN")
  end
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.path = "/v1/rewrap"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Sealpost-Client"] = "1"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f non2xx=%d socket_errors=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, summary.duration / 1e6, e.status, socket_errors,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
