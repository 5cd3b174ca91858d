/*
 * pbctl keys: client keys (clientkey.h) and signing secrets (sign.h).
 * Redis keeps only each key's SHA-256 in <p>:clients, and the secrets the
 * agents sign with in <p>:signing, both on the first shard (shard.h).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "clientkey.h"
#include "ctl.h"
#include "log.h"
#include "lua_functions.h"
#include "pb.h"
#include "sign.h"

int cmd_keys_add(const pb_args *a)
{
	const char *name = a->pos[0];
	char key[PB_CLIENT_KEY_LEN + 1], hash[PB_CLIENT_HASH_LEN + 1], val[96];

	if (!pb_client_name_valid(name, strlen(name))) {
		fprintf(stderr, "pbctl: a client name is 1 to %d of A-Z a-z 0-9 . _ -, "
			"not '%s'\n", PB_CLIENT_NAME_MAX, name);
		return 2;
	}
	if (pb_client_key_new(key) != PB_OK) {
		fprintf(stderr, "pbctl: no random bytes for a key\n");
		return 1;
	}
	pb_client_key_hash(key, strlen(key), hash);
	snprintf(val, sizeof(val), "%s %lld", name, (long long)pb_wall_ms());
	{
		const pb_fn_keys_add f = { .clients = K.clients,
					   .version = K.clients_version,
					   .hash = hash, .entry = val };
		const char *fargv[PB_FN_KEYS_ADD_ARGC];

		freeReplyObject(fcall_or_die(pb_fn_keys_add_argv(&f, fargv), fargv, NULL));
	}
	replica_wait();
	/* The key itself goes to standard output alone, for a file or a
	 * variable; Redis keeps only its hash, so this is the one copy. */
	if (json_mode) {
		json_object_set_new(answer, "client", json_string(name));
		json_object_set_new(answer, "key", json_string(key));
		json_object_set_new(answer, "sha256", json_string(hash));
	} else {
		printf("%s\n", key);
	}
	fprintf(stderr, "pbctl: key for client '%s' issued (SHA-256 %.12s...); it is "
		"shown only this once\n", name, hash);
	return 0;
}

/* How many signing secrets client name[0..n) has (0: unsigned). */
static int secrets_of(const redisReply *signing, const char *name, size_t n)
{
	size_t i;
	int count = 0;

	for (i = 0; i + 1 < signing->elements; i += 2) {
		const char *s = signing->element[i + 1]->str;

		if (strlen(signing->element[i]->str) != n ||
		    strncmp(signing->element[i]->str, name, n) != 0)
			continue;
		for (count = 0; *s; count++) {
			s += strspn(s, " ");
			if (*s == '\0')
				break;
			s += strcspn(s, " ");
		}
	}
	return count;
}

/* Client name[0..n)'s share (pbctl keys share), 0 for the default. */
static long share_of(const redisReply *shares, const char *name, size_t n)
{
	size_t i;
	long v = 0;

	for (i = 0; i + 1 < shares->elements; i += 2)
		if (strlen(shares->element[i]->str) == n &&
		    strncmp(shares->element[i]->str, name, n) == 0)
			pb_parse_long(shares->element[i + 1]->str, 0, PB_CLIENT_SHARE_MAX, &v);
	return v;
}

int cmd_keys_list(const pb_args *a)
{
	redisReply *r = cmd_or_die("HGETALL %s", K.clients);
	redisReply *signing = cmd_or_die("HGETALL %s", K.signing);
	redisReply *shares = cmd_or_die("HGETALL %s", K.client_shares);
	json_t *l = json_array();
	size_t i;

	(void)a;
	for (i = 0; i + 1 < r->elements; i += 2) {
		const char *v = r->element[i + 1]->str, *sp = strchr(v, ' ');
		int namelen = sp ? (int)(sp - v) : (int)strlen(v);
		long ms = 0;

		if (sp)
			pb_parse_long(sp + 1, 0, LONG_MAX, &ms);
		json_array_append_new(l, json_pack("{s:s#, s:s, s:s, s:i, s:I}", "client", v,
						   (size_t)namelen, "sha256",
						   r->element[i]->str, "issued",
						   ms ? utc(ms) : "?", "signing_secrets",
						   secrets_of(signing, v, (size_t)namelen),
						   "share", (json_int_t)share_of(shares, v,
										  (size_t)namelen)));
	}
	freeReplyObject(r);
	freeReplyObject(signing);
	freeReplyObject(shares);
	if (json_mode) {
		json_object_set_new(answer, "keys", l);
		return 0;
	}
	if (json_array_size(l) == 0)
		printf("no client keys (pbctl keys add NAME)\n");
	else
		printf("%-24s %-14s %-24s %-8s %s\n", "client", "key SHA-256",
		       "issued (UTC)", "signing", "share");
	for (i = 0; i < json_array_size(l); i++) {
		json_t *k = json_array_get(l, i);
		json_int_t n = json_integer_value(json_object_get(k, "signing_secrets"));
		json_int_t share = json_integer_value(json_object_get(k, "share"));
		char sh[32];

		snprintf(sh, sizeof(sh), "%lld", (long long)share);
		printf("%-24s %.12s.. %-24s %-8s %s\n",
		       json_string_value(json_object_get(k, "client")),
		       json_string_value(json_object_get(k, "sha256")),
		       json_string_value(json_object_get(k, "issued")),
		       n == 0 ? "off" : n == 1 ? "on" : "on, 2 (rotating)",
		       share ? sh : "default");
	}
	json_decref(l);
	return 0;
}

