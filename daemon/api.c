/* api.c — REST API v1 handlers (docs/api.md) and the /metrics exposition. */
#include "lrqd.h"
#include "log.h"
#include "confine.h"
#include "jobjson.h"
#include "lrq_buf.h"
#include "lrq_clock.h"
#include "lrq_spec.h"
#include "range.h"
#include "assets.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>


/* ---- job objects -------------------------------------------------------- */

/* The row, with a running job's live progress (fresher than the db's copy). */
static json_t *api__job_json(lrqd_t *d, const db_job_t *j)
{
    run_t *run = j->state == DB_RUNNING ? sched_find(d, j->id) : NULL;
    return jobjson_new(j, run ? run->progress : NULL);
}

void api_publish_state(lrqd_t *d, int64_t id)
{
    db_job_t j;
    lrq_err_t err;
    if (db_job_get(d->db, id, &j, &err)) return;
    json_t *o = api__job_json(d, &j);
    if (o) sse_publish(&d->sse, id, "state", o, db_state_terminal(j.state));
    json_decref(o);
    db_job_clear(&j);
}

/* Load the job or reply 404/500; returns 0 when *j is filled. */
static int api__job(lrqd_t *d, req_t *r, struct MHD_Connection *c, db_job_t *j, enum MHD_Result *ret)
{
    lrq_err_t err;
    int rc = db_job_get(d->db, req_match(r)->id, j, &err);
    if (!rc) return 0;
    if (rc == DB_ENOTFOUND) *ret = http_reply_error(r, c, 404, "not_found", NULL, "job %lld not found",
                                                    (long long)req_match(r)->id);
    else {
        log_err("%s", err.msg);
        *ret = http_reply_error(r, c, 500, "internal", NULL, "database error");
    }
    return -1;
}

static enum MHD_Result api__reply_job(lrqd_t *d, req_t *r, struct MHD_Connection *c, unsigned status, int64_t id)
{
    db_job_t j;
    lrq_err_t err;
    if (db_job_get(d->db, id, &j, &err)) {
        log_err("%s", err.msg);
        return http_reply_error(r, c, 500, "internal", NULL, "database error");
    }
    json_t *o = api__job_json(d, &j);
    db_job_clear(&j);
    return o ? http_reply_json(r, c, status, o) : http_reply_error(r, c, 500, "internal", NULL, "out of memory");
}

/* submit role for writes; with auth, only an admin may touch others' jobs. */
static int api__may_write(lrqd_t *d, req_t *r, const char *owner)
{
    const token_t *t = req_token(r);
    if (!d->auth) return 1;
    if (!t || t->role < ROLE_SUBMIT) return 0;
    if (t->role >= ROLE_ADMIN) return 1;
    return owner && !strcmp(owner, t->name);
}

/* ---- handlers ----------------------------------------------------------- */

