-- One page of a change range: the served JSON of index entries with lo < rev <= hi.
-- KEYS: index (live or dead), records
-- ARGV: lo (exclusive), hi (inclusive), limit
-- Returns {more (0|1), last revision served, body, body, ...}.
local lo, hi, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local hits = redis.call("ZRANGEBYSCORE", KEYS[1], "(" .. lo, hi, "WITHSCORES", "LIMIT", 0, limit + 1)
local n = #hits / 2
local more = 0
if n > limit then more = 1; n = limit end
local out = {more, lo}
for j = 1, n do
  local rec = redis.call("HGET", KEYS[2], hits[2 * j - 1])
  local nl = string.find(rec, "\n", 1, true)
  out[#out + 1] = string.sub(rec, nl + 1)
  out[2] = hits[2 * j]
end
return out
