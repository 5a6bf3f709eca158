# engine: the thread pool, the one parallel-for of numerics and quantizers alike
noinst_LTLIBRARIES += libeng_pool.la
libeng_pool_la_SOURCES = engine/eng_pool.h engine/eng_pool.c engine/eng_mm.h engine/eng_mm.c
libeng_pool_la_LIBADD = $(DNNL_LIBS)
libengine_la_LIBADD += libeng_pool.la

# engine: numerics (block forward/backward, full-model forward, eval, generation)
noinst_LTLIBRARIES += libeng_num.la
libeng_num_la_SOURCES = engine/eng_block.h engine/eng_forward.h engine/eng_kernels.h \
	engine/eng_kernels.c engine/eng_block.c engine/eng_forward.c
# Element-wise loops (exp, RMSNorm, RoPE) are written to auto-vectorize; -O2's
# very-cheap cost model would leave most of them scalar.
libeng_num_la_CFLAGS = $(AM_CFLAGS) -ftree-vectorize -fvect-cost-model=dynamic

# tests (Criterion, TAP through LOG_DRIVER)
NUM_TEST_LIBS = libeng_num.la libeng_pool.la libeng_io.la libcommon.la $(JANSSON_LIBS) $(OPENBLAS_LIBS) -lpthread -lm $(TEST_LIBS)
check_PROGRAMS += tests/engine/test_grad tests/engine/test_forward
TESTS += tests/engine/test_grad tests/engine/test_forward
tests_engine_test_grad_SOURCES = tests/engine/test_grad.c
tests_engine_test_grad_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_grad_LDADD = $(NUM_TEST_LIBS)
# test_forward reads tests/data/stories260K_eval_ref.json (tools/ref_forward.py, command inside)
tests_engine_test_forward_SOURCES = tests/engine/test_forward.c
tests_engine_test_forward_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_forward_LDADD = $(NUM_TEST_LIBS)
EXTRA_DIST += tools/ref_forward.py tests/data/stories260K_eval_ref.json
# the pool itself, and that quantizer and block results do not depend on its thread count
check_PROGRAMS += tests/engine/test_pool
TESTS += tests/engine/test_pool
tests_engine_test_pool_SOURCES = tests/engine/test_pool.c
tests_engine_test_pool_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_pool_LDADD = libeng_quant.la $(NUM_TEST_LIBS)
# matmul backends: bf16 rounding, OpenBLAS vs oneDNN on every product shape of the block (issue 12)
check_PROGRAMS += tests/engine/test_mm
TESTS += tests/engine/test_mm
tests_engine_test_mm_SOURCES = tests/engine/test_mm.c
tests_engine_test_mm_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_mm_LDADD = $(NUM_TEST_LIBS)
