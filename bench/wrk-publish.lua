-- wrk script for W3: POST one publish per request over keep-alive.
-- HB_WRK_PATH, HB_WRK_BODY and (hubbub) HB_WRK_AUTH come from bench/run.sh.
wrk.method = "POST"
wrk.path = os.getenv("HB_WRK_PATH")
wrk.body = os.getenv("HB_WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("HB_WRK_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = "Bearer " .. auth end

-- one JSON line, like hb_loadgen
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read +
              summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"tool":"wrk","requests":%d,"seconds":%.3f,"req_per_s":%.1f,"errors":%d,"non2xx":%d,' ..
    '"lat_ms":{"p50":%.2f,"p90":%.2f,"p99":%.2f,"max":%.2f}}\n',
    summary.requests, secs, summary.requests / secs, bad, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
