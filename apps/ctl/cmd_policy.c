/*
 * pbctl policy: each destination's own delivery rules (policy.h), kept in
 * <p>:policies on the first shard (keys.h) and written by policy_set.lua;
 * agents apply a change within a second. The header values a policy holds
 * are secrets: shown as "(secret)", never printed.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "lua_functions.h"
#include "pb.h"
#include "policy.h"

/* Read only to write back or show: the fields a policy does not set stay
 * unset, so the defaults do not matter here. */
static const pb_policy none;

/* DEST's stored policy into *p (PB_OK; PB_ERR_NOTFOUND when it has none). */
static int stored(const char *id, pb_policy *p)
{
	redisReply *r = cmd_or_die("HGET %s %s", K.policies, id);
	char err[256];
	int rc = PB_ERR_NOTFOUND;

	*p = none;
	if (r->type == REDIS_REPLY_STRING) {
		rc = pb_policy_read(p, &none, r->str, r->len, err, sizeof(err));
		if (rc != PB_OK)
			fprintf(stderr, "pbctl: the stored policy of %s does not read (%s); "
				"set every field again, or clear it\n", id, err);
	}
	freeReplyObject(r);
	return rc;
}

/* One policy for a person (secrets masked): text, or an entry of the
 * JSON answer's "policies". */
static void show_one(const char *id, const pb_policy *p)
{
	pb_buf text;
	json_t *fields;
	char *line, *save = NULL;

	pb_buf_init(&text, (size_t)PB_POLICY_TEXT_MAX * 2);
	pb_policy_write(p, &text, 1);
	if (!json_mode) {
		printf("%s  %s\n", id, p->url[0] ? p->url : "-");
		for (line = strtok_r(text.data ? text.data : (char *)"", "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			if (strncmp(line, "url=", 4) != 0)
				printf("  %s\n", line);
		pb_buf_free(&text);
		return;
	}
	fields = json_object();
	for (line = strtok_r(text.data ? text.data : (char *)"", "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		json_t *was;

		if (eq == NULL || strncmp(line, "url=", 4) == 0)
			continue;
		*eq = '\0';
		was = json_object_get(fields, line);
		if (strcmp(line, "header") == 0) { /* several: a list */
			if (was == NULL)
				json_object_set_new(fields, line, was = json_array());
			json_array_append_new(was, json_string(eq + 1));
		} else {
			json_object_set_new(fields, line, json_string(eq + 1));
		}
	}
	json_array_append_new(json_object_get(answer, "policies"),
			      json_pack("{s:s, s:s, s:o}", "dest", id, "url", p->url,
					"policy", fields));
	pb_buf_free(&text);
}

int cmd_policy_show(const pb_args *a)
{
	redisReply *r;
	size_t i;

	if (json_mode)
		json_object_set_new(answer, "policies", json_array());
	if (a->npos == 1) {
		pb_dest d;
		pb_policy p;

		if (dest_arg(a->pos[0], &d) != PB_OK)
			return 2;
		if (stored(d.id, &p) == PB_ERR_NOTFOUND) {
			if (!json_mode)
				printf("%s  %s: no policy of its own (the agents' configuration)\n",
				       d.id, d.name[0] ? d.name : "-");
			return 0;
		}
		show_one(d.id, &p);
		return 0;
	}
	r = cmd_or_die("HGETALL %s", K.policies);
	for (i = 0; i + 1 < r->elements; i += 2) {
		pb_policy p = none;
		char err[256];

		if (pb_policy_read(&p, &none, r->element[i + 1]->str, r->element[i + 1]->len, err,
				   sizeof(err)) != PB_OK)
			fprintf(stderr, "pbctl: the policy of %s does not read: %s\n",
				r->element[i]->str, err);
		show_one(r->element[i]->str, &p);
	}
	if (r->elements == 0 && !json_mode)
		printf("no destination has a policy of its own\n");
	freeReplyObject(r);
	return 0;
}

/* Store p for destination id (or drop it: what "clear"); then a replica
 * confirms (replica_wait). */
static void store(const char *what, const char *id, const char *text)
{
	const pb_fn_policy_set f = { .policies = K.policies, .version = K.policies_version,
				     .what = what, .d = id, .text = text };
	const char *fargv[PB_FN_POLICY_SET_ARGC];

	freeReplyObject(fcall_or_die(pb_fn_policy_set_argv(&f, fargv), fargv, NULL));
	replica_wait();
}

int cmd_policy_set(const pb_args *a)
{
	pb_dest d;
	pb_policy p;
	pb_buf text;
	char err[256];
	int i;

	if (dest_arg(a->pos[0], &d) != PB_OK)
		return 2;
	stored(d.id, &p);
	for (i = 1; i < a->npos; i++) {
		if (strncmp(a->pos[i], "url=", 4) == 0) {
			fprintf(stderr, "pbctl: url is DEST's own, not a field to set\n");
			return 2;
		}
		if (pb_policy_assign(&p, &none, a->pos[i], strlen(a->pos[i]), err,
				     sizeof(err)) != PB_OK) {
			fprintf(stderr, "pbctl: %s\n", err);
			return 2;
		}
	}
	if (d.name[0])
		pb_strlcpy(p.url, d.name, sizeof(p.url)), p.set |= PB_POL_URL;
	pb_buf_init(&text, PB_POLICY_TEXT_MAX);
	if (pb_policy_write(&p, &text, 0) != PB_OK) {
		fprintf(stderr, "pbctl: the policy is longer than %d bytes\n", PB_POLICY_TEXT_MAX);
		pb_buf_free(&text);
		return 2;
	}
	if ((p.set & ~PB_POL_URL) == 0)
		store("clear", d.id, "");
	else
		store("set", d.id, pb_buf_str(&text));
	pb_buf_free(&text);
	if (json_mode)
		json_object_set_new(answer, "policies", json_array());
	show_one(d.id, &p);
	fprintf(stderr, "pbctl: %s; agents apply it within a second\n",
		(p.set & ~PB_POL_URL) ? "policy stored" : "nothing set: policy cleared");
	return 0;
}

int cmd_policy_clear(const pb_args *a)
{
	pb_dest d;

	if (dest_arg(a->pos[0], &d) != PB_OK)
		return 2;
	store("clear", d.id, "");
	if (json_mode)
		json_object_set_new(answer, "dest", json_string(d.id));
	fprintf(stderr, "pbctl: %s has no policy of its own now (the agents' "
		"configuration); agents apply it within a second\n", d.id);
	return 0;
}
