#include "shard.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pb.h"

static int name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

int pb_shards_parse(pb_shards *s, const char *list, char *err, size_t errlen)
{
	const char *p = list;
	int i;

	memset(s, 0, sizeof(*s));
	for (;;) {
		size_t len = strcspn(p, ",");

		if (len == 0 || len > PB_SHARD_NAME_MAX) {
			snprintf(err, errlen, "master_name '%s': each name must be 1 to "
				 "%d characters", list, PB_SHARD_NAME_MAX);
			return PB_ERR_FORMAT;
		}
		if (s->n == PB_MAX_SHARDS) {
			snprintf(err, errlen, "master_name '%s': more than %d shards",
				 list, PB_MAX_SHARDS);
			return PB_ERR_FORMAT;
		}
		for (i = 0; i < (int)len; i++)
			if (!name_char(p[i])) {
				snprintf(err, errlen, "master_name '%s': '%c' in a name "
					 "(letters, digits, '-', '_', '.')", list, p[i]);
				return PB_ERR_FORMAT;
			}
		memcpy(s->name[s->n], p, len);
		s->name[s->n][len] = '\0';
		if (pb_shard_find(s, s->name[s->n]) >= 0) {
			snprintf(err, errlen, "master_name '%s': '%s' twice", list,
				 s->name[s->n]);
			return PB_ERR_FORMAT;
		}
		s->n++;
		if (p[len] == '\0')
			return PB_OK;
		p += len + 1;
	}
}

int pb_shards_close(pb_shards *s, const char *list, char *err, size_t errlen)
{
	char name[PB_SHARD_NAME_MAX + 1];
	const char *p = list;
	int i;

	memset(s->closed, 0, sizeof(s->closed));
	while (*p) {
		size_t len = strcspn(p, ",");

		if (len == 0 || len > PB_SHARD_NAME_MAX) {
			snprintf(err, errlen, "closed_shards '%s': each name must be 1 "
				 "to %d characters", list, PB_SHARD_NAME_MAX);
			return PB_ERR_FORMAT;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		if ((i = pb_shard_find(s, name)) < 0) {
			snprintf(err, errlen, "closed_shards: '%s' is not in master_name",
				 name);
			return PB_ERR_FORMAT;
		}
		if (i == 0) {
			snprintf(err, errlen, "closed_shards: '%s' is the first shard, "
				 "which holds the cluster-wide keys: it cannot be closed",
				 name);
			return PB_ERR_FORMAT;
		}
		s->closed[i] = 1;
		p += len + (p[len] == ',');
		if (p[-1] == ',' && *p == '\0') {
			snprintf(err, errlen, "closed_shards '%s': a name after the last ','",
				 list);
			return PB_ERR_FORMAT;
		}
	}
	return PB_OK;
}

int pb_shard_find(const pb_shards *s, const char *name)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0)
			return i;
	return -1;
}

/* FNV-1a, 64 bits, continued from h. */
static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
	const unsigned char *b = data;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* A 64-bit finalizer (MurmurHash3's): FNV's low bits alone mix poorly. */
static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

int pb_shard_home(const pb_shards *s, const char *key, size_t len)
{
	uint64_t best = 0, w;
	int i, home = 0;

	for (i = 0; i < s->n; i++) {
		if (s->closed[i])
			continue;
		w = fnv(0xcbf29ce484222325ULL, s->name[i], strlen(s->name[i]));
		w = mix(fnv(w ^ 0xff, key, len));
		if (i == 0 || w > best)
			best = w, home = i;
	}
	return home;
}
