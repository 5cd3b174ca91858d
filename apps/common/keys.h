/*
 * keys.h - the Redis key space. Every key name is built here and nowhere
 * else: the C callers use these names, and the Lua scripts get theirs as
 * KEYS, or as a stem (below) to which they add an agent id.
 *
 *   <p>:r:<rid>             hash; one request: "h" its header (job.h),
 *                           "n" its postbacks not yet ended, "o" its
 *                           object when it has one only (one record),
 *                           "a<i>" postback i's last failed attempts while
 *                           it is retried (outcomes.lua; pbctl show)
 *   <p>:d:<rid>             string; a request of several objects: its
 *                           index, then its data objects back to back
 *                           (job.h); both keys go when n reaches 0
 *   <p>:q:<d>:<client>      list; a lane: runs and references (job.h) of
 *                           one client waiting for destination d
 *                           (dest.h); ingest RPUSHes a run a request,
 *                           agents take from the left; what comes back
 *                           untried goes to the head, a due retry to the
 *                           tail (so an open breaker's probes rotate
 *                           through its postbacks)
 *   <p>:q:<d>               list; the lane of requests without a client
 *                           key (and what a release before lanes queued)
 *   <p>:lanes:<d>           list; the clients whose lanes of d hold
 *                           something ("" for <p>:q:<d>), once each, in
 *                           the order of their turns (take.lua)
 *   <p>:cready:<client>     zset; the destinations where the client's lane
 *                           holds something, scored by when it was last
 *                           served there (or until when the destination
 *                           waits): the client's turns (take.lua)
 *   <p>:clients-ready       zset; the clients with such a destination,
 *                           scored by when each was last served: the take
 *                           goes round them first, so that no client's
 *                           destinations wait behind another's
 *   <p>:ready               zset; destinations with something waiting,
 *                           scored by when an agent may next take (ms):
 *                           when it became ready, when it was last taken
 *                           from (turns rotate), an open breaker's end
 *   <p>:dest:<d>            hash; destination d's breaker: state (closed,
 *                           open, half), fails, until (ms), url, reason,
 *                           rate (requests/s an operator set); lapses
 *                           unless it holds a rate (prelude.lua)
 *   <p>:gate:<d>            hash; with several shards, on the first
 *                           shard only: destination d's turns granted
 *                           for the whole cluster (gate.lua): probe (ms
 *                           until which a probe is out), next (ms of its
 *                           next paced take); lapses once both are past
 *   <p>:waiting             integer; postbacks in all the lanes: the
 *                           queue size that max_queue_size bounds
 *   <p>:wake                list; a token an idle agent blocks on (BLPOP)
 *   <p>:held:<agent>:<d>    set; the references (job.h) of destination d
 *                           one agent holds: taken, outcome not yet
 *                           recorded; acknowledged by SREM of a few bytes
 *   <p>:held:<agent>        set; the destinations with such a set, so that
 *                           a reaper finds them without a SCAN
 *   <p>:processing:<agent>  list; version 1 jobs one agent holds (and
 *                           what an agent before version 3 held)
 *   <p>:scheduled           zset; retries ("<d> <rid> <i> <attempts>"), by
 *                           due time (ms, the master's clock)
 *   <p>:dead                list; dead letters (JSON, deadletter.h),
 *                           newest first; each holds its whole job, so it
 *                           stands alone once its request's keys are gone
 *   <p>:agent:<agent>       string; an agent's heartbeat, with a TTL
 *                           (heartbeat_ttl_ms)
 *   <p>:agents              set; ids of the agents that may hold postbacks
 *   <p>:ingest:<node>       string; an ingest node's heartbeat (its pid,
 *                           version, listen address), with a TTL
 *   <p>:idem:<client>:<key> string; the first answer to a client's
 *                           Idempotency-Key
 *   <p>:clients             hash; SHA-256 of a client key (clientkey.h) ->
 *                           "<client name> <issued ms>"
 *   <p>:clients-version     integer; raised by every change to <p>:clients,
 *                           so that ingest nodes reload it only then
 *   <p>:client-shares       hash; client name -> the postbacks it may have
 *                           queued in the cluster, where an operator set
 *                           it (pbctl keys share; the others:
 *                           client_share_pct); changes raise
 *                           <p>:clients-version
 *   <p>:client-waiting      hash; on each shard, client name -> its
 *                           postbacks there not yet ended (enqueue.lua
 *                           counts them up, outcomes.lua down)
 *   <p>:signing             hash; client name -> its signing secrets
 *                           (sign.h: "whsec_..."; the newest first, two
 *                           while a rotation runs), for the agents
 *   <p>:signing-version     integer; raised by every change to
 *                           <p>:signing, so that agents reload it only then
 *   <p>:policies            hash; on the first shard, destination id ->
 *                           its delivery policy (policy.h: "name=value"
 *                           lines; pbctl policy set)
 *   <p>:policies-version    integer; raised by every change to
 *                           <p>:policies, so that agents reload it only then
 *   <p>:metrics-lease       string; the agent that shows the cluster's
 *                           queue gauges (metrics), with a TTL
 *   <p>:queue               list; version 1 jobs (job.h) an upgrade left;
 *                           agents drain it, nothing writes it but replay
 *
 * Everything one destination owns carries its id, so that the queues can
 * later be split across masters by destination.
 *
 * <p> is the key_prefix setting.
 */
