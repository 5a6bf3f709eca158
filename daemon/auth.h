/* auth.h — API tokens: a file of `name:role:sha256hex(token)` lines, '#'
 * comments. A request's "Authorization: Bearer <token>" is hashed and compared
 * with every entry in constant time, so neither timing nor the file reveals
 * tokens. Roles: read < submit < admin. Pure (no daemon state): tested in
 * tests/unit/test_auth.c. */
#ifndef LRQD_AUTH_H
#define LRQD_AUTH_H
#include <stdint.h>
#include "lrq_err.h"

enum { ROLE_READ = 1, ROLE_SUBMIT = 2, ROLE_ADMIN = 3 };

typedef struct token {
    char name[64];
    int role;
    uint8_t hash[32];      /* sha256(token) */
} token_t;

/* Parse a token file's text (where names it in messages). *toks is a new
 * array of *n ≥ 1 tokens (free()), or an error naming where:line. */
int auth_parse(const char *text, const char *where, token_t **toks, int *n, lrq_err_t *err);
/* The token an Authorization header value carries, or NULL. */
const token_t *auth_check(const token_t *toks, int n, const char *authorization);
#endif
