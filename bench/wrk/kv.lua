-- wrk script for bench/kv_http.py and bench/listing.py: builds each request and prints one JSON summary line.
--
-- The request shape comes from the environment, so one script serves every row:
--   KV_BENCH_MODE   kv-get | kv-put | kv-cas | kv-list | plain-get | etcd-get | etcd-put
--   KV_BENCH_PATH   request path (kv-put, kv-cas: up to the key; others: the full path)
--   KV_BENCH_TOKEN  bearer token for the kvsite API
--   KV_BENCH_KEYS   how many distinct keys the writes cycle through
--   KV_BENCH_VALUE  the value written by the PUT modes
--   KV_BENCH_CONTENT_TYPE  Content-Type of the PUT modes (default application/octet-stream; the
--                   items API takes application/json only)
-- kv-cas: PUT with If-Match of the revision the previous answer returned, to a key of the
--   thread's own (cas-<thread>); run one connection per thread (wrk's response() is per thread).
-- kv-list: GET KV_BENCH_PATH?<KV_BENCH_QUERY>, "{n}" in it replaced by a random integer in
--   [0, KV_BENCH_RANGE); with KV_BENCH_CURSOR (same "{n}"), "&cursor=" and that key, encoded
--   as the API's cursors are (URL-safe base64 without padding).

local mode = os.getenv("KV_BENCH_MODE") or "plain-get"
local path = os.getenv("KV_BENCH_PATH") or "/"
local token = os.getenv("KV_BENCH_TOKEN") or ""
local key_count = tonumber(os.getenv("KV_BENCH_KEYS") or "1000")
local value = os.getenv("KV_BENCH_VALUE") or "value"
local list_query = os.getenv("KV_BENCH_QUERY") or ""
local list_range = tonumber(os.getenv("KV_BENCH_RANGE") or "1")
local list_cursor = os.getenv("KV_BENCH_CURSOR")
local content_type = os.getenv("KV_BENCH_CONTENT_TYPE") or "application/octet-stream"

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Standard base64 with padding, for etcd's JSON gateway (keys and values are bytes there).
local function base64(data)
  return ((data:gsub(".", function(char)
    local byte, bits = char:byte(), ""
    for i = 8, 1, -1 do
      bits = bits .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0")
    end
    return bits
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(bits)
    if #bits < 6 then
      return ""
    end
    local index = 0
    for i = 1, 6 do
      index = index + (bits:sub(i, i) == "1" and 2 ^ (6 - i) or 0)
    end
    return b64chars:sub(index + 1, index + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

-- setup() runs in wrk's main Lua state; thread:set() gives each thread a global thread_id.
local threads_started = 0
local counter = 0

function setup(thread)
  threads_started = threads_started + 1
  thread:set("thread_id", threads_started)
end

local function next_key()
  -- Each thread walks its own offset through the key space, so threads rarely write
  -- the same key at the same moment (they all share the bucket lock regardless).
  counter = counter + 1
  return string.format("k%05d", ((thread_id or 0) * 7919 + counter) % key_count)
end

local function prebuilt(method, headers, body)
  local request = wrk.format(method, path, headers, body)
  return function()
    return request
  end
end

-- The key the current thread's CAS requests update, and its last known revision.
local cas_revision = nil

local function cursor_for(key)
  return (base64(key):gsub("%+", "-"):gsub("/", "_"):gsub("=", ""))
end

local builders = {
  ["plain-get"] = function()
    return prebuilt("GET", {}, nil)
  end,
  ["kv-get"] = function()
    return prebuilt("GET", { ["Authorization"] = "Bearer " .. token }, nil)
  end,
  ["kv-put"] = function()
    local headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = content_type }
    return function()
      return wrk.format("PUT", path .. next_key(), headers, value)
    end
  end,
  ["kv-cas"] = function()
    local key = string.format("cas-%03d", thread_id or 0)
    local auth = "Bearer " .. token
    return function()
      local headers = { ["Authorization"] = auth, ["Content-Type"] = content_type }
      if cas_revision then
        headers["If-Match"] = cas_revision
      end
      return wrk.format("PUT", path .. key, headers, value)
    end
  end,
  ["kv-list"] = function()
    -- Prebuilt, so the load generator spends nothing per request on encoding.
    math.randomseed(os.time() * 1000 + (thread_id or 0))
    local headers = { ["Authorization"] = "Bearer " .. token }
    local requests = {}
    for i = 1, 2000 do
      local n = tostring(math.random(0, list_range - 1))
      local query = list_query:gsub("{n}", n)
      if list_cursor then
        query = query .. "&cursor=" .. cursor_for((list_cursor:gsub("{n}", n)))
      end
      requests[i] = wrk.format("GET", path .. "?" .. query, headers, nil)
    end
    return function()
      return requests[math.random(1, #requests)]
    end
  end,
  ["etcd-get"] = function()
    return prebuilt("POST", { ["Content-Type"] = "application/json" }, '{"key":"' .. base64("bench/k00000") .. '"}')
  end,
  ["etcd-put"] = function()
    local headers = { ["Content-Type"] = "application/json" }
    local encoded_value = base64(value)
    -- Encoding every request would make the load generator the bottleneck.
    local bodies = {}
    for i = 0, key_count - 1 do
      bodies[i] = '{"key":"' .. base64(string.format("bench/k%05d", i)) .. '","value":"' .. encoded_value .. '"}'
    end
    return function()
      counter = counter + 1
      return wrk.format("POST", path, headers, bodies[((thread_id or 0) * 7919 + counter) % key_count])
    end
  end,
}

function init(args)
  request = builders[mode]()
end

if mode == "kv-cas" then
  -- Defined for this mode only: wrk reads every response body when the hook exists.
  function response(status, headers, body)
    -- 200 {"revision": N}; a 412 carries current_revision, to recover from.
    local revision = body:match('"revision"%s*:%s*(%d+)') or body:match('"current_revision"%s*:%s*(%d+)')
    if revision then
      cas_revision = revision
    end
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(
    string.format(
      'KV_BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
        .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, "status_errors": %d}\n',
      summary.requests,
      summary.duration,
      latency:percentile(50),
      latency:percentile(99),
      errors.connect,
      errors.read,
      errors.write,
      errors.timeout,
      errors.status
    )
  )
end
