/* range.h — the one HTTP Range form lrqd serves: a single "bytes=" range
 * (RFC 9110, section 14.1.2: "a-b", "a-", "-suffix"). Pure, for unit tests. */
#ifndef LRQD_RANGE_H
#define LRQD_RANGE_H
#include <stdint.h>

enum { RANGE_ALL = 200, RANGE_PARTIAL = 206, RANGE_UNSATISFIABLE = 416 };

/* header: the Range value or NULL. Sets *off and *len to what to send. A
 * malformed or multi-range header is ignored (the whole file, as RFC 9110
 * allows); a range starting at or past the end, or an empty suffix, is 416. */
int range_parse(const char *header, uint64_t size, uint64_t *off, uint64_t *len);
#endif
