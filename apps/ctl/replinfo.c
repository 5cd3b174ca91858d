#include "replinfo.h"

#include <limits.h>
#include <string.h>

#include "pb.h"

/* The value of name= in a "k=v,k=v" list, copied into out[0..n). */
static int field(const char *list, const char *name, char *out, size_t n)
{
	size_t nlen = strlen(name), vlen;
	const char *p = list;

	while (p && strncmp(p, name, nlen) != 0) {
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	if (p == NULL || p[nlen] != '=')
		return PB_ERR_FORMAT;
	p += nlen + 1;
	vlen = strcspn(p, ",\r\n");
	if (vlen >= n)
		return PB_ERR_LIMIT;
	memcpy(out, p, vlen);
	out[vlen] = '\0';
	return PB_OK;
}

static int long_field(const char *list, const char *name, long *out)
{
	char v[32];

	if (field(list, name, v, sizeof(v)) != PB_OK)
		return PB_ERR_FORMAT;
	return pb_parse_long(v, 0, LONG_MAX, out);
}

static int parse_replica(const char *list, pb_replica_info *r)
{
	if (field(list, "ip", r->ip, sizeof(r->ip)) != PB_OK ||
	    long_field(list, "port", &r->port) != PB_OK ||
	    field(list, "state", r->state, sizeof(r->state)) != PB_OK ||
	    long_field(list, "offset", &r->offset) != PB_OK ||
	    long_field(list, "lag", &r->lag) != PB_OK)
		return PB_ERR_FORMAT;
	return PB_OK;
}

int pb_repl_info_parse(const char *text, pb_repl_info *out)
{
	const char *line, *end;

	memset(out, 0, sizeof(*out));
	if (pb_info_field(text, "master_repl_offset", &out->master_offset) != PB_OK)
		return PB_ERR_FORMAT;
	for (line = text; *line; line = *end ? end + 1 : end) {
		size_t len;

		end = line + strcspn(line, "\n");
		len = (size_t)(end - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (!strncmp(line, "slave", 5) && line[5] >= '0' && line[5] <= '9' &&
		    memchr(line, ':', len) && out->nreplicas < PB_REPLICAS_MAX) {
			const char *list = (const char *)memchr(line, ':', len) + 1;

			if (parse_replica(list, &out->replicas[out->nreplicas]) != PB_OK)
				return PB_ERR_FORMAT;
			out->nreplicas++;
		}
	}
	return PB_OK;
}

long pb_repl_info_behind(const pb_repl_info *info)
{
	long least = -1;
	int i;

	for (i = 0; i < info->nreplicas; i++)
		if (!strcmp(info->replicas[i].state, "online") &&
		    (least < 0 || info->replicas[i].offset < least))
			least = info->replicas[i].offset;
	return least < 0 ? -1 : info->master_offset - least;
}
