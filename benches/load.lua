-- wrk script for the loopback load test: GET /orders/42 with a bearer token from the
-- file in DHARMA_TOKENS: always the first (DHARMA_MODE=warm) or the next one, each used
-- once (DHARMA_MODE=fresh). Prints one machine-readable line at the end:
-- RESULT <requests/s> <p50 µs> <p99 µs> <non-2xx and socket errors> <requests>
local tokens = {}
local next_token = 0
local fresh = os.getenv("DHARMA_MODE") == "fresh"
local warm_request

function init(args)
  for line in io.lines(os.getenv("DHARMA_TOKENS")) do
    tokens[#tokens + 1] = line
  end
  warm_request = wrk.format("GET", "/orders/42", { ["Authorization"] = "Bearer " .. tokens[1] })
end

function request()
  if not fresh then
    return warm_request
  end
  next_token = next_token + 1
  local token = tokens[(next_token % #tokens) + 1]
  return wrk.format("GET", "/orders/42", { ["Authorization"] = "Bearer " .. token })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.1f %d %d %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout,
    summary.requests))
end
