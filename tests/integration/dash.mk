# Issue 13: progress history and the dashboard. test_progress.sh runs the real lrqd and
# lrq-worker on stories260K (~20 s); the browser suite is `make check-browser` (CI runs it
# after `make check`): headless Debian chromium driven by playwright-core (tests/browser/).
TESTS += tests/integration/test_progress.sh
EXTRA_DIST += tests/integration/test_progress.sh tests/integration/dash.mk tests/browser/dashboard.test.mjs \
	tests/browser/run.sh tests/browser/package.json tests/browser/package-lock.json

# Through automake's TAP driver like every other test (its .trs is counted by .ci/run).
check-browser: all
	@$(MKDIR_P) tests/browser; $(AM_TESTS_ENVIRONMENT) $(LOG_DRIVER) --test-name tests/browser/run.sh \
	  --log-file tests/browser/run.sh.log --trs-file tests/browser/run.sh.trs --color-tests no \
	  --enable-hard-errors yes --expect-failure no -- $(SHELL) $(top_srcdir)/tests/browser/run.sh; \
	grep -q '^:global-test-result: \(PASS\|SKIP\)' tests/browser/run.sh.trs || \
	  { tail -60 tests/browser/run.sh.log; exit 1; }
CLEANFILES += tests/browser/run.sh.log tests/browser/run.sh.trs
.PHONY: check-browser
