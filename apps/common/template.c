#include "template.h"

#include <string.h>

#include "pb.h"

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

int pb_percent_encode(pb_buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;
	int rc;

	/* Worst case every byte triples: reserve once, then write. */
	if ((rc = pb_buf_reserve(out, n * 3)) != PB_OK)
		return rc;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c)) {
			out->data[out->len++] = (char)c;
		} else {
			out->data[out->len++] = '%';
			out->data[out->len++] = hex[c >> 4];
			out->data[out->len++] = hex[c & 15];
		}
	}
	out->data[out->len] = '\0';
	return PB_OK;
}

int pb_scalar_text(pb_buf *out, const json_t *v)
{
	char tmp[64];
	size_t n;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return pb_buf_append(out, json_string_value(v),
				     json_string_length(v));
	case JSON_INTEGER:
	case JSON_REAL:
	case JSON_TRUE:
	case JSON_FALSE:
		/* Exactly the JSON text jansson writes for the value. */
		n = json_dumpb(v, tmp, sizeof(tmp), JSON_ENCODE_ANY);
		if (n == 0 || n > sizeof(tmp))
			return PB_ERR_FORMAT;
		return pb_buf_append(out, tmp, n);
	case JSON_NULL:
		return PB_ERR_NOTFOUND;
	default:
		return PB_ERR_FORMAT;
	}
}

/* Append the encoded value of data[key], or the encoded default. */
static int fill_one(pb_buf *out, pb_buf *scratch, const char *key,
		    size_t keylen, const json_t *data, const char *dflt)
{
	const json_t *v = json_object_getn(data, key, keylen);
	int rc;

	pb_buf_reset(scratch);
	rc = v ? pb_scalar_text(scratch, v) : PB_ERR_NOTFOUND;
	if (rc == PB_ERR_NOTFOUND)
		return pb_percent_encode(out, dflt, strlen(dflt));
	if (rc != PB_OK)
		return rc;
	return pb_percent_encode(out, scratch->data, scratch->len);
}

int pb_template_fill(pb_buf *out, const char *tpl, size_t tpl_len,
		     const json_t *data, const char *dflt)
{
	pb_buf scratch;
	size_t i = 0;
	int rc = PB_OK;

	pb_buf_init(&scratch, out->limit);
	while (i < tpl_len && rc == PB_OK) {
		const char *open = memchr(tpl + i, '{', tpl_len - i);
		const char *close;

		if (open == NULL) {
			rc = pb_buf_append(out, tpl + i, tpl_len - i);
			break;
		}
		close = memchr(open + 1, '}', (size_t)(tpl + tpl_len - open - 1));
		if (close == NULL) {
			rc = pb_buf_append(out, tpl + i, tpl_len - i);
			break;
		}
		/* "{a{b}": the placeholder is the innermost {b}. */
		const char *inner = open;
		for (const char *p = open + 1; p < close; p++)
			if (*p == '{')
				inner = p;
		rc = pb_buf_append(out, tpl + i, (size_t)(inner - (tpl + i)));
		if (rc == PB_OK)
			rc = fill_one(out, &scratch, inner + 1,
				      (size_t)(close - inner - 1), data, dflt);
		i = (size_t)(close - tpl) + 1;
	}
	pb_buf_free(&scratch);
	return rc;
}
