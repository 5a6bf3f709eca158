/* manifest.h — what a successful attempt left in its work dir, read back by
 * the daemon: metrics.json and artifacts.json.
 *
 * One owner for artifact digests: the worker. It wrote every byte of the
 * exports, so it hashes them once as it lists them (artifacts.json: path,
 * size, sha256) and the daemon trusts those digests instead of reading
 * multi-GB files a second time at the end of every job. The daemon checks
 * what is cheap and catches a wrong or stale listing: every path is a plain
 * relative path naming a regular file (not a symlink) under artifacts/ with
 * exactly the listed size, and every digest is 64 hex digits. Users verify
 * the digest end to end when they download (lrqctl download checks it). */
#ifndef LRQD_MANIFEST_H
#define LRQD_MANIFEST_H
#include <stddef.h>
#include "db.h"
#include "lrq_err.h"

/* *metrics: metrics.json's text (compact JSON) or NULL when absent; *arts:
 * artifacts sorted by path. An error names the file and the entry. */
int manifest_load(const char *workdir, char **metrics, db_artifact_t **arts, size_t *n, lrq_err_t *err);
#endif
