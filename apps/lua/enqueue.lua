-- enqueue.lua: a round of requests from an ingest node, each decided as
-- if alone: queued whole, refused whole (the queue is full), or answered
-- from an earlier try (its idempotency key, or its hash already there).
--
-- Why one atomic step: a request's postbacks, its hash and data, its
-- idempotency key and the waiting count are written together, or none of
-- them. A script that stops on an error keeps what it wrote, so
-- everything that can fail (reads, pushes, counts) comes first, and what
-- marks a request stored (its hash, data and idempotency key) last: a
-- round stopped part-way leaves no request marked stored with nothing
-- queued, which a retry after a lost reply would answer "enqueued".
--
-- Each client has a share of the queue (docs/design.md, "A share per
-- client"): counts holds, per client, its postbacks on this shard not yet
-- ended (waiting, scheduled, in flight; outcomes.lua counts them down as
-- they are delivered or dead), and a request that would take its client
-- past the share it carries is refused whole, nothing queued: only that
-- client is turned away.
--
-- Each request's runs go to its client's lane of their destination
-- (prelude.lua, lane_push), in request order.
--
-- A request of one object, the common one, is one record: its hash holds
-- its object too (field o), and it has no data key; a request of more
-- has its data key (index, then objects: job.h) beside its hash.
--
-- Records, from ARGV[8], one per request (REC_FIXED = 10 words, then its
-- runs): its hash key, data key, idempotency key ("" for none) and the
-- value to store there, header, n (its postbacks), the data's index
-- (job.h, version 3) and objects, its client's share on this shard (0: no
-- limit of its own), its number of runs; then for each run of
-- postbacks to one destination in turn its destination id and its queue
-- element (job.h; built by the caller, so that the script only places
-- bytes).
--
-- Returns, per request: {1, size} enqueued (or already: a second try
-- after a lost reply, sent with again "1", finds its request's hash and
-- writes nothing twice),
-- {0, size} full, {2, size, first} replay of the first try, whose value
-- ("<id> <size>") is first, {3, size, queued} refused: its client has
-- queued postbacks on this shard and this request would pass its share.
--
-- caller: ingest (pb-ingest's Redis user, whose permissions it runs with)

local waiting, v1_queue, ready, wake, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local max = tonumber(ARGV[1])          -- max_queue_size
local qstem = ARGV[2]                  -- "<p>:q:"
local idem_s = ARGV[3]                 -- the idempotency window (s)
local lstem = ARGV[4]                  -- "<p>:lanes:"
local crstem = ARGV[5]                 -- "<p>:cready:"
local clients_ready = ARGV[6]          -- "<p>:clients-ready"
-- again "1": a request of the round may have been sent before (its reply
-- lost): only then can its hash be there already, and only then is it
-- looked for.
local again = ARGV[7]                  -- "1" or "0"
local RECORDS = 8
local L = { q = qstem, l = lstem, c = crstem, cr = clients_ready }

local size = queue_size(waiting, v1_queue)
local asleep = redis.call('LLEN', wake) == 0
local out, queued, order, runs = {}, 0, {}, {}
local stored, firsts = {}, {}
-- Each client's count as this round leaves it (read once, then kept here).
local held, added = {}, {}
local a = RECORDS
while a <= #ARGV do
  local hash, idem, n = ARGV[a], ARGV[a + 2], tonumber(ARGV[a + 5])
  local share = tonumber(ARGV[a + 8])
  local last = a + 9 + 2 * tonumber(ARGV[a + 9])
  local client = header_client(ARGV[a + 4]) or ''
  if not held[client] then
    held[client] = tonumber(redis.call('HGET', counts, client) or '0')
  end
  -- firsts: a key twice in one round is a replay of the first.
  local first = idem ~= '' and (firsts[idem] or redis.call('GET', idem))
  if first then
    out[#out + 1] = {2, size, first}
  elseif again == '1' and redis.call('EXISTS', hash) == 1 then
    out[#out + 1] = {1, size}
  elseif size + n > max then
    out[#out + 1] = {0, size}
  elseif share > 0 and held[client] + n > share then
    out[#out + 1] = {3, size, held[client]}
  else
    for r = a + 10, last, 2 do
      local lane = ARGV[r] .. ' ' .. client
      local q = runs[lane]
      if not q then
        q = { d = ARGV[r], c = client, xs = {} }
        runs[lane] = q; order[#order + 1] = q
      end
      q.xs[#q.xs + 1] = ARGV[r + 1]
    end
    size, queued = size + n, queued + n
    held[client], added[client] = held[client] + n, (added[client] or 0) + n
    if idem ~= '' then firsts[idem] = ARGV[a + 3] .. ' ' .. size end
    stored[#stored + 1] = a
    out[#out + 1] = {1, size}
  end
  a = last + 1
end
-- In request order.
local now = #order > 0 and now_ms()
for _, q in ipairs(order) do lane_push(L, q.d, q.c, 'RPUSH', q.xs, ready, now) end
if queued > 0 then
  redis.call('INCRBY', waiting, queued)
  -- One token is enough to wake an idle agent; under load agents do not
  -- block and the token stays: a read instead of two writes.
  if asleep then redis.call('LPUSH', wake, 1) end
end
for client, n in pairs(added) do redis.call('HINCRBY', counts, client, n) end
for _, s in ipairs(stored) do
  if ARGV[s + 5] == '1' then
    redis.call('HSET', ARGV[s], 'h', ARGV[s + 4], 'n', 1, 'o', ARGV[s + 7])
  else
    redis.call('SET', ARGV[s + 1], ARGV[s + 6] .. ARGV[s + 7])
    redis.call('HSET', ARGV[s], 'h', ARGV[s + 4], 'n', ARGV[s + 5])
  end
  if ARGV[s + 2] ~= '' then
    redis.call('SET', ARGV[s + 2], firsts[ARGV[s + 2]], 'EX', idem_s)
  end
end
return out
