/* test_cfg.c — daemon/cfg.c: options and the start-up path resolution
 * (issue 8: paths are absolute after start-up, and a missing or
 * non-executable worker stops lrqd naming --worker). */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/socket.h>
#include "daemon/cfg.h"

static char tmp[PATH_MAX], cwd0[PATH_MAX];

static void touch(const char *rel, int mode)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s", p);
    fputs("#!/bin/sh\n", f);
    fclose(f);
    cr_assert_eq(chmod(p, mode), 0);
}

static void setup(void)
{
    cr_assert_not_null(getcwd(cwd0, sizeof cwd0));
    snprintf(tmp, sizeof tmp, "/tmp/lrq-test-cfg-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    char real[PATH_MAX];
    cr_assert_not_null(realpath(tmp, real));
    snprintf(tmp, sizeof tmp, "%s", real);
    cr_assert_eq(chdir(tmp), 0);
    cr_assert_eq(mkdir("data", 0755), 0);
    touch("worker", 0755);
    touch("noexec", 0644);
    touch("tokens", 0600);
}

static void teardown(void)
{
    if (chdir(cwd0)) fprintf(stderr, "chdir back failed\n");
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
}

TestSuite(cfg, .init = setup, .fini = teardown);

/* Parse argv (NULL-terminated), then resolve; returns cfg_resolve_paths's rc. */
static int load(cfg_t *c, lrq_err_t *err, const char **argv)
{
    int argc = 0;
    while (argv[argc]) argc++;
    int rc = cfg_load(c, argc, (char **)argv, err);
    cr_assert_eq(rc, 0, "cfg_load: %s", err->msg);
    return cfg_resolve_paths(c, NULL, err);
}

static void expect_abs(const char *got, const char *rel)
{
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/%s", tmp, rel);
    cr_expect_str_eq(got, want);
}

Test(cfg, relative_paths_become_absolute)
{
    cfg_t c;
    lrq_err_t err = {0};
    const char *argv[] = {"lrqd", "--state-dir", "st/sub", "--data-root", "./data", "--worker", "./worker",
                          "--token-file", "tokens", "--port-file", "port", NULL};
    cr_assert_eq(load(&c, &err, argv), 0, "%s", err.msg);
    expect_abs(c.state_dir, "st/sub");
    expect_abs(c.data_root[0], "data");
    expect_abs(c.worker, "worker");
    expect_abs(c.token_file, "tokens");
    expect_abs(c.port_file, "port");
    struct stat st;
    cr_expect(stat(c.state_dir, &st) == 0 && S_ISDIR(st.st_mode), "state dir created");
    cr_expect_eq(st.st_mode & 0777, 0750);
    /* The result no longer depends on the working directory. */
    cr_assert_eq(chdir("/"), 0);
    cr_expect_eq(access(c.worker, X_OK), 0);
    cfg_free(&c);
}

static void expect_refused(const char **argv, const char *flag, const char *why)
{
    cfg_t c;
    lrq_err_t err = {0};
    cr_expect_lt(load(&c, &err, argv), 0, "accepted %s", argv[2]);
    cr_expect(strstr(err.msg, flag) != NULL, "message names %s: %s", flag, err.msg);
    cr_expect(strstr(err.msg, why) != NULL, "message says \"%s\": %s", why, err.msg);
    cfg_free(&c);
}

Test(cfg, missing_or_unusable_paths_are_refused_naming_the_flag)
{
    expect_refused((const char *[]){"lrqd", "--state-dir", "st", "--worker", "/nonexistent", NULL}, "--worker",
                   "No such file");
    expect_refused((const char *[]){"lrqd", "--state-dir", "st", "--worker", "./noexec", NULL}, "--worker",
                   "not executable");
    expect_refused((const char *[]){"lrqd", "--state-dir", "st", "--worker", "./data", NULL}, "--worker",
                   "not a regular file");
    expect_refused((const char *[]){"lrqd", "--state-dir", "st", "--worker", "no-such-worker-xyz", NULL},
                   "--worker", "not found in PATH");
    expect_refused((const char *[]){"lrqd", "--state-dir", "st", "--worker", "./worker", "--data-root", "nope", NULL},
                   "--data-root", "No such file");
    expect_refused((const char *[]){"lrqd", "--state-dir", "st", "--worker", "./worker", "--data-root", "tokens",
                                    NULL}, "--data-root", "not a directory");
    expect_refused((const char *[]){"lrqd", "--state-dir", "st", "--worker", "./worker", "--token-file", "nope",
                                    NULL}, "--token-file", "No such file");
    expect_refused((const char *[]){"lrqd", "--state-dir", "st", "--worker", "./worker", "--tls-cert", "nope",
                                    NULL}, "--tls-cert", "No such file");
    expect_refused((const char *[]){"lrqd", "--state-dir", "st", "--worker", "./worker", "--port-file", "no/dir/p",
                                    NULL}, "--port-file", "No such file");
    expect_refused((const char *[]){"lrqd", "--state-dir", "tokens/x", "--worker", "./worker", NULL}, "--state-dir",
                   "Not a directory");
}

Test(cfg, bare_worker_name_is_looked_up_in_path)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "/nonexistent:%s", tmp);
    const char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;
    setenv("PATH", path, 1);
    cfg_t c;
    lrq_err_t err = {0};
    int rc = load(&c, &err, (const char *[]){"lrqd", "--state-dir", "st", "--worker", "worker", NULL});
    if (saved) { setenv("PATH", saved, 1); free(saved); }
    cr_assert_eq(rc, 0, "%s", err.msg);
    expect_abs(c.worker, "worker");
    cfg_free(&c);
}

