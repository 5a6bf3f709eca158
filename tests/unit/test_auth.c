/* test_auth.c — daemon/auth.c: token file parsing and Bearer checks. The
 * digests are sha256 of "alpha" and "beta", computed independently
 * (`printf %s alpha | sha256sum`). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/auth.h"

#define H_ALPHA "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8"
#define H_BETA "f44e64e75f3948e9f73f8dfa94721c4ce8cbb4f265c4790c702b2d41cfbf2753"

Test(auth, parse_and_check)
{
    const char *text = "# tokens\n\n  ops:admin:" H_ALPHA "  \nci:read:" H_BETA "\n";
    token_t *t = NULL;
    int n = 0;
    lrq_err_t err = {0};
    cr_assert_eq(auth_parse(text, "tokens", &t, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(t[0].name, "ops");
    cr_expect_eq(t[0].role, ROLE_ADMIN);
    cr_expect_eq(t[1].role, ROLE_READ);
    cr_expect_eq(auth_check(t, n, "Bearer beta"), &t[1]);
    cr_expect_eq(auth_check(t, n, "Bearer alpha"), &t[0]);
    cr_expect_eq(auth_check(t, n, "bearer   alpha"), &t[0], "scheme is case-insensitive");
    cr_expect_null(auth_check(t, n, "Bearer alph"));
    cr_expect_null(auth_check(t, n, "Bearer alpha "), "the token is compared whole");
    cr_expect_null(auth_check(t, n, "Basic alpha"));
    cr_expect_null(auth_check(t, n, "Bearer "));
    cr_expect_null(auth_check(t, n, NULL));
    free(t);
}

Test(auth, bad_files_name_the_line)
{
    struct { const char *text, *msg; } bad[] = {
        {"a:read\n", "tokens:1: expected name:role:sha256hex"},
        {"# c\na:owner:" H_ALPHA "\n", "tokens:2: role must be read, submit or admin"},
        {"a:read:" H_ALPHA "\nb:read:zzd3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8\n",
         "tokens:2: bad hex digest"},
        {":read:" H_ALPHA, "tokens:1: expected"},
        {"# only comments\n\n", "holds no tokens"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        token_t *t = NULL;
        int n = 0;
        lrq_err_t err = {0};
        cr_expect_lt(auth_parse(bad[i].text, "tokens", &t, &n, &err), 0, "case %zu accepted", i);
        cr_expect(strstr(err.msg, bad[i].msg) != NULL, "case %zu: %s", i, err.msg);
        cr_expect_null(t);
    }
}
