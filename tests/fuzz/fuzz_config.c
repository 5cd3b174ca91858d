/*
 * A settings file (or a rendered template gone wrong), read by the table
 * every program uses. Invariant: no crash, no read past the text; a file
 * that loads prints settings that load again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "pb.h"

static int load(pb_config *cfg, const char *path)
{
	char err[512];

	pb_config_defaults(cfg, PB_FOR_ALL);
	return pb_config_read_file(cfg, PB_FOR_ALL, path, err, sizeof(err));
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	char path[] = "/tmp/pb-fuzz-config-XXXXXX";
	int fd = mkstemp(path);
	pb_config cfg, again;
	FILE *f;

	if (fd < 0)
		return 0;
	if (write(fd, in, n) == (ssize_t)n && load(&cfg, path) == PB_OK &&
	    (f = fopen(path, "w")) != NULL) {
		pb_config_print(&cfg, PB_FOR_ALL, f);
		fclose(f);
		if (load(&again, path) != PB_OK)
			abort();
	}
	close(fd);
	unlink(path);
	return 0;
}
