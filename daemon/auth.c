/* auth.c — API tokens (issue 5): a file of `name:role:sha256hex(token)` lines,
 * '#' comments. Requests carry "Authorization: Bearer <token>"; the token is
 * hashed and compared with every entry in constant time, so neither timing nor
 * the file reveals tokens. Roles: read < submit < admin. */
#include "lrqd.h"
#include "log.h"
#include <ctype.h>
#include <errno.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int auth_load(lrqd_t *d, const char *path, lrq_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return lrq_errf(err, -errno, "token file %s: %s", path, strerror(errno));
    char line[512];
    int ln = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        size_t n = strlen(s);
        while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
        if (!*s || *s == '#') continue;
        char *c1 = strchr(s, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c1 || !c2 || c1 == s || (size_t)(c1 - s) >= sizeof d->tokens->name || strlen(c2 + 1) != 64) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s:%d: expected name:role:sha256hex", path, ln);
            break;
        }
        *c1 = *c2 = 0;
        token_t t = {0};
        snprintf(t.name, sizeof t.name, "%s", s);
        if (!strcmp(c1 + 1, "read")) t.role = ROLE_READ;
        else if (!strcmp(c1 + 1, "submit")) t.role = ROLE_SUBMIT;
        else if (!strcmp(c1 + 1, "admin")) t.role = ROLE_ADMIN;
        else { rc = lrq_errf(err, LRQ_EFORMAT, "%s:%d: role must be read, submit or admin", path, ln); break; }
        for (int i = 0; i < 32; i++) {
            int h = hexval(c2[1 + 2 * i]), l = hexval(c2[2 + 2 * i]);
            if (h < 0 || l < 0) { rc = lrq_errf(err, LRQ_EFORMAT, "%s:%d: bad hex digest", path, ln); break; }
            t.hash[i] = (uint8_t)(h << 4 | l);
        }
        if (rc) break;
        token_t *nt = realloc(d->tokens, (d->ntokens + 1) * sizeof *nt);
        if (!nt) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); break; }
        d->tokens = nt;
        d->tokens[d->ntokens++] = t;
    }
    fclose(f);
    if (!rc && !d->ntokens) rc = lrq_errf(err, LRQ_EFORMAT, "token file %s holds no tokens", path);
    return rc;
}

const token_t *auth_check(lrqd_t *d, const char *authz)
{
    if (!authz || strncasecmp(authz, "Bearer ", 7)) return NULL;
    const char *tok = authz + 7;
    while (*tok == ' ') tok++;
    size_t n = strlen(tok);
    if (!n || n > 4096) return NULL;
    uint8_t h[SHA256_DIGEST_SIZE];
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, n, (const uint8_t *)tok);
    sha256_digest(&ctx, sizeof h, h);
    const token_t *found = NULL;
    for (int i = 0; i < d->ntokens; i++) {
        uint8_t diff = 0;
        for (int k = 0; k < SHA256_DIGEST_SIZE; k++) diff |= h[k] ^ d->tokens[i].hash[k];
        if (!diff && !found) found = &d->tokens[i];
    }
    return found;
}
