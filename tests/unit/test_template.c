/* Templating and percent-encoding, driven by golden/template.tsv. */
#include <stdlib.h>

#include "buf.h"
#include "pb.h"
#include "template.h"
#include "unit.h"

/* Split line into n tab-separated fields in place. */
/* JSON's \u escapes in a template field, so the file can stay ASCII. */
static char *unescape_template(const char *s)
{
	size_t n = strlen(s) + 3;
	char *quoted = malloc(n);
	json_t *v;
	char *out;

	snprintf(quoted, n, "\"%s\"", s);
	v = json_loads(quoted, JSON_DECODE_ANY, NULL);
	out = strdup(v ? json_string_value(v) : s);
	json_decref(v);
	free(quoted);
	return out;
}

/* golden/template.tsv: template, data, default, expected URL. */
static void golden_case(char **fld, void *ctx)
{
	char *tpl = unescape_template(fld[0]);
	json_t *data = json_loads(fld[1], 0, NULL);
	pb_buf out;

	(void)ctx;
	CHECK(data != NULL, "bad JSON in golden line: %s", fld[1]);
	pb_buf_init(&out, 0);
	CHECK(pb_template_fill(&out, tpl, strlen(tpl), data, fld[2]) == PB_OK, "fill %s",
	      fld[0]);
	CHECK_STR(pb_buf_str(&out), fld[3]);
	pb_buf_free(&out);
	free(tpl);
	json_decref(data);
}

static void golden_cases(void)
{
	int n = unit_golden_rows("template.tsv", 4, golden_case, NULL);

	CHECK(n >= 10, "only %d golden cases read", n);
}

static int unreserved(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

static void every_byte(void)
{
	char in[1], want[4];
	pb_buf out;
	int c;

	pb_buf_init(&out, 0);
	for (c = 0; c < 256; c++) {
		in[0] = (char)c;
		pb_buf_reset(&out);
		pb_percent_encode(&out, in, 1);
		if (unreserved(c)) {
			CHECK(out.len == 1 && out.data[0] == c, "byte %d kept", c);
		} else {
			snprintf(want, sizeof(want), "%%%02X", c);
			CHECK_STR(pb_buf_str(&out), want);
		}
	}
	pb_buf_free(&out);
}

static void limits(void)
{
	json_t *data = json_pack("{s:s}", "a", "0123456789");
	pb_buf out;

	/* The output bound holds: a fill that would pass it fails cleanly. */
	pb_buf_init(&out, 16);
	CHECK(pb_template_fill(&out, "http://x/{a}{a}", 15, data, "") == PB_ERR_LIMIT,
	      "bounded output");
	pb_buf_free(&out);
	/* Objects and arrays are not scalars. */
	json_object_set_new(data, "o", json_object());
	pb_buf_init(&out, 0);
	CHECK(pb_template_fill(&out, "{o}", 3, data, "") == PB_ERR_FORMAT,
	      "object value refused");
	pb_buf_free(&out);
	json_decref(data);
}

void unit_tests(void)
{
	golden_cases();
	every_byte();
	limits();
}
