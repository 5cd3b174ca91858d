#include "idset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	return h;
}

void pb_idset_init(pb_idset *s)
{
	memset(s, 0, sizeof(*s));
}

void pb_idset_free(pb_idset *s)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		free(s->keys[i]);
	free(s->keys);
	free(s->counts);
	pb_idset_init(s);
}

static size_t slot(char **keys, size_t cap, const char *id, size_t n)
{
	size_t i = (size_t)hash(id, n) & (cap - 1);

	while (keys[i] && (strlen(keys[i]) != n || memcmp(keys[i], id, n) != 0))
		i = (i + 1) & (cap - 1);
	return i;
}

static int grow(pb_idset *s)
{
	size_t cap = s->cap ? s->cap * 2 : 1024, i;
	char **keys = calloc(cap, sizeof(*keys));
	unsigned *counts = calloc(cap, sizeof(*counts));

	if (keys == NULL || counts == NULL) {
		free(keys);
		free(counts);
		return -1;
	}
	for (i = 0; i < s->cap; i++) {
		if (s->keys[i]) {
			size_t j = slot(keys, cap, s->keys[i], strlen(s->keys[i]));
			keys[j] = s->keys[i];
			counts[j] = s->counts[i];
		}
	}
	free(s->keys);
	free(s->counts);
	s->keys = keys;
	s->counts = counts;
	s->cap = cap;
	return 0;
}

unsigned pb_idset_add(pb_idset *s, const char *id, size_t n)
{
	size_t i;

	if ((s->len + 1) * 2 > s->cap && grow(s) != 0)
		return 0;
	i = slot(s->keys, s->cap, id, n);
	if (s->keys[i] == NULL) {
		if ((s->keys[i] = strndup(id, n)) == NULL)
			return 0;
		s->len++;
	}
	return ++s->counts[i];
}

unsigned pb_idset_count(const pb_idset *s, const char *id, size_t n)
{
	size_t i;

	if (s->cap == 0)
		return 0;
	i = slot(s->keys, s->cap, id, n);
	return s->keys[i] ? s->counts[i] : 0;
}
