/*
 * template.h - fill an endpoint URL template from one data object.
 *
 * Each {key} in the template is replaced by the data object's value for key,
 * percent-encoded as RFC 3986 says (unreserved characters A-Z a-z 0-9 - . _ ~
 * stay, every other byte becomes %XX in upper case). Strings are used as
 * they are, numbers and booleans as their JSON text; a missing key or a null
 * value gets the configured default. A '{' without a closing '}' is text.
 */
#ifndef PB_TEMPLATE_H
#define PB_TEMPLATE_H

#include <jansson.h>

#include "buf.h"

/* Append s[0..n) to out, percent-encoded. */
int pb_percent_encode(pb_buf *out, const char *s, size_t n);

/*
 * The text a scalar stands for in a URL, written to out (not encoded).
 * Returns PB_ERR_NOTFOUND for null (the caller uses its default) and
 * PB_ERR_FORMAT for an object or array.
 */
int pb_scalar_text(pb_buf *out, const json_t *v);

/* Append the filled template to out. dflt replaces missing and null keys. */
int pb_template_fill(pb_buf *out, const char *tpl, size_t tpl_len,
		     const json_t *data, const char *dflt);

#endif