static enum MHD_Result h_submit(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    if (d->stopping) return http_reply_error(r, c, 503, "shutting_down", NULL, "lrqd is shutting down");
    if (d->auth && (!req_token(r) || req_token(r)->role < ROLE_SUBMIT))
        return http_reply_error(r, c, 403, "forbidden", NULL, "this token may only read");
    size_t len;
    const char *body = req_body(r, &len);
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) return http_reply_error(r, c, 400, "invalid_json", NULL, "line %d column %d: %s", je.line, je.column,
                                    je.text);
    lrq_spec_t spec;
    lrq_err_t err = {0};
    enum MHD_Result ret;
    if (lrq_spec_parse(j, &spec, &err)) {
        ret = err.code == LRQ_ESPEC
                  ? http_reply_error(r, c, 422, "invalid_spec", err.field[0] ? err.field : NULL, "%s%s%s",
                                     err.field[0] ? err.field : "", err.field[0] ? ": " : "", err.msg)
                  : http_reply_error(r, c, 500, "internal", NULL, "spec validation failed");
        json_decref(j);
        return ret;
    }
    const char *fields[4], *values[4];
    int np = lrq_spec_paths(&spec, fields, values);
    for (int i = 0; i < np; i++) {
        char res[PATH_MAX];
        int is_model = !strcmp(fields[i], "model");
        if (confine_path((const char *const *)d->roots, d->nroots, values[i], is_model, res)) {
            ret = http_reply_error(r, c, 403, "forbidden_path", fields[i],
                                   "%s: must name an existing, readable %s inside a data root", fields[i],
                                   is_model ? "regular file or model directory" : "regular file");
            goto out;
        }
        /* Store the resolved absolute path: what was checked is what runs. */
        const char *dot = strchr(fields[i], '.');
        json_t *obj = j;
        const char *key = fields[i];
        if (dot) {
            char parent[32];
            snprintf(parent, sizeof parent, "%.*s", (int)(dot - fields[i]), fields[i]);
            obj = json_object_get(j, parent);
            key = dot + 1;
        }
        json_object_set_new(obj, key, json_string(res));
    }
    int64_t counts[DB_NSTATES];
    if (db_job_counts(d->db, counts, &err)) {
        log_err("%s", err.msg);
        ret = http_reply_error(r, c, 500, "internal", NULL, "database error");
        goto out;
    }
    if (counts[DB_QUEUED] + counts[DB_RUNNING] >= d->cfg.queue_max) {
        ret = http_reply_error(r, c, 429, "queue_full", NULL, "the queue holds %lld jobs (queue_max); retry later",
                               (long long)(counts[DB_QUEUED] + counts[DB_RUNNING]));
        goto out;
    }
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    int64_t id = 0;
    const token_t *t = req_token(r);
    int rc = text ? db_job_insert(d->db, spec.name, t ? t->name : NULL, lrq_method_name[spec.method], spec.priority,
                                  spec.max_attempts, text, (int64_t)lrq_wall_ms(), &id, &err)
                  : LRQ_ENOMEM;
    free(text);
    if (rc) {
        log_err("submit: %s", rc == LRQ_ENOMEM ? "out of memory" : err.msg);
        ret = http_reply_error(r, c, 500, "internal", NULL, "could not store the job");
        goto out;
    }
    log_info("job %lld: queued (%s%s%s)", (long long)id, lrq_method_name[spec.method], spec.name ? ", " : "",
             spec.name ? spec.name : "");
    {
        db_job_t job;
        if (db_job_get(d->db, id, &job, &err)) { ret = http_reply_error(r, c, 500, "internal", NULL, "db"); goto out; }
        json_t *o = api__job_json(d, &job);
        db_job_clear(&job);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!s) { ret = MHD_NO; goto out; }
        size_t n = strlen(s);
        struct MHD_Response *resp = MHD_create_response_from_buffer(n, s, MHD_RESPMEM_MUST_FREE);
        if (!resp) { free(s); ret = MHD_NO; goto out; }
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/jobs/%lld", (long long)id);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
        ret = http_reply(r, c, 201, resp);
    }
    sched_kick(d);
out:
    lrq_spec_close(&spec);
    json_decref(j);
    return ret;
}

static enum MHD_Result h_list(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    const char *st = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "state");
    const char *li = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    const char *af = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
    int state = -1;
    int64_t limit = 50, after = 0;
    if (st && *st && (state = db_state_parse(st)) < 0)
        return http_reply_error(r, c, 400, "invalid_query", "state",
                                "state must be queued, running, succeeded, failed or cancelled");
    if (li && rt_parse_i64(li, 1, 500, &limit))
        return http_reply_error(r, c, 400, "invalid_query", "limit", "limit must be an integer in 1..500");
    if (af && rt_parse_i64(af, 1, INT64_MAX / 2, &after))
        return http_reply_error(r, c, 400, "invalid_query", "after", "after must be a positive job id");
    db_job_t *jobs;
    size_t n;
    lrq_err_t err;
    if (db_job_list(d->db, state, after, (int)limit, &jobs, &n, &err)) {
        log_err("%s", err.msg);
        return http_reply_error(r, c, 500, "internal", NULL, "database error");
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) json_array_append_new(arr, api__job_json(d, &jobs[i]));
    json_t *o = json_pack("{s:o, s:o}", "jobs", arr ? arr : json_array(), "next_after",
                          (size_t)limit == n && n ? json_integer(jobs[n - 1].id) : json_null());
    db_jobs_free(jobs, n);
    return http_reply_json(r, c, 200, o);
}

