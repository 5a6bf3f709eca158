/* jobjson.h — a job row as the API shows it (docs/api.md, "Job object").
 * Pure: no daemon state; the caller passes the live progress of a running
 * job (fresher than the row's throttled copy), or NULL. */
#ifndef LRQD_JOBJSON_H
#define LRQD_JOBJSON_H
#include <jansson.h>
#include "db.h"
/* New reference, or NULL when out of memory. */
json_t *jobjson_new(const db_job_t *j, json_t *live_progress /* borrowed, may be NULL */);
/* RFC 3339 UTC ("2026-12-01T20:17:02Z") of unix ms; 0 → JSON null. */
json_t *jobjson_time(int64_t ms);
#endif
