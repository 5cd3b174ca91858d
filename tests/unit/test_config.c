/* The configuration table: defaults, bounds, files, command lines. */
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "defaults.h" /* generated: build/gen/defaults.h */
#include "pb.h"
#include "unit.h"

static void defaults_and_set(void)
{
	pb_config c;
	char err[256];

	CHECK(pb_config_defaults(&c, PB_FOR_ALL) == PB_OK, "defaults");
	CHECK(c.max_body_bytes == 1048576, "default body limit %ld", c.max_body_bytes);
	CHECK(c.wait_replicas == 1 && c.max_attempts == strtol(PB_DEF_max_attempts, NULL, 10),
	      "defaults");
	CHECK_STR(c.master_name, "pbmaster");
	CHECK(pb_config_set(&c, PB_FOR_INGEST, "max_queue_size", "10", err,
			    sizeof(err)) == PB_OK && c.max_queue_size == 10, "set");
	CHECK(pb_config_set(&c, PB_FOR_INGEST, "max-queue-size", "11", err,
			    sizeof(err)) == PB_OK && c.max_queue_size == 11, "dashes");
	CHECK(pb_config_set(&c, PB_FOR_INGEST, "threads", "0", err, sizeof(err)) ==
	      PB_ERR_LIMIT, "below min");
	CHECK(strstr(err, "threads: 0 is outside 1..1024") != NULL, "%s", err);
	CHECK(pb_config_set(&c, PB_FOR_INGEST, "threads", "4x", err, sizeof(err)) ==
	      PB_ERR_FORMAT, "not a number");
	CHECK(pb_config_set(&c, PB_FOR_INGEST, "concurrency", "4", err, sizeof(err)) ==
	      PB_ERR_NOTFOUND, "agent setting refused by ingest");
	CHECK(pb_config_set(&c, PB_FOR_AGENT, "allow_private", "maybe", err,
			    sizeof(err)) == PB_ERR_FORMAT, "bool");
	CHECK(pb_config_set(&c, PB_FOR_AGENT, "allow_private", "yes", err,
			    sizeof(err)) == PB_OK && c.allow_private == 1, "bool yes");
}

static const char *write_tmp(const char *text)
{
	static char path[] = "/tmp/pb-unit-config-XXXXXX";
	int fd;

	strcpy(path + sizeof(path) - 7, "XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return NULL;
	close(fd);
	return path;
}

static void files(void)
{
	pb_config c;
	char err[512];
	const char *p;

	pb_config_defaults(&c, PB_FOR_ALL);
	p = write_tmp("# comment\n\n  unmatched_default = \" x \"  \n"
		      "max_attempts=7\nsentinels = h1:1,h2:2\n");
	CHECK(pb_config_read_file(&c, PB_FOR_AGENT, p, err, sizeof(err)) == PB_OK,
	      "read: %s", err);
	CHECK_STR(c.unmatched_default, " x ");
	CHECK(c.max_attempts == 7, "max_attempts %ld", c.max_attempts);
	CHECK_STR(c.sentinels, "h1:1,h2:2");
	unlink(p);
	p = write_tmp("max_attempts = 7\nbogus = 1\n");
	CHECK(pb_config_read_file(&c, PB_FOR_AGENT, p, err, sizeof(err)) ==
	      PB_ERR_NOTFOUND, "unknown setting");
	CHECK(strstr(err, ":2: unknown setting 'bogus'") != NULL, "%s", err);
	unlink(p);
	p = write_tmp("max_attempts\n");
	CHECK(pb_config_read_file(&c, PB_FOR_AGENT, p, err, sizeof(err)) ==
	      PB_ERR_FORMAT, "no equals sign");
	unlink(p);
	CHECK(pb_config_read_file(&c, PB_FOR_AGENT, "/nonexistent/x", err,
				  sizeof(err)) == PB_ERR_IO, "missing file");
}

static void command_line(void)
{
	char *argv[] = { "pb-agent", "--max-attempts=3", "--concurrency", "9",
			 "--allow_private=yes", NULL };
	char *bad[] = { "pb-agent", "--no-such=1", NULL };
	char *missing[] = { "pb-agent", "--concurrency", NULL };
	pb_config c;
	int pos;

	CHECK(pb_config_load(&c, PB_FOR_AGENT, "pb-agent", "", 5, argv, &pos, NULL) ==
	      PB_CONFIG_RUN, "load");
	CHECK(c.max_attempts == 3 && c.concurrency == 9 && c.allow_private,
	      "overrides");
	CHECK(pos == 5, "no positional args: %d", pos);
	CHECK(pb_config_load(&c, PB_FOR_AGENT, "pb-agent", "", 2, bad, &pos, NULL) ==
	      PB_CONFIG_ERR, "unknown option");
	CHECK(pb_config_load(&c, PB_FOR_AGENT, "pb-agent", "", 2, missing, &pos, NULL) ==
	      PB_CONFIG_ERR, "missing value");
}

/* A default file is read only when no -c names one; the command line wins. */
static void default_file(void)
{
	char p[64], q[64], copt[300];
	char *plain[] = { "pbctl", NULL };
	char *over[] = { "pbctl", "--max-attempts=2", NULL };
	char *named[] = { "pbctl", copt, NULL };
	pb_config c;
	int pos;

	/* write_tmp's answer is its static buffer: keep a copy of each. */
	snprintf(p, sizeof(p), "%s", write_tmp("max_attempts = 7\n"));
	snprintf(q, sizeof(q), "%s", write_tmp("max_attempts = 8\n"));
	snprintf(copt, sizeof(copt), "--config=%s", q);
	CHECK(pb_config_load(&c, PB_FOR_AGENT, "pb-agent", "", 1, plain, &pos, p) ==
	      PB_CONFIG_RUN && c.max_attempts == 7, "default file read");
	CHECK(pb_config_load(&c, PB_FOR_AGENT, "pb-agent", "", 2, over, &pos, p) ==
	      PB_CONFIG_RUN && c.max_attempts == 2, "command line over default file");
	CHECK(pb_config_load(&c, PB_FOR_AGENT, "pb-agent", "", 2, named, &pos, p) ==
	      PB_CONFIG_RUN && c.max_attempts == 8, "-c instead of the default file");
	CHECK(pb_config_load(&c, PB_FOR_AGENT, "pb-agent", "", 1, plain, &pos, NULL) ==
	      PB_CONFIG_RUN && c.max_attempts == strtol(PB_DEF_max_attempts, NULL, 10),
	      "no default file");
	unlink(p);
	unlink(q);
}

void unit_tests(void)
{
	defaults_and_set();
	files();
	command_line();
	default_file();
}
