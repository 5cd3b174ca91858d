/* A destination's policy: its text read, checked, written (policy.h), and
 * what an attempt's result becomes under it (retry.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pb.h"
#include "policy.h"
#include "retry.h"
#include "unit.h"

static pb_policy defaults(void)
{
	pb_policy d = { .backoff_base_ms = 1000, .backoff_cap_ms = 300000,
			.retry_on = PB_FAIL_ALL, .timeout_ms = 10000, .max_attempts = 5,
			.max_age_s = 86400 };

	return d;
}

/* One golden row: lines "|"-separated, then the text written or "error". */
static void row(char **f, void *ctx)
{
	pb_policy d = defaults(), p = d;
	char lines[1024], err[256] = "", *line, *save = NULL;
	int rc = PB_OK;
	pb_buf out;

	(void)ctx;
	pb_strlcpy(lines, f[0], sizeof(lines));
	for (line = strtok_r(lines, "|", &save); line && rc == PB_OK;
	     line = strtok_r(NULL, "|", &save))
		rc = pb_policy_assign(&p, &d, line, strlen(line), err, sizeof(err));
	if (strcmp(f[1], "error") == 0) {
		CHECK(rc != PB_OK && strstr(err, f[2]) != NULL, "%s: rc %d, error \"%s\"",
		      f[0], rc, err);
		return;
	}
	CHECK(rc == PB_OK, "%s: %s", f[0], err);
	pb_buf_init(&out, PB_POLICY_TEXT_MAX);
	pb_policy_write(&p, &out, 1);
	{
		char want[1024];
		size_t i;

		pb_strlcpy(want, f[1], sizeof(want));
		for (i = 0; want[i]; i++)
			if (want[i] == '|')
				want[i] = '\n';
		if (want[0])
			strcat(want, "\n");
		CHECK_STR(pb_buf_str(&out), want);
	}
	pb_buf_free(&out);
}

/* What is stored reads back the same, secrets and all; unset fields keep
 * the defaults. */
static void round_trip(void)
{
	pb_policy d = defaults(), p = d, q = d;
	static const char text[] = "schedule=10s,1m\nretry_on=5xx\nheader=X-Token: s3cret\n";
	char err[256];
	pb_buf out;

	CHECK(pb_policy_read(&p, &d, text, strlen(text), err, sizeof(err)) == PB_OK, "%s", err);
	pb_buf_init(&out, PB_POLICY_TEXT_MAX);
	pb_policy_write(&p, &out, 0);
	CHECK_STR(pb_buf_str(&out), text);
	CHECK(pb_policy_read(&q, &d, out.data, out.len, err, sizeof(err)) == PB_OK, "%s", err);
	CHECK(q.n_schedule == 2 && q.schedule_ms[1] == 60000 && q.retry_on == PB_FAIL_5XX &&
	      q.max_attempts == 5 && q.timeout_ms == 10000 && q.n_headers == 1 &&
	      strcmp(q.headers[0], "X-Token: s3cret") == 0, "read back");
	pb_buf_free(&out);
	CHECK(pb_policy_read(&q, &d, text, PB_POLICY_TEXT_MAX + 1, err, sizeof(err)) ==
	      PB_ERR_LIMIT, "too long");
}

static void outcomes(void)
{
	static const struct {
		const char *lines;
		long status;
		int ok, timed_out;
		unsigned attempts;
		enum pb_outcome want;
		int park;
	} cases[] = {
		{ "", 503, 1, 0, 1, PB_RETRY, 0 },
		{ "", 503, 1, 0, 5, PB_DEAD, 0 },           /* the 5th of max_attempts 5 */
		{ "max_attempts=8", 503, 1, 0, 5, PB_RETRY, 0 },
		{ "", 0, 0, 1, 1, PB_RETRY, 0 },
		{ "retry_on=5xx", 0, 0, 1, 1, PB_DEAD, 0 },  /* a timeout, not retried */
		{ "retry_on=5xx", 0, 0, 0, 1, PB_DEAD, 0 },  /* nor a connect error */
		{ "retry_on=5xx", 502, 1, 0, 1, PB_RETRY, 0 },
		{ "retry_on=timeout", 0, 0, 1, 1, PB_RETRY, 0 },
		{ "retry_on=connect", 0, 0, 1, 1, PB_DEAD, 0 },
		{ "retry_on=429", 429, 1, 0, 1, PB_RETRY, 0 },
		{ "retry_on=5xx", 429, 1, 0, 1, PB_DEAD, 0 },
		{ "retry_on=none", 500, 1, 0, 1, PB_DEAD, 0 },
		{ "", 200, 1, 0, 1, PB_DELIVERED, 0 },
		{ "retry_on=none", 204, 1, 0, 1, PB_DELIVERED, 0 },
		{ "", 404, 1, 0, 1, PB_DEAD, 0 },
		{ "", 410, 1, 0, 1, PB_RETRY, 1 },           /* park: the default */
		{ "", 410, 1, 0, 50, PB_RETRY, 1 },          /* whatever its attempts */
		{ "on_410=dead", 410, 1, 0, 1, PB_DEAD, 0 },
		{ "", 301, 1, 0, 1, PB_DEAD, 0 },            /* redirects: final */
	};
	size_t i;

	for (i = 0; i < PB_ARRAY_LEN(cases); i++) {
		pb_policy d = defaults(), p = d;
		char err[256];
		int park = -1;

		CHECK(pb_policy_read(&p, &d, cases[i].lines, strlen(cases[i].lines), err,
				     sizeof(err)) == PB_OK, "%s", err);
		CHECK(pb_policy_outcome(&p, cases[i].status, cases[i].ok, cases[i].timed_out, 0,
					cases[i].attempts, &park) == cases[i].want &&
		      park == cases[i].park, "%s: status %ld ok %d timed out %d attempt %u",
		      cases[i].lines, cases[i].status, cases[i].ok, cases[i].timed_out,
		      cases[i].attempts);
	}
	{
		pb_policy d = defaults();
		int park;

		CHECK(pb_policy_outcome(&d, 0, 0, 0, 1, 1, &park) == PB_DEAD && !park,
		      "refused by the address policy: final");
	}
}

static void delays(void)
{
	pb_policy d = defaults(), p = d;
	char err[256];
	static const char text[] = "schedule=10s,1m,15m";

	CHECK(pb_policy_read(&p, &d, text, strlen(text), err, sizeof(err)) == PB_OK, "%s", err);
	/* Within 10 % of each delay: the lowest and highest draws. */
	CHECK(pb_policy_delay_ms(&p, 1, 0, 0) == 9000, "first, lowest");
	CHECK(pb_policy_delay_ms(&p, 1, 0, 2000) == 11000, "first, highest");
	CHECK(pb_policy_delay_ms(&p, 2, 0, 6000) == 60000, "second, middle");
	CHECK(pb_policy_delay_ms(&p, 3, 0, 0) == 810000, "third");
	CHECK(pb_policy_delay_ms(&p, 9, 0, 0) == 810000, "the last repeats");
	CHECK(pb_policy_delay_ms(&p, 1, 30000, 0) == 30000, "retry-after floor");
	/* No schedule: the backoff's full jitter. */
	CHECK(pb_policy_delay_ms(&d, 3, 0, 4000) == 4000, "backoff");
}

void unit_tests(void)
{
	CHECK(unit_golden_rows("policy.tsv", 3, row, NULL) > 20, "rows");
	round_trip();
	outcomes();
	delays();
}