#ifndef PB_KEYS_H
#define PB_KEYS_H

#include <stddef.h>

#define PB_KEY_MAX 256

typedef struct pb_keys {
	char queue[PB_KEY_MAX];           /* version 1 */
	char ready[PB_KEY_MAX];
	char waiting[PB_KEY_MAX];
	char wake[PB_KEY_MAX];
	char scheduled[PB_KEY_MAX];
	char dead[PB_KEY_MAX];
	char agents[PB_KEY_MAX];
	char processing_stem[PB_KEY_MAX]; /* "<p>:processing:", an agent id follows */
	char held_stem[PB_KEY_MAX];       /* "<p>:held:", "<agent>[:<d>]" follows */
	char heartbeat_stem[PB_KEY_MAX];  /* "<p>:agent:", an agent id follows */
	char ingest_stem[PB_KEY_MAX];     /* "<p>:ingest:", a node's id follows */
	char idem_stem[PB_KEY_MAX];       /* "<p>:idem:", "<client>:<key>" follows */
	char clients[PB_KEY_MAX];
	char clients_version[PB_KEY_MAX];
	char client_shares[PB_KEY_MAX];
	char client_waiting[PB_KEY_MAX];
	char signing[PB_KEY_MAX];
	char signing_version[PB_KEY_MAX];
	char policies[PB_KEY_MAX];
	char policies_version[PB_KEY_MAX];
	char metrics_lease[PB_KEY_MAX];
	char queue_stem[PB_KEY_MAX];      /* "<p>:q:", "<d>[:<client>]" follows */
	char lanes_stem[PB_KEY_MAX];      /* "<p>:lanes:", a destination id follows */
	char client_ready_stem[PB_KEY_MAX]; /* "<p>:cready:", a client name follows */
	char clients_ready[PB_KEY_MAX];
	char request_stem[PB_KEY_MAX];    /* "<p>:r:", a request id follows */
	char data_stem[PB_KEY_MAX];       /* "<p>:d:", a request id follows */
	char dest_stem[PB_KEY_MAX];       /* "<p>:dest:", a destination id follows */
	char gate_stem[PB_KEY_MAX];       /* "<p>:gate:", a destination id follows */
} pb_keys;

/* PB_OK, or PB_ERR_LIMIT when the prefix makes a name too long. */
int pb_keys_init(pb_keys *k, const char *prefix);
/* stem + part into out[0..n): PB_OK, or PB_ERR_LIMIT when it does not fit. */
int pb_key_join(char *out, size_t n, const char *stem, const char *part);

#endif
