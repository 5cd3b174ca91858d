/* Outcome classification and backoff. */
#include "retry.h"
#include "unit.h"

static void classify(void)
{
	static const struct { long status; int ok, refused; enum pb_outcome want; } cases[] = {
		{ 200, 1, 0, PB_DELIVERED }, { 204, 1, 0, PB_DELIVERED },
		{ 299, 1, 0, PB_DELIVERED }, { 301, 1, 0, PB_DEAD },
		{ 400, 1, 0, PB_DEAD },      { 404, 1, 0, PB_DEAD },
		{ 408, 1, 0, PB_RETRY },     { 429, 1, 0, PB_RETRY },
		{ 500, 1, 0, PB_RETRY },     { 503, 1, 0, PB_RETRY },
		{ 599, 1, 0, PB_RETRY },     { 0, 0, 0, PB_RETRY },
		{ 0, 0, 1, PB_DEAD },        { 100, 1, 0, PB_DEAD },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(pb_classify(cases[i].status, cases[i].ok, cases[i].refused) ==
		      cases[i].want, "status %ld ok %d refused %d", cases[i].status,
		      cases[i].ok, cases[i].refused);
}

static void signals(void)
{
	static const struct { long status; int ok, refused, ra; enum pb_signal want; } cases[] = {
		{ 200, 1, 0, 0, PB_SIG_OK },   { 204, 1, 0, 0, PB_SIG_OK },
		{ 404, 1, 0, 0, PB_SIG_OK },   { 400, 1, 0, 0, PB_SIG_OK },
		{ 301, 1, 0, 0, PB_SIG_OK },   { 408, 1, 0, 0, PB_SIG_OK },
		{ 429, 1, 0, 0, PB_SIG_NONE }, { 429, 1, 0, 1, PB_SIG_NONE },
		{ 500, 1, 0, 0, PB_SIG_FAIL }, { 503, 1, 0, 0, PB_SIG_FAIL },
		{ 503, 1, 0, 1, PB_SIG_NONE }, /* maintenance announced: a pause */
		{ 500, 1, 0, 1, PB_SIG_FAIL }, { 599, 1, 0, 0, PB_SIG_FAIL },
		{ 0, 0, 0, 0, PB_SIG_FAIL },   /* connect error, timeout */
		{ 0, 0, 1, 0, PB_SIG_NONE },   /* refused by the address policy */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(pb_breaker_signal(cases[i].status, cases[i].ok, cases[i].refused,
					cases[i].ra) == cases[i].want,
		      "signal: status %ld ok %d refused %d retry-after %d",
		      cases[i].status, cases[i].ok, cases[i].refused, cases[i].ra);
	CHECK(pb_pauses(429, 0) && pb_pauses(503, 1) && !pb_pauses(503, 0) &&
	      !pb_pauses(200, 1), "pauses");
}

static void backoff(void)
{
	CHECK(pb_backoff_ceiling_ms(1, 1000, 300000) == 1000, "first");
	CHECK(pb_backoff_ceiling_ms(2, 1000, 300000) == 2000, "second");
	CHECK(pb_backoff_ceiling_ms(5, 1000, 300000) == 16000, "fifth");
	CHECK(pb_backoff_ceiling_ms(9, 1000, 300000) == 256000, "ninth");
	CHECK(pb_backoff_ceiling_ms(10, 1000, 300000) == 300000, "capped");
	CHECK(pb_backoff_ceiling_ms(1000000, 1000, 300000) == 300000, "no overflow");
	/* Full jitter: the draw spans [0, ceiling]. */
	CHECK(pb_retry_delay_ms(3, 1000, 300000, 0, 0) == 0, "lowest draw");
	CHECK(pb_retry_delay_ms(3, 1000, 300000, 0, 4000) == 4000, "highest draw");
	CHECK(pb_retry_delay_ms(3, 1000, 300000, 0, 4001) == 0, "wraps");
	/* Retry-After is a floor. */
	CHECK(pb_retry_delay_ms(1, 1000, 300000, 2000, 5) == 2000, "retry-after floor");
	CHECK(pb_retry_delay_ms(1, 1000, 300000, 2000, 999) == 2000, "floor again");
}

void unit_tests(void)
{
	classify();
	backoff();
	signals();
}
