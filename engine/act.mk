# engine: activation quantization (per-token / per-tensor fake quant, calibration) and SmoothQuant (issue 11)
libeng_num_la_SOURCES += engine/eng_actq.h engine/eng_actq.c engine/eng_smooth.h engine/eng_smooth.c
if WITH_CRITERION
check_PROGRAMS += tests/engine/test_actq
TESTS += tests/engine/test_actq
tests_engine_test_actq_SOURCES = tests/engine/test_actq.c
tests_engine_test_actq_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_actq_LDADD = $(NUM_TEST_LIBS)
endif
# end to end: activation.json, eval --activation reproduces the job, SmoothQuant, simulated reconstruction
TESTS += tests/integration/test_act.sh
EXTRA_DIST += tests/integration/test_act.sh bench/act_quality.sh
# the weight-activation acceptance table (issue 11): `make bench-act` (long; nice it)
bench-act: all
	$(SHELL) $(top_srcdir)/bench/act_quality.sh $(abs_top_builddir) $(abs_top_srcdir)/../shared
.PHONY: bench-act
