# Tests owned by the lead: spec validation, worker checkpoints, end-to-end worker runs.
if WITH_CRITERION
check_PROGRAMS += tests/unit/test_spec
TESTS += tests/unit/test_spec
tests_unit_test_spec_SOURCES = tests/unit/test_spec.c
tests_unit_test_spec_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_spec_LDADD = $(COMMON_LIBS) $(TEST_LIBS)
endif

# Worker end-to-end (real model, real data under $LRQ_SHARED).
TESTS += tests/integration/test_resume.sh tests/integration/test_worker.sh tests/integration/test_tls.sh
EXTRA_DIST += tests/integration/test_resume.sh tests/integration/test_worker.sh tests/integration/test_tls.sh

# The algorithms still work: LRQ and FlexRound lower every block's loss and beat RTN's KL (stories260K, ~10 s).
TESTS += tests/integration/test_algo.sh
EXTRA_DIST += tests/integration/test_algo.sh
include tests/integration/dash.mk
include tests/slurm/local.mk
# Export stage: in-job verification, manifests, hf dtype rule, refusals (issue 16).
TESTS += tests/integration/test_exports.sh
EXTRA_DIST += tests/integration/test_exports.sh
include tests/interop/local.mk

# GPTQ, LQER / L²QER, ODLRI (issue 10)
include tests/methods.mk
