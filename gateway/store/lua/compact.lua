-- Drop tombstones deleted before a cutoff, oldest first; raise the tombstone floor.
-- KEYS: records, dead, state   ARGV: cutoff_ms, max
-- Returns the number of tombstones dropped.
local cutoff, max = tonumber(ARGV[1]), tonumber(ARGV[2])
local hits = redis.call("ZRANGE", KEYS[2], 0, max - 1, "WITHSCORES")
local dropped, floor = 0, nil
for j = 1, #hits, 2 do
  local id = hits[j]
  local rec = redis.call("HGET", KEYS[1], id)
  local dms = 0
  if rec then
    local meta = string.sub(rec, 1, string.find(rec, "\n", 1, true) - 1)
    local pos = 1
    for _ = 1, 3 do pos = string.find(meta, "|", pos, true) + 1 end
    dms = tonumber(string.sub(meta, pos, string.find(meta, "|", pos, true) - 1)) or 0
  end
  if dms >= cutoff then break end
  redis.call("HDEL", KEYS[1], id)
  redis.call("ZREM", KEYS[2], id)
  floor = hits[j + 1]
  dropped = dropped + 1
end
if floor then redis.call("HSET", KEYS[3], "floor", floor) end
return dropped
