# Issue 13: progress history and the dashboard. test_progress.sh runs the real lrqd and
# lrq-worker on stories260K (~20 s); the browser suite is `make check-browser` (CI runs it
# after `make check`): headless Debian chromium driven by playwright-core (tests/browser/).
TESTS += tests/integration/test_progress.sh
EXTRA_DIST += tests/integration/test_progress.sh tests/integration/dash.mk tests/browser/dashboard.test.mjs \
	tests/browser/run.sh tests/browser/package.json tests/browser/package-lock.json

check-browser: all
	LRQ_SRCDIR='$(abs_top_srcdir)' LRQ_BUILDDIR='$(abs_top_builddir)' LRQ_SHARED='$(abs_top_srcdir)/../shared' \
	  OPENBLAS_NUM_THREADS=1 $(SHELL) $(top_srcdir)/tests/browser/run.sh
.PHONY: check-browser
