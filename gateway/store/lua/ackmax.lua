-- Record a device's acknowledgements, atomically.
-- KEYS: acked, sent (the device's hashes), live, dead (the account's index), state (its tombstone floor)
-- ARGV: id, rev, id, rev, ...
-- A contact in the index: an ack at or above its tombstone's revision settles its deletion (the device no
-- longer holds it, so both marks go); any other ack raises the acknowledged revision, never lowers it.
-- A contact no longer in the index (its tombstone compacted) that the device may hold: an ack at or above
-- the tombstone floor settles the deletion a session served for it; an older ack is stale and ignored.
-- An ack of a contact neither the index nor the device knows is ignored.
local floor = tonumber(redis.call("HGET", KEYS[5], "floor") or "0")
local function forget(id)
  redis.call("HDEL", KEYS[1], id)
  redis.call("HDEL", KEYS[2], id)
end
for i = 1, #ARGV, 2 do
  local id, rev = ARGV[i], tonumber(ARGV[i + 1])
  local dead = redis.call("ZSCORE", KEYS[4], id)
  if dead and rev >= tonumber(dead) then
    forget(id)
  elseif dead or redis.call("ZSCORE", KEYS[3], id) then
    local old = tonumber(redis.call("HGET", KEYS[1], id) or "0")
    if rev > old then redis.call("HSET", KEYS[1], id, rev) end
  elseif rev >= floor and (redis.call("HEXISTS", KEYS[1], id) == 1 or redis.call("HEXISTS", KEYS[2], id) == 1) then
    forget(id)
  end
end
return 1
