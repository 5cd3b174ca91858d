#include "deadletter.h"

#include <stdlib.h>

#include "pb.h"

char *pb_dead_encode(const pb_dead *d)
{
	json_t *e = json_pack("{s:s%, s:s, s:I, s:I, s:s, s:I, s:s}", "job", d->job,
			      d->job_len, "id", d->id, "attempts",
			      (json_int_t)d->attempts, "status", (json_int_t)d->status,
			      "error", d->error, "failed_at", (json_int_t)d->failed_at,
			      "agent", d->agent);
	char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;

	json_decref(e);
	return s;
}

int pb_dead_decode(pb_dead *d, json_t **owner, const char *s, size_t len)
{
	json_int_t attempts, status, failed_at;
	json_t *e = json_loadb(s, len, 0, NULL);
	size_t job_len;

	*owner = NULL;
	if (e == NULL)
		return PB_ERR_FORMAT;
	if (json_unpack(e, "{s:s%, s:s, s:I, s:I, s:s, s:I, s:s}", "job", &d->job,
			&job_len, "id", &d->id, "attempts", &attempts, "status",
			&status, "error", &d->error, "failed_at", &failed_at, "agent",
			&d->agent) != 0) {
		json_decref(e);
		return PB_ERR_FORMAT;
	}
	d->job_len = job_len;
	d->attempts = attempts;
	d->status = status;
	d->failed_at = failed_at;
	*owner = e;
	return PB_OK;
}
