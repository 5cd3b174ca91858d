/*
 * idset.h - a set of postback ids with a count each (open addressing).
 * Counts acknowledged ids against delivered ones, exactly, at bench speed.
 */
#ifndef PB_IDSET_H
#define PB_IDSET_H

#include <stddef.h>

typedef struct pb_idset {
	char **keys;
	unsigned *counts;
	size_t cap, len;
} pb_idset;

void pb_idset_init(pb_idset *s);
void pb_idset_free(pb_idset *s);
/* Add one occurrence of id[0..n); returns its count after, or 0 on OOM. */
unsigned pb_idset_add(pb_idset *s, const char *id, size_t n);
/* Its count (0: absent). */
unsigned pb_idset_count(const pb_idset *s, const char *id, size_t n);

#endif
