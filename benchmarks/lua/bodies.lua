-- wrk script: POST each line of a file as the body of one request, in order (or round-robin).
-- Arguments after `--`: path, bodies file, cycle ("1" reuses lines), then headers as "name: value".
-- done() prints one JSON object: counts, errors, latency percentiles (µs), and whether lines ran out.
local path, bodies, cycle, headers = "/", {}, false, {}
local threads = {}
used, exhausted = 0, false

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  path = args[1]
  for line in io.lines(args[2]) do
    bodies[#bodies + 1] = line
  end
  cycle = args[3] == "1"
  for i = 4, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
end

function request()
  used = used + 1
  local body
  if cycle then
    body = bodies[(used - 1) % #bodies + 1]
  else
    body = bodies[used]
  end
  if body == nil then
    exhausted = true
    body = "{}"
  end
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local total, ran_out = 0, false
  for _, thread in ipairs(threads) do
    total = total + (thread:get("used") or 0)
    ran_out = ran_out or thread:get("exhausted") == true
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, "used": %d, "exhausted": %s}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    total, tostring(ran_out)))
end
