-- Apply a batch of changes to one account's mirror, atomically.
-- KEYS: rev, records, live, dead, subscriptions, events
-- ARGV[1]: now (ISO-8601), ARGV[2]: now (ms), ARGV[3]: a JSON array of changes, each
--   [id, kind ("u" upsert | "d" delete), hash, native_id, native_version,
--    body_prefix, body_suffix, created_time, max_rev ("" = no guard)]
-- (one JSON argument instead of nine per change: packing thousands of arguments costs the client more)
-- A record is "<rev>|<created_rev>|<D>|<deleted_ms>|<native_version>|<native_id>\n<body>"; a live body
-- carries the content hash as its "etag" and its "createdTime", so the metadata does not repeat them.
-- Returns one integer per change: the new revision, 0 when nothing changed,
-- -1 when the guard (the record moved past max_rev) skipped it; then the number of webhook events written.

local function parse(rec)
  local nl = string.find(rec, "\n", 1, true)
  local meta = string.sub(rec, 1, nl - 1)
  local f = {}
  local pos = 1
  for i = 1, 5 do
    local bar = string.find(meta, "|", pos, true)
    f[i] = string.sub(meta, pos, bar - 1)
    pos = bar + 1
  end
  f[6] = string.sub(meta, pos)
  return f, string.sub(rec, nl + 1)
end

local function meta(rev, crev, dead, dms, nver, nid)
  return rev .. "|" .. crev .. "|" .. dead .. "|" .. dms .. "|" .. nver .. "|" .. nid
end

local function etag_of(body)
  return string.match(body, '"etag":"(%x+)"')
end

local now_iso, now_ms = ARGV[1], ARGV[2]
local head = tonumber(redis.call("GET", KEYS[1]) or "0")
local start_head = head
local out = {}
local changes = cjson.decode(ARGV[3])
local events = 0
for _, c in ipairs(changes) do
  local id, kind, hash, nid, nver = c[1], c[2], c[3], c[4], c[5]
  local prefix, suffix, ctime, max_rev = c[6], c[7], c[8], c[9]
  local rec = redis.call("HGET", KEYS[2], id)
  local f, body = nil, nil
  if rec then f, body = parse(rec) end
  local result = 0
  if f and max_rev ~= "" and tonumber(f[1]) > tonumber(max_rev) then
    result = -1
  elseif kind == "u" then
    if f and f[3] == "0" and etag_of(body) == hash then
      if f[5] ~= nver or f[6] ~= nid then
        -- same content, new native version: remember it, but it is not a change
        redis.call("HSET", KEYS[2], id, meta(f[1], f[2], "0", "", nver, nid) .. "\n" .. body)
      end
    else
      head = head + 1
      local rev = head
      local crev, ct = rev, ctime
      if f and f[3] == "0" then crev, ct = f[2], string.match(body, '"createdTime":"([^"]*)"') end
      local served = prefix .. ',"createdTime":"' .. ct .. '"' .. suffix
      redis.call("HSET", KEYS[2], id, meta(rev, crev, "0", "", nver, nid) .. "\n" .. served)
      redis.call("ZADD", KEYS[3], rev, id)
      if f and f[3] == "1" then redis.call("ZREM", KEYS[4], id) end
      result = rev
    end
  elseif f and f[3] == "0" then
    head = head + 1
    local rev = head
    local served = '{"id":"' .. id .. '","timestamp":"' .. now_iso .. '"}'
    redis.call("HSET", KEYS[2], id, meta(rev, f[2], "1", now_ms, f[5], f[6]) .. "\n" .. served)
    redis.call("ZREM", KEYS[3], id)
    redis.call("ZADD", KEYS[4], rev, id)
    result = rev
  end
  out[#out + 1] = result
end
if head ~= start_head then
  redis.call("SET", KEYS[1], head)
  -- Webhooks: in this same atomic step, one stream entry per subscription, at most MAX ids each,
  -- so a crash can never record a change and lose its notification.
  local subs = redis.call("SMEMBERS", KEYS[5])
  if #subs > 0 then
    local MAX = 500
    local updated, deleted = {}, {}
    for n, rev in ipairs(out) do
      if rev > 0 then
        if changes[n][2] == "u" then updated[#updated + 1] = changes[n][1] else deleted[#deleted + 1] = changes[n][1] end
      end
    end
    local function chunk(list, from)
      local part = {}
      for x = from, math.min(#list, from + MAX - 1) do part[#part + 1] = list[x] end
      return part
    end
    local u, d = 1, 1
    while u <= #updated or d <= #deleted do
      local up, dp = chunk(updated, u), chunk(deleted, d)
      u, d = u + #up, d + #dp
      for _, sub in ipairs(subs) do
        redis.call("XADD", KEYS[6], "*", "sub", sub, "revision", head,
                   "updated", cjson.encode(up), "deleted", cjson.encode(dp))
        events = events + 1
      end
    end
  end
end
out[#out + 1] = events
return out