Test(cfg, default_worker_is_beside_lrqd)
{
    char self[PATH_MAX + 16];
    snprintf(self, sizeof self, "%s/lrqd", tmp);
    cr_assert_eq(rename("worker", "lrq-worker"), 0);
    cfg_t c;
    lrq_err_t err = {0};
    const char *argv[] = {"lrqd", "--state-dir", "st", NULL};
    cr_assert_eq(cfg_load(&c, 3, (char **)argv, &err), 0, "%s", err.msg);
    cr_assert_eq(cfg_resolve_paths(&c, self, &err), 0, "%s", err.msg);
    expect_abs(c.worker, "lrq-worker");
    cfg_free(&c);
}

Test(cfg, flags_override_the_file_and_bad_values_are_named)
{
    FILE *f = fopen("lrqd.conf", "w");
    fputs("# comment\nworkers = 3\ngrace_s = 7\n", f);
    fclose(f);
    cfg_t c;
    lrq_err_t err = {0};
    const char *argv[] = {"lrqd", "--config", "lrqd.conf", "--workers=5", NULL};
    cr_assert_eq(cfg_load(&c, 4, (char **)argv, &err), 0, "%s", err.msg);
    cr_expect_eq(c.workers, 5);
    cr_expect_eq(c.grace_s, 7);
    cfg_free(&c);
    const char *bad[] = {"lrqd", "--workers", "0", NULL};
    cr_expect_lt(cfg_load(&c, 3, (char **)bad, &err), 0);
    cr_expect(strstr(err.msg, "workers") != NULL, "%s", err.msg);
    cfg_free(&c);
}

Test(cfg, listen_addresses)
{
    struct sockaddr_storage ss;
    int v6, lo;
    char host[256];
    lrq_err_t err = {0};
    struct { const char *s, *host; int v6, lo; } good[] = {
        {"127.0.0.1:8470", "127.0.0.1", 0, 1}, {"localhost:0", "127.0.0.1", 0, 1}, {"127.1.2.3:1", "127.1.2.3", 0, 1},
        {"0.0.0.0:8470", "0.0.0.0", 0, 0},     {"[::1]:8470", "::1", 1, 1},        {"[::]:80", "::", 1, 0},
        {"10.0.0.5:65535", "10.0.0.5", 0, 0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cr_expect_eq(cfg_parse_listen(good[i].s, &ss, &v6, &lo, host, sizeof host, &err), 0, "%s: %s", good[i].s,
                     err.msg);
        cr_expect_str_eq(host, good[i].host, "%s", good[i].s);
        cr_expect_eq(v6, good[i].v6, "%s", good[i].s);
        cr_expect_eq(lo, good[i].lo, "%s: loopback", good[i].s);
    }
    const char *bad[] = {"8470", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80x", "example.org:80", ":80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_lt(cfg_parse_listen(bad[i], &ss, &v6, &lo, host, sizeof host, &err), 0, "accepted %s", bad[i]);
        cr_expect(strstr(err.msg, "listen") != NULL, "%s", err.msg);
    }
}
