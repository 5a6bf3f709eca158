/* test_confine.c — daemon/confine.c: spec paths stay inside the data roots,
 * whatever the symlinks, dots and prefixes. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/confine.h"

static char tmp[PATH_MAX], r1[PATH_MAX + 16], r2[PATH_MAX + 16];

static void mk(const char *rel, int dir)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    if (dir) cr_assert_eq(mkdir(p, 0755), 0, "%s", p);
    else {
        FILE *f = fopen(p, "w");
        cr_assert_not_null(f, "%s", p);
        fclose(f);
    }
}

static void setup(void)
{
    char t[] = "/tmp/lrq-test-confine-XXXXXX";
    cr_assert_not_null(mkdtemp(t));
    cr_assert_not_null(realpath(t, tmp));
    mk("data", 1); mk("data/m.bin", 0); mk("data/hf", 1); mk("data/hf/config.json", 0);
    mk("database", 1); mk("database/x.bin", 0); mk("other", 1); mk("other/secret", 0); mk("models", 1);
    mk("models/y.bin", 0);
    char p[PATH_MAX + 64], t2[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/data/escape", tmp);
    snprintf(t2, sizeof t2, "%s/other/secret", tmp);
    cr_assert_eq(symlink(t2, p), 0);
    snprintf(p, sizeof p, "%s/data/inside", tmp);
    cr_assert_eq(symlink("m.bin", p), 0);
    snprintf(r1, sizeof r1, "%s/data", tmp);
    snprintf(r2, sizeof r2, "%s/models", tmp);
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
}

TestSuite(confine, .init = setup, .fini = teardown);

static int conf(const char *v, int allow_dir, char *out)
{
    const char *roots[] = {r1, r2};
    return confine_path(roots, 2, v, allow_dir, out);
}

static void ok(const char *v, int allow_dir, const char *want_rel)
{
    char out[PATH_MAX], want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/%s", tmp, want_rel);
    cr_expect_eq(conf(v, allow_dir, out), 0, "refused %s", v);
    cr_expect_str_eq(out, want, "%s", v);
}

static void no(const char *v, int allow_dir)
{
    char out[PATH_MAX];
    cr_expect_lt(conf(v, allow_dir, out), 0, "accepted %s", v);
}

Test(confine, inside_the_roots)
{
    char abs[PATH_MAX + 64];
    ok("m.bin", 0, "data/m.bin");
    ok("y.bin", 0, "models/y.bin");        /* relative: each root in turn */
    ok("hf", 1, "data/hf");                 /* a model directory */
    ok("./hf/../m.bin", 0, "data/m.bin");
    ok("inside", 0, "data/m.bin");          /* a symlink that stays inside */
    snprintf(abs, sizeof abs, "%s/data/hf/config.json", tmp);
    ok(abs, 0, "data/hf/config.json");
}

Test(confine, outside_or_wrong_kind)
{
    char abs[PATH_MAX + 64];
    no("escape", 0);                        /* symlink out of the root */
    no("../other/secret", 0);
    no("../database/x.bin", 0);             /* shares the prefix "data" */
    snprintf(abs, sizeof abs, "%s/database/x.bin", tmp);
    no(abs, 0);
    no("/etc/passwd", 0);
    no("hf", 0);                            /* a directory where a file is required */
    no("nope.bin", 0);
    no(".", 1);                             /* the root itself */
    no("", 0);
}