/* keys revoke NAME | keys revoke --hash PREFIX */
int cmd_keys_revoke(const pb_args *a)
{
	const char *prefix = pb_args_str(a, "--hash", NULL);
	const char *by = prefix ? "hash" : "name", *what = prefix ? prefix : a->pos[0];
	redisReply *r;
	long long gone;

	if ((prefix == NULL) == (a->npos == 0)) {
		fprintf(stderr, "pbctl: keys revoke takes NAME or --hash PREFIX (one of them)\n");
		return 2;
	}
	if (prefix && strlen(prefix) < 8) {
		fprintf(stderr, "pbctl: --hash takes 8 digits at least, not '%s'\n", prefix);
		return 2;
	}
	{
		const pb_fn_keys_revoke f = { .clients = K.clients,
					      .version = K.clients_version,
					      .by = by, .what = what };
		const char *fargv[PB_FN_KEYS_REVOKE_ARGC];

		r = fcall_or_die(pb_fn_keys_revoke_argv(&f, fargv), fargv, NULL);
	}
	gone = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	if (gone > 0)
		replica_wait();
	if (json_mode)
		json_object_set_new(answer, "revoked", json_integer(gone));
	if (gone == 0) {
		fprintf(stderr, "pbctl: no key matches %s '%s'\n", by, what);
		return 1;
	}
	if (!json_mode)
		printf("%lld key(s) revoked\n", gone);
	return 0;
}

/* Whether client name holds a key: signing is for the clients there are. */
static int client_known(const char *name)
{
	redisReply *r = cmd_or_die("HGETALL %s", K.clients);
	size_t i, n = strlen(name);
	int known = 0;

	for (i = 0; i + 1 < r->elements && !known; i += 2)
		known = !strncmp(r->element[i + 1]->str, name, n) &&
			(r->element[i + 1]->str[n] == ' ' || r->element[i + 1]->str[n] == '\0');
	freeReplyObject(r);
	return known;
}

/* keys share NAME N (keys_share.lua) */
int cmd_keys_share(const pb_args *a)
{
	const char *name = a->pos[0];
	long n;

	if (pb_parse_long(a->pos[1], 0, PB_CLIENT_SHARE_MAX, &n) != PB_OK) {
		fprintf(stderr, "pbctl: a share is 0 (the default) to %ld postbacks, "
			"not '%s'\n", PB_CLIENT_SHARE_MAX, a->pos[1]);
		return 2;
	}
	if (!client_known(name)) {
		fprintf(stderr, "pbctl: no client '%s' holds a key (pbctl keys list)\n", name);
		return 1;
	}
	{
		char sn[24];
		const pb_fn_keys_share f = { .shares = K.client_shares,
					     .version = K.clients_version,
					     .client = name, .share = sn };
		const char *fargv[PB_FN_KEYS_SHARE_ARGC];

		snprintf(sn, sizeof(sn), "%ld", n);
		freeReplyObject(fcall_or_die(pb_fn_keys_share_argv(&f, fargv), fargv, NULL));
	}
	replica_wait();
	if (json_mode) {
		json_object_set_new(answer, "client", json_string(name));
		json_object_set_new(answer, "share", json_integer(n));
	} else if (n == 0) {
		printf("client '%s': the default share again\n", name);
	} else {
		printf("client '%s': at most %ld postbacks queued in the cluster\n", name, n);
	}
	return 0;
}

/* clients: each client's postbacks queued on this shard. */
/* clients --reconcile: each count made again from the postbacks
 * (clients_recount.lua); what changed, said. */
