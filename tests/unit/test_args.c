/* pbctl's argument parser (apps/ctl/args.h): a table of command lines, each
 * with what it must read as or the error it must give. */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "pb.h"
#include "unit.h"

#define NOW 1800000000000LL /* 2027-01-15T08:00:00Z */

static const pb_cmd cmds[] = {
	{ .name = "status", .synopsis = "", .help = "status" },
	{ .name = "dead list", .dflt = 1, .synopsis = "[N]", .max_pos = 1, .help = "list",
	  .opts = { { "--dest", PB_OPT_STR, 0, 0, "DEST", "d" },
		    { "--since", PB_OPT_TIME, 0, 0, "TIME", "s" } } },
	{ .name = "dead replay", .synopsis = "ID|--all", .max_pos = 1, .help = "replay",
	  .opts = { { "--all", PB_OPT_FLAG, 0, 0, NULL, "all" } } },
	{ .name = "drain", .synopsis = "", .help = "drain",
	  .opts = { { "--timeout", PB_OPT_NUM, 1, 86400, "S", "t" } } },
	{ .name = "keys add", .synopsis = "NAME", .min_pos = 1, .max_pos = 1, .help = "add" },
	{ .name = "keys list", .synopsis = "", .help = "list" },
	{ .name = "show", .synopsis = "ID", .min_pos = 1, .max_pos = 1, .help = "show" },
};

/* A command line, split at spaces, and what it must give: the command
 * found ("" none), and then the parse: "ok" and what to check, or the
 * start of the error. */
static const struct {
	const char *line, *cmd, *want;
} cases[] = {
	{ "status", "status", "ok" },
	{ "status --json", "status", "ok json" },
	{ "status --help", "status", "ok help" },
	{ "status extra", "status", "pbctl status: unexpected argument 'extra'" },
	{ "status --nope", "status", "pbctl status: unknown option '--nope'" },
	{ "status --json=1", "status", "--json takes no value" },
	{ "dead", "dead list", "ok" },
	{ "dead --json", "dead list", "ok json" },
	{ "dead list 5", "dead list", "ok pos0=5" },
	{ "dead list --dest=http://a.example/", "dead list", "ok --dest=http://a.example/" },
	{ "dead list --dest http://a.example/", "dead list", "ok --dest=http://a.example/" },
	{ "dead list --dest", "dead list", "--dest needs a value (DEST)" },
	{ "dead list --since 2h", "dead list", "ok --since@1799992800000" },
	{ "dead list --since=2027-01-15T07:00:00Z", "dead list", "ok --since@1799996400000" },
	{ "dead list --since 2x", "dead list", "--since takes a time ago" },
	{ "dead list --since 2027-01-15", "dead list", "--since takes a time ago" },
	{ "dead list 1 2", "dead list", "pbctl dead list: unexpected argument '2'" },
	{ "dead replay --all", "dead replay", "ok --all" },
	{ "dead replay -- --all", "dead replay", "ok pos0=--all" },
	{ "dead nope", "", "unknown command 'dead nope'" },
	{ "drain --timeout=60", "drain", "ok --timeout#60" },
	{ "drain --timeout 60", "drain", "ok --timeout#60" },
	{ "drain --timeout 0", "drain", "--timeout takes 1 to 86400, not '0'" },
	{ "drain --timeout=x", "drain", "--timeout takes 1 to 86400, not 'x'" },
	{ "keys add", "keys add", "pbctl keys add needs NAME" },
	{ "keys add --help", "keys add", "ok help" },
	{ "keys add bob", "keys add", "ok pos0=bob" },
	{ "keys", "", "'keys' needs one of its commands" },
	{ "keys --help", "keys add", "ok help" },
	{ "show", "show", "pbctl show needs ID" },
	{ "nope", "", "unknown command 'nope'" },
};

/* Check one "ok ..." expectation word against a. */
static void expect(const pb_args *a, const char *line, const char *w)
{
	char name[32];
	const char *v;

	if (!strcmp(w, "json")) {
		CHECK(a->json, "%s: --json", line);
	} else if (!strcmp(w, "help")) {
		CHECK(a->help, "%s: --help", line);
	} else if (!strncmp(w, "pos0=", 5)) {
		CHECK(a->npos == 1 && !strcmp(a->pos[0], w + 5), "%s: %s", line, w);
	} else if ((v = strpbrk(w, "=#@")) != NULL) {
		snprintf(name, sizeof(name), "%.*s", (int)(v - w), w);
		if (*v == '=')
			CHECK(!strcmp(pb_args_str(a, name, ""), v + 1), "%s: %s", line, w);
		else
			CHECK(pb_args_num(a, name, -1) == strtoll(v + 1, NULL, 10),
			      "%s: %s got %lld", line, w, pb_args_num(a, name, -1));
	} else {
		CHECK(pb_args_has(a, w), "%s: %s", line, w);
	}
}

static void one(const char *line, const char *cmd, const char *want)
{
	char buf[256], words[256], err[256] = "", *argv[16], *w, *save;
	const pb_cmd *c;
	pb_args a;
	int argc = 0, used = 0, rc;

	pb_strlcpy(buf, line, sizeof(buf));
	for (w = strtok_r(buf, " ", &save); w && argc < 16; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	c = pb_args_find(cmds, PB_ARRAY_LEN(cmds), argc, argv, &used, err, sizeof(err));
	if (!cmd[0]) {
		CHECK(c == NULL && strstr(err, want) == err, "%s: got '%s'", line, err);
		return;
	}
	CHECK(c != NULL && !strcmp(c->name, cmd), "%s: found %s (%s)", line,
	      c ? c->name : "none", err);
	if (c == NULL)
		return;
	rc = pb_args_parse(&a, c, argc - used, argv + used, NOW);
	if (strncmp(want, "ok", 2) != 0) {
		CHECK(rc == PB_ERR_FORMAT && strstr(a.errstr, want) == a.errstr,
		      "%s: got '%s', want '%s'", line, a.errstr, want);
		return;
	}
	CHECK(rc == PB_OK, "%s: %s", line, a.errstr);
	pb_strlcpy(words, want, sizeof(words)); /* argv stays in buf: a points into it */
	for (w = strtok_r(words + 2, " ", &save); w; w = strtok_r(NULL, " ", &save))
		expect(&a, line, w);
}

static void help_lists_options(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	pb_args_help_group(cmds, PB_ARRAY_LEN(cmds), &cmds[1], f);
	fclose(f);
	CHECK(strstr(text, "usage: pbctl dead list [N] [options]") != NULL, "%s", text);
	CHECK(strstr(text, "usage: pbctl dead replay ID|--all") != NULL, "%s", text);
	CHECK(strstr(text, "--dest DEST") != NULL, "%s", text);
	CHECK(strstr(text, "usage: pbctl drain") == NULL, "%s", text);
	free(text);
}

void unit_tests(void)
{
	size_t i;

	for (i = 0; i < PB_ARRAY_LEN(cases); i++)
		one(cases[i].line, cases[i].cmd, cases[i].want);
	help_lists_options();
}