static enum MHD_Result h_get(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    db_job_t j;
    enum MHD_Result ret;
    if (api__job(d, r, c, &j, &ret)) return ret;
    json_t *o = api__job_json(d, &j);
    db_job_clear(&j);
    return http_reply_json(r, c, 200, o);
}

static int rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st)) return errno == ENOENT ? 0 : -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        if (!dir) return -1;
        struct dirent *e;
        int rc = 0;
        while ((e = readdir(dir))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[PATH_MAX];
            if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub) { rc = -1; continue; }
            if (rm_rf(sub)) rc = -1;
        }
        closedir(dir);
        return rmdir(path) || rc ? -1 : 0;
    }
    return unlink(path);
}

static enum MHD_Result h_delete(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    db_job_t j;
    enum MHD_Result ret;
    if (api__job(d, r, c, &j, &ret)) return ret;
    int ok = api__may_write(d, r, j.owner);
    db_job_clear(&j);
    if (!ok) return http_reply_error(r, c, 403, "forbidden", NULL, "this token may not delete this job");
    lrq_err_t err;
    int64_t id = req_match(r)->id;
    int rc = db_job_delete(d->db, id, &err);
    if (rc == DB_ECONFLICT) return http_reply_error(r, c, 409, "conflict", NULL, "%s", err.msg);
    if (rc == DB_ENOTFOUND) return http_reply_error(r, c, 404, "not_found", NULL, "%s", err.msg);
    if (rc) { log_err("%s", err.msg); return http_reply_error(r, c, 500, "internal", NULL, "database error"); }
    char *wd = sched_workdir(d, id);
    if (wd && rm_rf(wd)) log_warn("job %lld: could not remove %s completely", (long long)id, wd);
    free(wd);
    log_info("job %lld: deleted", (long long)id);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    return http_reply(r, c, 204, resp);
}

static enum MHD_Result h_cancel(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    db_job_t j;
    enum MHD_Result ret;
    if (api__job(d, r, c, &j, &ret)) return ret;
    int ok = api__may_write(d, r, j.owner);
    db_job_clear(&j);
    if (!ok) return http_reply_error(r, c, 403, "forbidden", NULL, "this token may not cancel this job");
    lrq_err_t err;
    int64_t id = req_match(r)->id;
    int rc = db_job_cancel(d->db, id, (int64_t)lrq_wall_ms(), &err);
    if (rc == DB_ECONFLICT) return http_reply_error(r, c, 409, "conflict", NULL, "%s", err.msg);
    if (rc < 0) { log_err("%s", err.msg); return http_reply_error(r, c, 500, "internal", NULL, "database error"); }
    log_info("job %lld: cancel requested", (long long)id);
    if (rc == DB_RUNNING) sched_cancel(d, id);   /* its exit reports the final state */
    else api_publish_state(d, id);
    return api__reply_job(d, r, c, 200, id);
}

static enum MHD_Result h_events(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    db_job_t j;
    enum MHD_Result ret;
    if (api__job(d, r, c, &j, &ret)) return ret;
    json_t *o = api__job_json(d, &j);
    int terminal = db_state_terminal(j.state);
    db_job_clear(&j);
    sse_t *s = o ? sse_new(&d->sse, req_match(r)->id, c) : NULL;
    if (!s) { json_decref(o); return http_reply_error(r, c, 500, "internal", NULL, "out of memory"); }
    req_on_complete(r, sse_free_cb, s);    /* the request's reference */
    sse_push(s, "state", o, terminal);
    json_decref(o);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_reader, s, sse_free_cb);
    if (!resp) { sse_release(s); return MHD_NO; }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return http_reply(r, c, 200, resp);
}

