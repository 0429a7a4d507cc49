-- Release (ARGV[2] == "0") or extend (ARGV[2] = lease ms) a lock only its holder owns.
-- KEYS: lock   ARGV: holder token, lease ms
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == "0" then return redis.call("DEL", KEYS[1]) end
return redis.call("PEXPIRE", KEYS[1], ARGV[2])
