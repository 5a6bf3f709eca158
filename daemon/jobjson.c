/* jobjson.c — see jobjson.h. */
#include "jobjson.h"
#include <time.h>

json_t *jobjson_time(int64_t ms)
{
    if (!ms) return json_null();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&t, &tm)) return json_null();
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

/* Stored JSON text → value; a missing or unparsable text is null. */
static json_t *jobjson__text(const char *s)
{
    if (!s) return json_null();
    json_t *j = json_loads(s, 0, NULL);
    return j ? j : json_null();
}

json_t *jobjson_new(const db_job_t *j, json_t *live_progress)
{
    json_t *progress = live_progress ? json_incref(live_progress) : jobjson__text(j->progress);
    const char *state = j->state >= 0 && j->state < DB_NSTATES ? db_state_name[j->state] : "unknown";
    return json_pack("{s:I, s:s?, s:s, s:s, s:i, s:i, s:i, s:o, s:o, s:o, s:o, s:s?, s:b, s:o, s:s?}",
                     "id", (json_int_t)j->id, "name", j->name, "state", state, "method", j->method ? j->method : "",
                     "priority", j->priority, "attempts", j->attempts, "max_attempts", j->max_attempts,
                     "created_at", jobjson_time(j->created_at), "started_at", jobjson_time(j->started_at),
                     "finished_at", jobjson_time(j->finished_at), "progress", progress, "error", j->error,
                     "cancel_requested", j->cancel_requested, "spec", jobjson__text(j->spec), "owner", j->owner);
}