/* Serve an open file: ETag, single-range Range (206/416), If-None-Match (304).
 * Takes ownership of fd. */
static enum MHD_Result api__serve_fd(req_t *r, struct MHD_Connection *c, int fd, const struct stat *st,
                                     const char *ctype, const char *etag)
{
    uint64_t size = (uint64_t)st->st_size, off = 0, len = size;
    unsigned status = 200;
    char crange[96] = "";
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && !strcmp(inm, etag)) {
        close(fd);
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (resp) MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
        return http_reply(r, c, 304, resp);
    }
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    const char *ifr = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE);
    if (ifr && strcmp(ifr, etag)) range = NULL;                 /* changed since: send it all */
    status = (unsigned)range_parse(range, size, &off, &len);
    if (status == RANGE_UNSATISFIABLE) {
        close(fd);
        char cr[64];
        snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
        json_t *e2 = json_pack("{s:{s:s, s:s, s:n}}", "error", "code", "range_not_satisfiable", "message",
                               "the range lies outside the file", "field");
        char *s = json_dumps(e2, JSON_COMPACT);
        json_decref(e2);
        if (!s) return MHD_NO;
        struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
        if (!resp) { free(s); return MHD_NO; }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        return http_reply(r, c, 416, resp);
    }
    if (status == RANGE_PARTIAL)
        snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)off,
                 (unsigned long long)(off + len - 1), (unsigned long long)size);
    struct MHD_Response *resp;
    if (len == 0) {
        close(fd);
        resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_fd_at_offset64(len, fd, off);   /* owns fd */
        if (!resp) close(fd);
    }
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    if (status == 206) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
    return http_reply(r, c, status, resp);
}

static enum MHD_Result h_log(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    db_job_t j;
    enum MHD_Result ret;
    if (api__job(d, r, c, &j, &ret)) return ret;
    db_job_clear(&j);
    char *wd = sched_workdir(d, req_match(r)->id), path[PATH_MAX];
    snprintf(path, sizeof path, "%s/log", wd ? wd : "/nonexistent");
    free(wd);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        /* No log yet (queued): an empty one. */
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (resp) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
        return http_reply(r, c, 200, resp);
    }
    char etag[64];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size, (unsigned long long)st.st_mtime);
    return api__serve_fd(r, c, fd, &st, "text/plain; charset=utf-8", etag);
}

static enum MHD_Result h_job_metrics(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    db_job_t j;
    enum MHD_Result ret;
    if (api__job(d, r, c, &j, &ret)) return ret;
    db_job_clear(&j);
    char *body;
    lrq_err_t err;
    int rc = db_metrics_get(d->db, req_match(r)->id, &body, &err);
    if (rc == DB_ENOTFOUND)
        return http_reply_error(r, c, 404, "not_found", NULL, "job %lld has no metrics (yet)",
                                (long long)req_match(r)->id);
    if (rc) { log_err("%s", err.msg); return http_reply_error(r, c, 500, "internal", NULL, "database error"); }
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) { free(body); return MHD_NO; }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return http_reply(r, c, 200, resp);
}

static enum MHD_Result h_artifacts(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    db_job_t j;
    enum MHD_Result ret;
    if (api__job(d, r, c, &j, &ret)) return ret;
    db_job_clear(&j);
    db_artifact_t *a;
    size_t n;
    lrq_err_t err;
    if (db_artifacts_get(d->db, req_match(r)->id, &a, &n, &err)) {
        log_err("%s", err.msg);
        return http_reply_error(r, c, 500, "internal", NULL, "database error");
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:I, s:s}", "path", a[i].path, "size", (json_int_t)a[i].size,
                                             "sha256", a[i].sha256));
    db_artifacts_free(a, n);
    return http_reply_json(r, c, 200, json_pack("{s:o}", "artifacts", arr ? arr : json_array()));
}

/* Every component of rel must be a plain name (no "", ".", ".."). */

