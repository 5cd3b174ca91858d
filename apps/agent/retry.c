#include "retry.h"

enum pb_outcome pb_classify(long status, int transport_ok, int refused)
{
	if (refused)
		return PB_DEAD; /* the destination is not allowed: no retry helps */
	if (!transport_ok)
		return PB_RETRY; /* connect error, timeout, reset */
	if (status >= 200 && status < 300)
		return PB_DELIVERED;
	if (status == 408 || status == 429 || (status >= 500 && status < 600))
		return PB_RETRY;
	return PB_DEAD;
}

enum pb_signal pb_breaker_signal(long status, int transport_ok, int refused,
				  int retry_after)
{
	if (refused || (transport_ok && pb_pauses(status, retry_after)))
		return PB_SIG_NONE;
	if (!transport_ok || status >= 500)
		return PB_SIG_FAIL;
	return PB_SIG_OK;
}

int pb_pauses(long status, int retry_after)
{
	return status == 429 || (status == 503 && retry_after);
}

int64_t pb_backoff_ceiling_ms(unsigned n, int64_t base_ms, int64_t cap_ms)
{
	int64_t d = base_ms;
	unsigned i;

	for (i = 1; i < n && d < cap_ms; i++)
		d *= 2; /* stops doubling at the cap: no overflow */
	return d < cap_ms ? d : cap_ms;
}

int64_t pb_retry_delay_ms(unsigned n, int64_t base_ms, int64_t cap_ms,
			  int64_t retry_after_ms, uint64_t draw)
{
	int64_t ceiling = pb_backoff_ceiling_ms(n, base_ms, cap_ms);
	int64_t d = (int64_t)(draw % (uint64_t)(ceiling + 1));

	return d < retry_after_ms ? retry_after_ms : d;
}

unsigned pb_failure_of(long status, int transport_ok, int timed_out)
{
	if (!transport_ok)
		return timed_out ? PB_FAIL_TIMEOUT : PB_FAIL_CONNECT;
	if (status >= 500 && status < 600)
		return PB_FAIL_5XX;
	if (status == 429)
		return PB_FAIL_429;
	if (status == 408)
		return PB_FAIL_408;
	return 0;
}

enum pb_outcome pb_policy_outcome(const pb_policy *p, long status, int transport_ok,
				  int timed_out, int refused, unsigned attempts, int *park)
{
	enum pb_outcome o = pb_classify(status, transport_ok, refused);

	*park = 0;
	if (!refused && transport_ok && status == 410 && p->on_410 == PB_410_PARK) {
		*park = 1;
		return PB_RETRY;
	}
	if (o != PB_RETRY)
		return o;
	if (!(p->retry_on & pb_failure_of(status, transport_ok, timed_out)))
		return PB_DEAD;
	return attempts >= (unsigned)p->max_attempts ? PB_DEAD : PB_RETRY;
}

int64_t pb_policy_delay_ms(const pb_policy *p, unsigned n, int64_t retry_after_ms,
			   uint64_t draw)
{
	int64_t d, spread;

	if (p->n_schedule == 0)
		return pb_retry_delay_ms(n, p->backoff_base_ms, p->backoff_cap_ms,
					 retry_after_ms, draw);
	d = p->schedule_ms[n <= (unsigned)p->n_schedule ? n - 1 : (unsigned)p->n_schedule - 1];
	spread = d / 10;
	d = d - spread + (int64_t)(draw % (uint64_t)(2 * spread + 1));
	return d < retry_after_ms ? retry_after_ms : d;
}
