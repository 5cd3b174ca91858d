/* The dead-letter record: what the agent writes, pbctl reads back. */
#include <stdlib.h>

#include "deadletter.h"
#include "pb.h"
#include "unit.h"

static void round_trip(void)
{
	static const char job[] = "1\tabc-0\t4\tG\thttp://x/{a}\t{\"a\":\"\\u00e9\"}";
	pb_dead in = { job, sizeof(job) - 1, "abc-0", 5, 503, "HTTP 503",
		       1795499631171LL, "agent1" }, out;
	json_t *owner;
	char *s = pb_dead_encode(&in);

	CHECK(s != NULL, "encode");
	if (s == NULL)
		return;
	CHECK(pb_dead_decode(&out, &owner, s, strlen(s)) == PB_OK, "%s", s);
	CHECK(out.job_len == in.job_len && memcmp(out.job, job, in.job_len) == 0,
	      "job");
	CHECK_STR(out.id, "abc-0");
	CHECK(out.attempts == 5 && out.status == 503, "numbers");
	CHECK(out.failed_at == 1795499631171LL, "time");
	CHECK_STR(out.error, "HTTP 503");
	CHECK_STR(out.agent, "agent1");
	json_decref(owner);
	free(s);
}

static void not_records(void)
{
	static const char *bad[] = {
		"", "not json", "[]", "{}",
		"{\"job\":\"j\",\"id\":\"i\",\"attempts\":1,\"status\":0,\"error\":\"\"}",
		/* job not a string */
		"{\"job\":1,\"id\":\"i\",\"attempts\":1,\"status\":0,\"error\":\"\",\"failed_at\":1,\"agent\":\"a\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *owner = (json_t *)1;
		pb_dead d;

		CHECK(pb_dead_decode(&d, &owner, bad[i], strlen(bad[i])) == PB_ERR_FORMAT,
		      "'%s'", bad[i]);
		CHECK(owner == NULL, "no owner for '%s'", bad[i]);
	}
}

void unit_tests(void)
{
	round_trip();
	not_records();
}
