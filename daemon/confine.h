/* confine.h — spec paths must stay inside the data roots (docs/api.md,
 * "Paths"): what a job may read is decided here, once, at submission.
 * Pure over the filesystem (no daemon state): tests/unit/test_confine.c. */
#ifndef LRQD_CONFINE_H
#define LRQD_CONFINE_H
#include <limits.h>

/* roots: realpath'd directories. value: absolute, or relative to each root in
 * turn. 0 and out = the resolved path when realpath(value) lies inside a root
 * and is a readable regular file (or a directory when allow_dir); else -1.
 * Symlinks are followed first, so a link out of a root is refused. */
int confine_path(const char *const *roots, int nroots, const char *value, int allow_dir, char out[PATH_MAX]);
#endif