static enum MHD_Result h_artifact(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    db_job_t j;
    enum MHD_Result ret;
    if (api__job(d, r, c, &j, &ret)) return ret;
    db_job_clear(&j);
    const char *rel = req_match(r)->rest;
    if (!rt_safe_rel(rel))
        return http_reply_error(r, c, 404, "not_found", NULL, "no such artifact");
    char *wd = sched_workdir(d, req_match(r)->id), dir[PATH_MAX], rdir[PATH_MAX], full[PATH_MAX * 2],
         rfull[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/artifacts", wd ? wd : "/nonexistent");
    free(wd);
    if (!realpath(dir, rdir)) return http_reply_error(r, c, 404, "not_found", NULL, "no such artifact");
    snprintf(full, sizeof full, "%s/%s", rdir, rel);
    size_t rn = strlen(rdir);
    if (strlen(full) >= PATH_MAX || !realpath(full, rfull) || strncmp(rfull, rdir, rn) || rfull[rn] != '/')
        return http_reply_error(r, c, 404, "not_found", NULL, "no such artifact");
    int fd = open(rfull, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        return http_reply_error(r, c, 404, "not_found", NULL, "no such artifact");
    }
    /* ETag: the registered sha256 when the file is unchanged, else size-mtime. */
    char etag[80];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size, (unsigned long long)st.st_mtime);
    db_artifact_t *a;
    size_t n;
    lrq_err_t err;
    if (!db_artifacts_get(d->db, req_match(r)->id, &a, &n, &err)) {
        for (size_t i = 0; i < n; i++)
            if (!strcmp(a[i].path, rfull + rn + 1) && a[i].size == st.st_size)
                snprintf(etag, sizeof etag, "\"%s\"", a[i].sha256);
        db_artifacts_free(a, n);
    }
    return api__serve_fd(r, c, fd, &st, "application/octet-stream", etag);
}

/* ---- progress history, priority, whoami (docs/api.md) --------------------- */

static json_t *api__real(double v) { return isnan(v) || isinf(v) ? json_null() : json_real(v); }

static enum MHD_Result h_progress(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    const char *si = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
    const char *li = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    int64_t since = 0, limit = 5000;
    if (si && rt_parse_i64(si, 0, (INT64_C(1) << 53) - 1, &since))
        return http_reply_error(r, c, 400, "invalid_query", "since",
                                "since must be a sample sequence number (an integer >= 0: last_seq of a reply)");
    if (li && rt_parse_i64(li, 1, 5000, &limit))
        return http_reply_error(r, c, 400, "invalid_query", "limit", "limit must be an integer in 1..5000");
    db_job_t j;
    enum MHD_Result ret;
    if (api__job(d, r, c, &j, &ret)) return ret;
    db_job_clear(&j);
    int64_t id = req_match(r)->id;
    db_psample_t *s = NULL;
    db_pblock_t *b = NULL;
    size_t ns = 0, nb = 0;
    lrq_err_t err;
    if (db_progress_list(d->db, id, since, (int)limit, &s, &ns, &err) ||
        db_progress_blocks(d->db, id, &b, &nb, &err)) {
        free(s);
        log_err("%s", err.msg);
        return http_reply_error(r, c, 500, "internal", NULL, "database error");
    }
    json_t *sa = json_array(), *ba = json_array();
    for (size_t i = 0; sa && i < ns; i++)
        json_array_append_new(sa, json_pack("{s:I, s:o, s:I, s:s, s:i, s:o, s:o, s:o, s:o}", "seq", (json_int_t)s[i].seq,
                                            "time", jobjson_time(s[i].t_ms), "t_ms", (json_int_t)s[i].t_ms,
                                            "stage", s[i].stage, "block", s[i].block,
                                            "iteration", s[i].iteration < 0 ? json_null() : json_integer(s[i].iteration),
                                            "loss", api__real(s[i].loss), "eta_s", api__real(s[i].eta_s),
                                            "fraction", api__real(s[i].fraction)));
    for (size_t i = 0; ba && i < nb; i++)
        json_array_append_new(ba, json_pack("{s:i, s:o, s:o, s:o, s:o, s:o}", "block", b[i].block,
                                            "blocks", b[i].blocks > 0 ? json_integer(b[i].blocks) : json_null(),
                                            "loss_start", api__real(b[i].loss_start), "loss_end",
                                            api__real(b[i].loss_end), "seconds", api__real(b[i].seconds),
                                            "time", jobjson_time(b[i].t_ms)));
    json_t *o = json_pack("{s:o, s:o, s:I, s:b}", "samples", sa ? sa : json_array(), "blocks", ba ? ba : json_array(),
                          "last_seq", (json_int_t)(ns ? s[ns - 1].seq : since), "more", (size_t)limit == ns);
    free(s);
    free(b);
    return o ? http_reply_json(r, c, 200, o) : http_reply_error(r, c, 500, "internal", NULL, "out of memory");
}

