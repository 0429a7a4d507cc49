-- Raise acknowledged revisions, never lower them. KEYS: acked hash   ARGV: id, rev, id, rev, ...
for i = 1, #ARGV, 2 do
  local old = tonumber(redis.call("HGET", KEYS[1], ARGV[i]) or "0")
  if tonumber(ARGV[i + 1]) > old then redis.call("HSET", KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
