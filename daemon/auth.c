/* auth.c — see auth.h. */
#include "auth.h"
#include "lrq_buf.h"
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

int auth_parse(const char *text, const char *where, token_t **toks, int *n, lrq_err_t *err)
{
    token_t *arr = NULL;
    size_t cnt = 0, cap = 0;
    int ln = 0, rc = 0;
    for (const char *p = text; !rc && *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[512];
        ln++;
        if (len >= sizeof line) { rc = lrq_errf(err, LRQ_EFORMAT, "%s:%d: line too long", where, ln); break; }
        memcpy(line, p, len);
        line[len] = 0;
        p += len + (eol ? 1 : 0);
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        size_t m = strlen(s);
        while (m && isspace((unsigned char)s[m - 1])) s[--m] = 0;
        if (!*s || *s == '#') continue;
        char *c1 = strchr(s, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        token_t t = {0};
        if (!c1 || !c2 || c1 == s || (size_t)(c1 - s) >= sizeof t.name || strlen(c2 + 1) != 64) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s:%d: expected name:role:sha256hex", where, ln);
            break;
        }
        *c1 = *c2 = 0;
        memcpy(t.name, s, (size_t)(c1 - s) + 1); /* the name and its NUL: shorter than t.name, checked above */
        if (!strcmp(c1 + 1, "read")) t.role = ROLE_READ;
        else if (!strcmp(c1 + 1, "submit")) t.role = ROLE_SUBMIT;
        else if (!strcmp(c1 + 1, "admin")) t.role = ROLE_ADMIN;
        else { rc = lrq_errf(err, LRQ_EFORMAT, "%s:%d: role must be read, submit or admin", where, ln); break; }
        for (int i = 0; i < 32; i++) {
            int h = hexval(c2[1 + 2 * i]), l = hexval(c2[2 + 2 * i]);
            if (h < 0 || l < 0) { rc = lrq_errf(err, LRQ_EFORMAT, "%s:%d: bad hex digest", where, ln); break; }
            t.hash[i] = (uint8_t)(h << 4 | l);
        }
        if (rc) break;
        if (lrq_grow(&arr, &cap, cnt + 1, sizeof *arr)) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); break; }
        arr[cnt++] = t;
    }
    if (!rc && !cnt) rc = lrq_errf(err, LRQ_EFORMAT, "token file %s holds no tokens", where);
    if (rc) { free(arr); return rc; }
    *toks = arr;
    *n = (int)cnt;
    return 0;
}

const token_t *auth_check(const token_t *toks, int ntoks, const char *authz)
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
    for (int i = 0; i < ntoks; i++) {
        uint8_t diff = 0;
        for (int k = 0; k < SHA256_DIGEST_SIZE; k++) diff |= h[k] ^ toks[i].hash[k];
        if (!diff && !found) found = &toks[i];
    }
    return found;
}
