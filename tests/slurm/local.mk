# fragment: tests/slurm/local.mk — `make check-slurm`: the Slurm executor on a real
# one-node Slurm cluster that the test starts in its temp dir (tests/slurm/cluster.sh;
# the packages come from ./scripts/setup, this target installs nothing). Not part of
# `make check` (it needs munged/slurmctld/slurmd); .ci/run calls it after it. It runs
# through automake's TAP driver, so its .log/.trs sit beside the others, and it fails
# when the suite does — including when Slurm cannot start (the script bails out).
SLURM_TESTS = tests/slurm/test_slurm.sh
EXTRA_DIST += $(SLURM_TESTS) tests/slurm/cluster.sh tests/slurm/local.mk
check-slurm: all
	@rc=0; for t in $(SLURM_TESTS); do \
	  b=$${t%.sh}; $(MKDIR_P) $$(dirname $$b); \
	  $(AM_TESTS_ENVIRONMENT) $(LOG_DRIVER) --test-name $$t --log-file $$b.log --trs-file $$b.trs \
	    --color-tests no --enable-hard-errors yes --expect-failure no -- $(SHELL) $(top_srcdir)/$$t; \
	  grep -q '^:global-test-result: \(PASS\|SKIP\)$$' $$b.trs || rc=1; \
	  grep -q '^:test-result: \(FAIL\|ERROR\|XPASS\)' $$b.trs && rc=1; \
	done; \
	p=$$(cat $$(for t in $(SLURM_TESTS); do echo $${t%.sh}.trs; done) | grep -c '^:test-result: PASS'); \
	f=$$(cat $$(for t in $(SLURM_TESTS); do echo $${t%.sh}.trs; done) | grep -c -E '^:test-result: (FAIL|ERROR|XPASS)'); \
	echo "check-slurm: $$p passed, $$f failed"; exit $$rc
.PHONY: check-slurm
CLEANFILES += tests/slurm/test_slurm.log tests/slurm/test_slurm.trs

# The pure part (daemon/slurm.c) and the Slurm rows of the exit table: in make check.
if WITH_CRITERION
check_PROGRAMS += tests/slurm/test_slurm_unit
TESTS += tests/slurm/test_slurm_unit
tests_slurm_test_slurm_unit_SOURCES = tests/slurm/test_slurm_unit.c
tests_slurm_test_slurm_unit_CFLAGS = $(TEST_CFLAGS) $(SQLITE_CFLAGS)
tests_slurm_test_slurm_unit_LDADD = $(DAEMON_TEST_LDADD)
endif

# Block-parallel tasks with the local executor (worker/wk_tasks.c): in make check.
TESTS += tests/integration/test_tasks.sh
EXTRA_DIST += tests/integration/test_tasks.sh
