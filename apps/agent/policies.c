/*
 * policies.c - the destinations' policies, held for the deliverer
 * (policies.h): a copy of <p>:policies (hashcopy.h), each over the
 * configuration's rules; the deliverer copies a destination's out.
 */
#include "policies.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dest.h"
#include "hashcopy.h"
#include "log.h"
#include "pb.h"

typedef struct entry {
	char d[PB_DEST_ID_LEN + 1];
	pb_policy p;
} entry;

/* The configuration's rules; written only by policies_init, at start. */
static pb_policy defaults;

/* One field of <p>:policies: a destination id and its policy's text. */
static int parse(const redisReply *f, const redisReply *v, void *row)
{
	entry *e = row;
	char err[256];

	if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
	    !pb_dest_id_valid(f->str, f->len))
		return 0;
	memcpy(e->d, f->str, f->len + 1);
	e->p = defaults;
	if (pb_policy_read(&e->p, &defaults, v->str, v->len, err, sizeof(err)) != PB_OK) {
		pb_warn("policies: destination %s's does not read (%s); it gets the "
			"configuration's rules", e->d, err);
		return 0;
	}
	return 1;
}

/* By destination id. */
static pb_hashcopy T = PB_HASHCOPY_INIT("policies, destinations with their own", entry, d,
					parse);

void policies_init(const pb_policy *d)
{
	defaults = *d;
}

int policies_refresh(pb_redis *r, const pb_keys *k)
{
	return pb_hashcopy_refresh(&T, r, k->policies_version, k->policies);
}

void policies_get(const char *d, pb_policy *p)
{
	const entry *e;

	pb_hashcopy_rdlock(&T);
	e = pb_hashcopy_find(&T, d);
	memcpy(p, e ? &e->p : &defaults, offsetof(pb_policy, headers));
	pb_hashcopy_unlock(&T);
	p->url[0] = '\0';
}

int policies_headers(const char *d, struct curl_slist **list)
{
	const entry *e;
	int i, rc = PB_OK;

	pb_hashcopy_rdlock(&T);
	e = pb_hashcopy_find(&T, d);
	for (i = 0; e && i < e->p.n_headers && rc == PB_OK; i++) {
		struct curl_slist *h = curl_slist_append(*list, e->p.headers[i]);

		if (h == NULL)
			rc = PB_ERR_NOMEM;
		else
			*list = h;
	}
	pb_hashcopy_unlock(&T);
	return rc;
}

void policies_free(void)
{
	pb_hashcopy_free(&T);
}
