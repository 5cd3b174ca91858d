#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"

void pb_buf_init(pb_buf *b, size_t limit)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->limit = limit;
	b->err = PB_OK;
}

void pb_buf_free(pb_buf *b)
{
	free(b->data);
	pb_buf_init(b, b->limit);
}

void pb_buf_reset(pb_buf *b)
{
	b->len = 0;
	b->err = PB_OK;
	if (b->data)
		b->data[0] = '\0';
}

int pb_buf_err(const pb_buf *b)
{
	return b->err;
}

int pb_buf_reserve(pb_buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (b->err != PB_OK)
		return b->err;
	if (n > SIZE_MAX / 2 - b->len ||
	    (b->limit && b->len + n > b->limit))
		return b->err = PB_ERR_LIMIT;
	need = b->len + n + 1;
	if (need <= b->cap)
		return PB_OK;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	if ((p = realloc(b->data, cap)) == NULL)
		return b->err = PB_ERR_NOMEM;
	b->data = p;
	b->cap = cap;
	return PB_OK;
}

int pb_buf_append(pb_buf *b, const void *p, size_t n)
{
	int rc = pb_buf_reserve(b, n);

	if (rc != PB_OK)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return PB_OK;
}

int pb_buf_puts(pb_buf *b, const char *s)
{
	return pb_buf_append(b, s, strlen(s));
}

int pb_buf_putc(pb_buf *b, char c)
{
	return pb_buf_append(b, &c, 1);
}

int pb_buf_vprintf(pb_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n, rc;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (b->err != PB_OK)
		return b->err;
	if (n < 0)
		return b->err = PB_ERR_FORMAT;
	if ((rc = pb_buf_reserve(b, (size_t)n)) != PB_OK)
		return rc;
	vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	b->len += (size_t)n;
	return PB_OK;
}

int pb_buf_printf(pb_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = pb_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

const char *pb_buf_str(const pb_buf *b)
{
	return b->data ? b->data : "";
}