/* PATCH /v1/jobs/{id} {"priority": N}: a queued job's priority. */
static enum MHD_Result h_patch(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    db_job_t j;
    enum MHD_Result ret;
    if (api__job(d, r, c, &j, &ret)) return ret;
    int ok = api__may_write(d, r, j.owner);
    db_job_clear(&j);
    if (!ok) return http_reply_error(r, c, 403, "forbidden", NULL, "this token may not change this job");
    size_t len;
    const char *body = req_body(r, &len);
    json_error_t je;
    json_t *in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!in) return http_reply_error(r, c, 400, "invalid_json", NULL, "line %d column %d: %s", je.line, je.column,
                                     je.text);
    const char *key, *bad = NULL;
    json_t *v, *pr = NULL;
    json_object_foreach(in, key, v) {
        if (strcmp(key, "priority")) { bad = key; break; }
        pr = v;
    }
    if (!json_is_object(in)) ret = http_reply_error(r, c, 422, "invalid_spec", NULL, "the body must be a JSON object");
    else if (bad) ret = http_reply_error(r, c, 422, "invalid_spec", bad, "%s: unknown field (only priority can change)", bad);
    else if (!pr) ret = http_reply_error(r, c, 422, "invalid_spec", "priority", "priority: required");
    else if (!json_is_integer(pr) || json_integer_value(pr) < -100 || json_integer_value(pr) > 100)
        ret = http_reply_error(r, c, 422, "invalid_spec", "priority", "priority: must be an integer in -100..100");
    else {
        lrq_err_t err;
        int64_t id = req_match(r)->id;
        int rc = db_job_set_priority(d->db, id, (int)json_integer_value(pr), &err);
        if (rc == DB_ECONFLICT) ret = http_reply_error(r, c, 409, "conflict", NULL, "%s", err.msg);
        else if (rc == DB_ENOTFOUND) ret = http_reply_error(r, c, 404, "not_found", NULL, "%s", err.msg);
        else if (rc) { log_err("%s", err.msg); ret = http_reply_error(r, c, 500, "internal", NULL, "database error"); }
        else {
            log_info("job %lld: priority %lld", (long long)id, (long long)json_integer_value(pr));
            api_publish_state(d, id);
            ret = api__reply_job(d, r, c, 200, id);
        }
    }
    json_decref(in);
    return ret;
}

/* Who the bearer is, so that the dashboard offers only what the role allows. */
static enum MHD_Result h_whoami(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    static const char *const roles[] = {"none", "read", "submit", "admin"};
    const token_t *t = req_token(r);
    int role = d->auth ? (t && t->role >= ROLE_READ && t->role <= ROLE_ADMIN ? t->role : 0) : ROLE_ADMIN;
    return http_reply_json(r, c, 200, json_pack("{s:b, s:s?, s:s, s:b}", "auth", d->auth, "name",
                                                d->auth && t ? t->name : NULL, "role", roles[role], "loopback",
                                                d->loopback));
}

/* ---- the dashboard (dashboard/, compiled in: assets.h) -------------------- */

