/*
 * pbctl functions: the queue's Redis Functions (apps/lua) on the master.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "lua_functions.h"
#include "pb.h"

/*
 * The queue's Redis Functions: one library a version (apps/lua, named
 * PB_FN_LIBRARY_NAME: "pb_" and a digest of its text). A deployment loads
 * its version's library before it starts that version's daemons; daemons
 * of the version before keep calling theirs until they are replaced, and
 * --prune (once every daemon runs this version) deletes the others.
 */

/* 1 if name is a library of this project (pb_ and 10 hex digits). */
static int is_pb_library(const char *name, size_t len)
{
	size_t i;

	if (len != 13 || strncmp(name, "pb_", 3) != 0)
		return 0;
	for (i = 3; i < len; i++)
		if (!strchr("0123456789abcdef", name[i]))
			return 0;
	return 1;
}

/* A FUNCTION LIST entry's field (a flat list of names and values). */
static const redisReply *lib_field(const redisReply *lib, const char *field)
{
	size_t i;

	if (lib->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (i = 0; i + 1 < lib->elements; i += 2)
		if (lib->element[i]->type == REDIS_REPLY_STRING &&
		    !strcmp(lib->element[i]->str, field))
			return lib->element[i + 1];
	return NULL;
}

/* Print this project's libraries; prune: delete those of other versions.
 * Returns whether this version's is loaded. */
static int list_libraries(int prune)
{
	redisReply *r = cmd_or_die("FUNCTION LIST LIBRARYNAME pb_*");
	int ours = 0;
	size_t i;

	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *name = lib_field(r->element[i], "library_name");
		const redisReply *fns = lib_field(r->element[i], "functions");
		size_t nfns;
		int mine;

		if (name == NULL || name->type != REDIS_REPLY_STRING ||
		    !is_pb_library(name->str, name->len))
			continue;
		mine = !strcmp(name->str, PB_FN_LIBRARY_NAME);
		ours |= mine;
		nfns = fns && fns->type == REDIS_REPLY_ARRAY ? fns->elements : 0;
		if (prune && !mine)
			freeReplyObject(cmd_or_die("FUNCTION DELETE %s", name->str));
		if (json_mode)
			json_array_append_new(json_object_get(answer, "libraries"),
					      json_pack("{s:s, s:I, s:b, s:b}", "name", name->str,
							"functions", (json_int_t)nfns,
							"this_version", mine,
							"deleted", prune && !mine));
		else if (prune && !mine)
			printf("%s  deleted\n", name->str);
		else
			printf("%s  %zu functions%s\n", name->str, nfns,
			       mine ? "  (this version's)" : "");
	}
	freeReplyObject(r);
	return ours;
}

int cmd_functions_list(const pb_args *a)
{
	int ours;

	(void)a;
	if (json_mode)
		json_object_set_new(answer, "libraries", json_array());
	ours = list_libraries(0);
	if (json_mode)
		json_object_set_new(answer, "this_version", json_string(PB_FN_LIBRARY_NAME));
	if (!ours)
		fprintf(stderr, "pbctl: this version's library %s is not loaded "
			"(pbctl functions load)\n", PB_FN_LIBRARY_NAME);
	return ours ? 0 : 1;
}

int cmd_functions_load(const pb_args *a)
{
	const char *load[] = { "FUNCTION", "LOAD", PB_FN_LIBRARY };
	redisReply *r = pb_redis_argv(&R, 3, load, NULL);
	int already = r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "already exists");

	if (already)
		freeReplyObject(r);
	else
		freeReplyObject(reply_or_die(r));
	if (json_mode) {
		json_object_set_new(answer, "library", json_string(PB_FN_LIBRARY_NAME));
		json_object_set_new(answer, "loaded", json_string(already ? "already" : "now"));
		json_object_set_new(answer, "libraries", json_array());
	} else {
		printf("%s  %s\n", PB_FN_LIBRARY_NAME, already ? "already loaded" : "loaded");
	}
	if (pb_args_has(a, "--prune"))
		list_libraries(1);
	return 0;
}
