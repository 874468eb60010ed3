-- wrk script for http_bench.py: stop after a request count, count answers by status,
-- and time the phase itself.
--
-- Why: wrk bounds a run by time only (-d). Each thread stops after COUNT answers
-- (wrk ... -- COUNT; http_bench runs one thread, so COUNT is the phase's total) and
-- prints "BENCH-LIMIT", so that http_bench.py ends wrk with SIGINT instead of idling
-- until -d runs out. wrk's own duration then includes that idle wait, so each thread
-- times first-start to last-answer itself with a monotonic clock (LuaJIT ffi), and
-- done() reports that.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  limit = tonumber(args[1])
  answered = 0
  statuses = {}
  started_us = now_us()
  last_us = started_us
end

function response(status, headers, body)
  answered = answered + 1
  last_us = now_us()
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if answered >= limit then
    io.stdout:write("BENCH-LIMIT\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local first, last, total = nil, 0, {}
  for _, thread in ipairs(threads) do
    local s = thread:get("started_us")
    if first == nil or s < first then first = s end
    last = math.max(last, thread:get("last_us"))
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  io.stdout:write(string.format("BENCH-SUMMARY requests=%d elapsed_us=%d p50_us=%d p99_us=%d "
      .. "connect=%d read=%d write=%d timeout=%d\n",
      summary.requests, last - first, latency:percentile(50), latency:percentile(99),
      summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  for status, n in pairs(total) do
    io.stdout:write(string.format("BENCH-STATUS %s %d\n", status, n))
  end
end