static enum MHD_Result api__asset(req_t *r, struct MHD_Connection *c, const char *name)
{
    const asset_t *a = NULL;
    for (size_t i = 0; i < dash_nassets; i++)
        if (!strcmp(dash_assets[i].name, name)) a = &dash_assets[i];
    if (!a) return http_reply_error(r, c, 404, "not_found", NULL, "no such file");
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    int fresh = inm && !strcmp(inm, a->etag);
    struct MHD_Response *resp = fresh ? MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT)
                                      : MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    if (!fresh) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, a->etag);
    /* Revalidate every time (a 304 costs nothing): a new lrqd may carry new files under the same names. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                            "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    return http_reply(r, c, fresh ? 304 : 200, resp);
}

static enum MHD_Result h_dash(lrqd_t *d, req_t *r, struct MHD_Connection *c) { return api__asset(r, c, "index.html"); }

static enum MHD_Result h_asset(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    const char *rest = req_match(r)->rest;
    if (!rest || strchr(rest, '/')) return http_reply_error(r, c, 404, "not_found", NULL, "no such file");
    return api__asset(r, c, rest);
}

static enum MHD_Result h_healthz(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    return http_reply_json(r, c, 200, json_pack("{s:s}", "status", "ok"));
}

static enum MHD_Result h_readyz(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    int64_t counts[DB_NSTATES];
    lrq_err_t err;
    const char *why = NULL;
    struct statvfs vs;
    if (d->stopping) why = "shutting down";
    else if (db_job_counts(d->db, counts, &err)) why = "database unavailable";
    else if (access(d->worker_path, X_OK)) why = "worker executable missing";
    else if (!statvfs(d->cfg.state_dir, &vs) &&
             (uint64_t)vs.f_bavail * vs.f_frsize < (uint64_t)d->cfg.min_free_mb << 20) why = "low disk space";
    if (why) return http_reply_json(r, c, 503, json_pack("{s:s, s:s}", "status", "not_ready", "reason", why));
    return http_reply_json(r, c, 200, json_pack("{s:s}", "status", "ready"));
}

/* ---- metrics ------------------------------------------------------------ */

static enum MHD_Result h_metrics(lrqd_t *d, req_t *r, struct MHD_Connection *c)
{
    metrics_gauges_t g = {.running_workers = d->nruns, .worker_slots = d->cfg.workers};
    lrq_err_t err;
    if (db_job_counts(d->db, g.jobs, &err)) {
        log_err("%s", err.msg);
        return http_reply_error(r, c, 500, "internal", NULL, "database error");
    }
    lrq_buf_t b = {0};
    if (metrics_render(&d->metrics, &g, &b)) { lrq_buf_free(&b); return MHD_NO; }
    size_t len;
    char *text = lrq_buf_take(&b, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) { free(text); return MHD_NO; }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
    return http_reply(r, c, 200, resp);
}

enum MHD_Result api_dispatch(lrqd_t *d, req_t *r, struct MHD_Connection *c, int route)
{
    if (route < 0 || (size_t)route >= api_nroutes) return http_reply_error(r, c, 404, "not_found", NULL, "no route");
    switch (api_routes[route].tag) {
    case H_HEALTHZ: return h_healthz(d, r, c);
    case H_READYZ: return h_readyz(d, r, c);
    case H_METRICS: return h_metrics(d, r, c);
    case H_SUBMIT: return h_submit(d, r, c);
    case H_LIST: return h_list(d, r, c);
    case H_GET: return h_get(d, r, c);
    case H_DELETE: return h_delete(d, r, c);
    case H_CANCEL: return h_cancel(d, r, c);
    case H_EVENTS: return h_events(d, r, c);
    case H_LOG: return h_log(d, r, c);
    case H_JOB_METRICS: return h_job_metrics(d, r, c);
    case H_ARTIFACTS: return h_artifacts(d, r, c);
    case H_ARTIFACT: return h_artifact(d, r, c);
    case H_PROGRESS: return h_progress(d, r, c);
    case H_PATCH: return h_patch(d, r, c);
    case H_WHOAMI: return h_whoami(d, r, c);
    case H_DASH: return h_dash(d, r, c);
    case H_ASSET: return h_asset(d, r, c);
    }
    return http_reply_error(r, c, 500, "internal", NULL, "unhandled route");
}
