# Tests of issue 10 (GPTQ, LQER / L²QER, ODLRI): engine maths, spec keys, worker end to end.
if WITH_CRITERION
check_PROGRAMS += tests/engine/test_methods tests/unit/test_spec_methods
TESTS += tests/engine/test_methods tests/unit/test_spec_methods
tests_engine_test_methods_SOURCES = tests/engine/test_methods.c
tests_engine_test_methods_CFLAGS = $(TEST_CFLAGS) $(LAPACKE_CFLAGS)
tests_engine_test_methods_LDADD = libeng_quant.la $(NUM_TEST_LIBS) $(LAPACKE_LIBS)
tests_unit_test_spec_methods_SOURCES = tests/unit/test_spec_methods.c
tests_unit_test_spec_methods_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_spec_methods_LDADD = $(COMMON_LIBS) $(TEST_LIBS)
endif

# Worker end to end on stories260K (~30 s on one core): quality order, bits accounting, evaluated =
# exported, the factored artifact, resume after SIGTERM, thread-count determinism, shape checks, stacked mode.
TESTS += tests/integration/test_methods.sh
EXTRA_DIST += tests/integration/test_methods.sh

# Their results stream through the block store (issue 15, docs/memory.md): kill/restart gives the
# uninterrupted artifacts, block files hold the factors, corrupt factor sections are refused (~50 s).
TESTS += tests/integration/test_qstore.sh
EXTRA_DIST += tests/integration/test_qstore.sh

# The block store itself: factored round trip, codes-only (version 1) files, refusals with their reason.
if WITH_CRITERION
check_PROGRAMS += tests/worker/test_qstore
TESTS += tests/worker/test_qstore
tests_worker_test_qstore_SOURCES = tests/worker/test_qstore.c worker/wk_qstore.c worker/wk_ckpt.c
tests_worker_test_qstore_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/worker
tests_worker_test_qstore_CFLAGS = $(TEST_CFLAGS) $(NETTLE_CFLAGS)
tests_worker_test_qstore_LDADD = $(ENGINE_LIBS) $(TEST_LIBS)
endif
