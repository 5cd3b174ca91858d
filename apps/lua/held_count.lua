-- held_count.lua: how many postbacks one agent holds (pbctl status, the
-- drain's wait).
--
-- Why one atomic step: its processing list and held sets read at one
-- instant, so that a postback moving between them is counted once.
-- Returns that count.
--
-- caller: operator (pbctl's Redis user, whose permissions it runs with)
-- flags: no-writes (it only reads).

local processing, held = KEYS[1], KEYS[2]   -- "<p>:processing:<a>", "<p>:held:<a>"

return held_count(processing, held)
