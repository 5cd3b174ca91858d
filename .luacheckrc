-- luacheck for apps/lua (make lint): each script is checked as Redis runs
-- it, the prelude and the script joined (scripts/gen_lua.py --lint).
std = "lua51"
read_globals = { "redis", "KEYS", "ARGV", "struct", "cjson", "cmsgpack", "bit", "unpack" }
-- What the prelude defines and a script does not use is not reported
-- (gen_lua.py --lint names those); everything else unused is.
max_line_length = 100
