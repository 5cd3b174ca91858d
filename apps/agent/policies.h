/*
 * policies.h - the destinations' own delivery rules (policy.h) as an agent
 * holds them: read from <p>:policies on the first shard (keys.h), read
 * again within a second of a change (<p>:policies-version moves), each
 * over the configuration's rules, which a destination without a policy
 * of its own gets.
 */
#ifndef PB_POLICIES_H
#define PB_POLICIES_H

#include <curl/curl.h>

#include "keys.h"
#include "policy.h"
#include "redis.h"

/* The configuration's rules: what every destination gets where its policy
 * sets nothing (before any refresh). */
void policies_init(const pb_policy *defaults);

/* Read the policies again if their version moved (the fetcher of the first
 * shard, with the signing secrets: every SIGNERS_REFRESH_MS). PB_OK or the Redis error; the
 * policies held stay as they were on an error. A policy that does not
 * read is skipped and said (its destination gets the defaults). */
int policies_refresh(pb_redis *r, const pb_keys *k);

/* Destination d's rules (its id, dest.h) into *p: all but its headers
 * (p->n_headers says how many it has; policies_headers appends them), so
 * that an attempt copies a few hundred bytes, not every header's room. */
void policies_get(const char *d, pb_policy *p);

/* Destination d's own headers appended to *list. PB_OK or PB_ERR_NOMEM
 * (the list as it was). */
int policies_headers(const char *d, struct curl_slist **list);

/* Free what is held (at exit). */
void policies_free(void);

#endif
