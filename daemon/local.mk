# fragment: daemon/local.mk — lrqd, its schema, config, systemd unit and tests.

# The testable core (no libuv/MHD): database, line splitter, router, options,
# the daemon's decisions (policy), job JSON, metrics, Range parsing.
noinst_LTLIBRARIES += libdaemon.la
libdaemon_la_SOURCES = daemon/db.c daemon/db.h daemon/lines.c daemon/lines.h daemon/router.c daemon/router.h \
	daemon/routes.c daemon/routes.h daemon/cfg.c daemon/cfg.h daemon/policy.c daemon/policy.h \
	daemon/jobjson.c daemon/jobjson.h daemon/metrics.c daemon/metrics.h daemon/range.c daemon/range.h \
	daemon/auth.c daemon/auth.h daemon/manifest.c daemon/manifest.h daemon/confine.c daemon/confine.h \
	daemon/decim.c daemon/decim.h daemon/hist.c daemon/hist.h \
	daemon/slurm.c daemon/slurm.h daemon/estimate.c daemon/estimate.h
nodist_libdaemon_la_SOURCES = daemon/schema.c
libdaemon_la_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
libdaemon_la_LIBADD = $(SQLITE_LIBS)

# The migrations are compiled into lrqd (no install needed to run it); schema/
# is their one source. Adding a migration: drop NNNN_name.sql into schema/ and
# list it here.
SCHEMA_SQL = $(top_srcdir)/schema/0001_init.sql $(top_srcdir)/schema/0002_progress.sql \
	$(top_srcdir)/schema/0003_slurm.sql
daemon/schema.c: $(SCHEMA_SQL) $(top_srcdir)/scripts/embed-schema.sh
	$(AM_V_GEN)$(MKDIR_P) daemon && $(SHELL) $(top_srcdir)/scripts/embed-schema.sh $@ $(SCHEMA_SQL)
BUILT_SOURCES = daemon/schema.c
CLEANFILES += daemon/schema.c

# The dashboard (GET /, GET /ui/NAME): dashboard/ compiled into lrqd the same way.
DASH_FILES = $(top_srcdir)/dashboard/index.html $(top_srcdir)/dashboard/app.js $(top_srcdir)/dashboard/chart.js \
	$(top_srcdir)/dashboard/style.css
daemon/assets.c: $(DASH_FILES) $(top_srcdir)/scripts/embed-assets.sh
	$(AM_V_GEN)$(MKDIR_P) daemon && $(SHELL) $(top_srcdir)/scripts/embed-assets.sh $@ $(DASH_FILES)
BUILT_SOURCES += daemon/assets.c
CLEANFILES += daemon/assets.c
EXTRA_DIST += $(DASH_FILES) scripts/embed-assets.sh
EXTRA_DIST += schema/0001_init.sql schema/0002_progress.sql schema/0003_slurm.sql scripts/embed-schema.sh

# Unit tests.
DAEMON_UNIT = tests/unit/test_db tests/unit/test_router tests/unit/test_lines tests/unit/test_cfg \
	tests/unit/test_policy tests/unit/test_range tests/unit/test_auth tests/unit/test_jobjson tests/unit/test_manifest tests/unit/test_confine \
	tests/unit/test_decim tests/unit/test_hist tests/unit/test_estimate
check_PROGRAMS += $(DAEMON_UNIT)
TESTS += $(DAEMON_UNIT)
# Every daemon unit test is tests/unit/NAME.c linked with the testable core.
DAEMON_TEST_LDADD = libdaemon.la $(COMMON_LIBS) $(SQLITE_LIBS) $(TEST_LIBS)
tests_unit_test_db_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_db_LDADD = $(DAEMON_TEST_LDADD)
tests_unit_test_router_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_router_LDADD = $(DAEMON_TEST_LDADD)
tests_unit_test_lines_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_lines_LDADD = $(DAEMON_TEST_LDADD)
tests_unit_test_cfg_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_cfg_LDADD = $(DAEMON_TEST_LDADD)
tests_unit_test_policy_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_policy_LDADD = $(DAEMON_TEST_LDADD)
tests_unit_test_range_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_range_LDADD = $(DAEMON_TEST_LDADD)
tests_unit_test_auth_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_auth_LDADD = $(DAEMON_TEST_LDADD)
tests_unit_test_jobjson_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_jobjson_LDADD = $(DAEMON_TEST_LDADD)
tests_unit_test_manifest_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_manifest_LDADD = $(DAEMON_TEST_LDADD)
tests_unit_test_confine_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_confine_LDADD = $(DAEMON_TEST_LDADD)
tests_unit_test_decim_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_decim_LDADD = $(DAEMON_TEST_LDADD)
tests_unit_test_hist_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_hist_LDADD = $(DAEMON_TEST_LDADD)
tests_unit_test_estimate_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_estimate_LDADD = $(DAEMON_TEST_LDADD)

bin_PROGRAMS += lrqd
lrqd_SOURCES = daemon/main.c daemon/lrqd.h daemon/log.c daemon/log.h \
	daemon/http.c daemon/sse.c daemon/sse.h daemon/api.c daemon/sched.c daemon/exec.h daemon/exec_local.c daemon/exec_slurm.c \
	daemon/assets.h
nodist_lrqd_SOURCES = daemon/assets.c
lrqd_CFLAGS = $(AM_CFLAGS) $(LIBUV_CFLAGS) $(MHD_CFLAGS) $(SQLITE_CFLAGS) $(NETTLE_CFLAGS) $(SYSTEMD_CFLAGS)
lrqd_LDADD = libdaemon.la $(COMMON_LIBS) $(LIBUV_LIBS) $(MHD_LIBS) $(SQLITE_LIBS) $(NETTLE_LIBS) $(SYSTEMD_LIBS)

# Installed configuration and systemd unit.
lrqconfdir = $(sysconfdir)/lrq
dist_lrqconf_DATA = etc/lrqd.conf
systemdsystemunitdir = $(prefix)/lib/systemd/system
systemdsystemunit_DATA = systemd/lrqd.service
systemd/lrqd.service: $(top_srcdir)/systemd/lrqd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	  -e 's|@docdir[@]|$(docdir)|g' $(top_srcdir)/systemd/lrqd.service.in > $@
CLEANFILES += systemd/lrqd.service
EXTRA_DIST += systemd/lrqd.service.in docs/api.md docs/openapi.yaml docs/daemon.md

# Integration tests: the real lrqd + tests/integration/fake-worker.sh on
# 127.0.0.1 (ephemeral ports, temp state dirs, bounded waits). Need curl(1).
TESTS += tests/integration/test_api.sh tests/integration/test_jobs.sh tests/integration/test_faults.sh \
	tests/integration/test_startup.sh tests/integration/test_readme.sh
EXTRA_DIST += tests/integration/lib.sh tests/integration/lib_api.sh tests/integration/fake-worker.sh tests/integration/test_api.sh \
	tests/integration/test_jobs.sh tests/integration/test_faults.sh tests/integration/test_startup.sh \
	tests/integration/test_readme.sh etc/example-job.json
