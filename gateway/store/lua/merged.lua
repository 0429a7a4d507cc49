-- Entries of both indexes (live and dead) with lo < rev <= hi, merged in revision order.
-- KEYS: live, dead, records   ARGV: lo (exclusive), hi (inclusive), limit, with_bodies ("1" | "0")
-- Returns {more (0|1), last revision returned, then 5 values per entry:
--          id, revision, created_rev, dead ("1" | "0"), body ("" without bodies)}.
local lo, hi, limit, with_bodies = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == "1"
local live = redis.call("ZRANGEBYSCORE", KEYS[1], "(" .. lo, hi, "WITHSCORES", "LIMIT", 0, limit + 1)
local dead = redis.call("ZRANGEBYSCORE", KEYS[2], "(" .. lo, hi, "WITHSCORES", "LIMIT", 0, limit + 1)
local out = {0, lo}
local i, j, n = 1, 1, 0
while i <= #live or j <= #dead do
  local take_live
  if i > #live then take_live = false
  elseif j > #dead then take_live = true
  else take_live = tonumber(live[i + 1]) < tonumber(dead[j + 1]) end
  local id, score, flag
  if take_live then id, score, flag = live[i], live[i + 1], "0"; i = i + 2
  else id, score, flag = dead[j], dead[j + 1], "1"; j = j + 2 end
  if n == limit then out[1] = 1; break end
  local rec = redis.call("HGET", KEYS[3], id)
  local nl = string.find(rec, "\n", 1, true)
  local b1 = string.find(rec, "|", 1, true)
  local b2 = string.find(rec, "|", b1 + 1, true)
  local body = ""
  if with_bodies then body = string.sub(rec, nl + 1) end
  out[#out + 1] = id
  out[#out + 1] = score
  out[#out + 1] = string.sub(rec, b1 + 1, b2 - 1)
  out[#out + 1] = flag
  out[#out + 1] = body
  out[2] = score
  n = n + 1
end
return out