static void reconcile(void)
{
	const pb_fn_clients_recount f = { .counts = K.client_waiting, .ready = K.ready,
					  .scheduled = K.scheduled, .agents = K.agents,
					  .qstem = K.queue_stem, .lstem = K.lanes_stem,
					  .rstem = K.request_stem, .hstem = K.held_stem };
	const char *fargv[PB_FN_CLIENTS_RECOUNT_ARGC];
	redisReply *r = fcall_or_die(pb_fn_clients_recount_argv(&f, fargv), fargv, NULL);
	json_t *changed = json_array();
	size_t i;

	for (i = 0; i + 2 < r->elements; i += 3) {
		const char *c = r->element[i]->str;
		long long was = r->element[i + 1]->integer, now = r->element[i + 2]->integer;

		json_array_append_new(changed, json_pack("{s:s, s:I, s:I}", "client", c,
							 "was", (json_int_t)was,
							 "now", (json_int_t)now));
		fprintf(stderr, "pbctl: client %s: counted %lld, holds %lld: corrected\n",
			c[0] ? c : "(no key)", was, now);
	}
	if (r->elements == 0)
		fprintf(stderr, "pbctl: every client's count is what it holds\n");
	freeReplyObject(r);
	if (json_mode)
		json_object_set_new(answer, "corrected", changed);
	else
		json_decref(changed);
}

int cmd_clients(const pb_args *a)
{
	redisReply *r;
	json_t *l = json_object();
	size_t i;

	if (pb_args_has(a, "--reconcile"))
		reconcile();
	r = cmd_or_die("HGETALL %s", K.client_waiting);
	for (i = 0; i + 1 < r->elements; i += 2) {
		long v = 0;

		pb_parse_long(r->element[i + 1]->str, LONG_MIN, LONG_MAX, &v);
		json_object_set_new(l, r->element[i]->str, json_integer(v));
	}
	freeReplyObject(r);
	if (json_mode) {
		json_object_set_new(answer, "queued", l);
		return 0;
	}
	if (json_object_size(l) == 0)
		printf("no client has postbacks queued\n");
	else
		printf("%-24s %s\n", "client", "queued");
	{
		const char *k;
		json_t *v;

		json_object_foreach(l, k, v)
			printf("%-24s %lld\n", k[0] ? k : "(no key)",
			       (long long)json_integer_value(v));
	}
	json_decref(l);
	return 0;
}

/* keys sign NAME [--retire | --off] (signing_set.lua) */
int cmd_keys_sign(const pb_args *a)
{
	const char *name = a->pos[0];
	const char *what = pb_args_has(a, "--off") ? "off"
			 : pb_args_has(a, "--retire") ? "retire" : "add";
	char secret[PB_SIGN_SECRET_TEXT_MAX + 1] = "";
	redisReply *r;
	long long now;

	if (pb_args_has(a, "--off") && pb_args_has(a, "--retire")) {
		fprintf(stderr, "pbctl: --retire or --off, not both\n");
		return 2;
	}
	if (!pb_client_name_valid(name, strlen(name))) {
		fprintf(stderr, "pbctl: a client name is 1 to %d of A-Z a-z 0-9 . _ -, "
			"not '%s'\n", PB_CLIENT_NAME_MAX, name);
		return 2;
	}
	if (!strcmp(what, "add")) {
		if (!client_known(name)) {
			fprintf(stderr, "pbctl: no client '%s' (pbctl keys add %s first)\n", name,
				name);
			return 1;
		}
		if (pb_sign_secret_new(secret) != PB_OK) {
			fprintf(stderr, "pbctl: no random bytes for a secret\n");
			return 1;
		}
	}
	{
		const pb_fn_signing_set f = { .signing = K.signing, .version = K.signing_version,
					      .what = what, .client = name, .secret = secret };
		const char *fargv[PB_FN_SIGNING_SET_ARGC];

		r = fcall_or_die(pb_fn_signing_set_argv(&f, fargv), fargv, NULL);
	}
	now = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	replica_wait();
	if (json_mode) {
		json_object_set_new(answer, "client", json_string(name));
		json_object_set_new(answer, "signing_secrets", json_integer(now));
		if (secret[0])
			json_object_set_new(answer, "secret", json_string(secret));
	} else if (secret[0]) {
		/* Alone on standard output, as a client key: this is its one copy
		 * outside Redis, for the partners that verify the signatures. */
		printf("%s\n", secret);
	}
	fprintf(stderr, "pbctl: client '%s' %s%s\n", name,
		now == 0 ? "no longer signed" : now == 1 ? "signed with one secret"
						 : "signed with two secrets (rotating: "
						   "`--retire` drops the old one)",
		secret[0] ? "; the new secret is shown only this once" : "");
	return 0;
}
