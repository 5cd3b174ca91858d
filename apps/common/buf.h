/*
 * buf.h - a growable byte buffer with an upper bound.
 *
 * Every string the programs build (URLs, job payloads, JSON answers, log
 * lines) goes through pb_buf so that no code writes past an array and no
 * input can make a buffer grow without limit. The data is always
 * NUL-terminated, so it can be used as a C string when it holds text.
 *
 * The first failure of an append (the limit, out of memory) is sticky, as
 * in curl's dynbuf: later appends do nothing and return it, so a caller
 * building a text from many pieces checks pb_buf_err() once at the end.
 */
#ifndef PB_BUF_H
#define PB_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct pb_buf {
	char *data;   /* NUL-terminated; NULL until the first append */
	size_t len;   /* bytes in use, without the terminating NUL */
	size_t cap;   /* bytes allocated, with room for the NUL */
	size_t limit; /* most bytes len may reach; 0 means no bound */
	int err;      /* PB_OK, or the first append's failure until a reset */
} pb_buf;

void pb_buf_init(pb_buf *b, size_t limit);
void pb_buf_free(pb_buf *b);
/* Forget the contents and any failure, keep the allocation. */
void pb_buf_reset(pb_buf *b);
/* PB_OK, or why an append since the last init or reset failed. */
int pb_buf_err(const pb_buf *b);
/* Make room for n more bytes. PB_ERR_LIMIT past b->limit, PB_ERR_NOMEM. */
int pb_buf_reserve(pb_buf *b, size_t n);
int pb_buf_append(pb_buf *b, const void *p, size_t n);
int pb_buf_puts(pb_buf *b, const char *s);
int pb_buf_putc(pb_buf *b, char c);
int pb_buf_printf(pb_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int pb_buf_vprintf(pb_buf *b, const char *fmt, va_list ap);
/* The contents as a C string ("" when empty). */
const char *pb_buf_str(const pb_buf *b);

#endif
