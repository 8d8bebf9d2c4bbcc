-- wrk script of `make bench`: the requests come from a file, one per line, prepared by
-- bench/suite.py (ids, tokens, bodies and capture signatures made before the clock runs):
--
--     METHOD <TAB> PATH <TAB> BODY (may be empty) <TAB> Header: value [<TAB> Header: value ...]
--
-- Environment: BENCH_REQUESTS (the file), BENCH_THREADS (wrk's -t), BENCH_STOP_AFTER
-- (optional: each thread stops after its share of that many responses and says so with
-- a file BENCH_STOP_DIR/thread-N; wrk itself runs its -d out unless sent SIGINT, which
-- bench/suite.py does once every thread has said so). Thread n sends
-- lines n, n + threads, n + 2 * threads, ... in turn, so no two threads send the same
-- line (a conversion of a lead happens once) and lines repeat only once all were sent.
-- done() prints one line `BENCHJSON {...}` that bench/suite.py reads.

local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
local stop_after = tonumber(os.getenv("BENCH_STOP_AFTER") or "0")
local counter = 0

function setup(thread)
   thread:set("thread_index", counter)
   counter = counter + 1
end

local function split(line)
   local fields = {}
   local start = 1
   while true do
      local tab = string.find(line, "\t", start, true)
      if not tab then
         table.insert(fields, string.sub(line, start))
         return fields
      end
      table.insert(fields, string.sub(line, start, tab - 1))
      start = tab + 1
   end
end

local prepared = {}
local next_index = 1
local responses = 0
local limit = 0

function init(args)
   local n = 0
   for line in io.lines(os.getenv("BENCH_REQUESTS")) do
      if n % threads == thread_index then
         local fields = split(line)
         local headers = {}
         for i = 4, #fields do
            local colon = string.find(fields[i], ":", 1, true)
            headers[string.sub(fields[i], 1, colon - 1)] = string.sub(fields[i], colon + 2)
         end
         local body = fields[3]
         if body == "" then body = nil end
         table.insert(prepared, wrk.format(fields[1], fields[2], headers, body))
      end
      n = n + 1
   end
   if stop_after > 0 then
      limit = math.ceil(stop_after / threads)
   end
end

function request()
   local r = prepared[next_index]
   next_index = next_index + 1
   if next_index > #prepared then next_index = 1 end
   return r
end

if stop_after > 0 then
   function response(status, headers, body)
      responses = responses + 1
      if responses == limit then
         local marker = io.open(os.getenv("BENCH_STOP_DIR") .. "/thread-" .. thread_index, "w")
         marker:close()
         wrk.thread:stop()
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
      '"non2xx": %d, "socket_errors": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      e.status, e.connect + e.read + e.write + e.timeout))
end
