# engine: quantizers (RTN, LRQ, FlexRound, Adam) and exporters (hf, gptq, safetensors writer)
noinst_LTLIBRARIES += libeng_quant.la
libeng_quant_la_SOURCES = engine/eng_quant.h engine/eng_export.h \
	engine/eng_qsimd.h engine/eng_quant.c engine/eng_lrq.c \
	engine/eng_qkern.h engine/eng_qkern_sse.c engine/eng_qkern_avx2.c engine/eng_qkern_avx512.c
# -Wno-psabi: eng_qsimd.h passes 8-float vectors between static inline helpers;
# -fno-math-errno: lets sqrtf vectorize (nothing here reads errno);
# -ffp-contract=off: no fused multiply-add in the avx512f kernels (eng_qkern.h: identical per-element
# results on every ISA; the SSE2/AVX2 targets have no FMA, so nothing else changes)
libeng_quant_la_CFLAGS = $(AM_CFLAGS) -Wno-psabi -fno-math-errno -ffp-contract=off

# quantizer tests (link only what they exercise)
if WITH_CRITERION
check_PROGRAMS += tests/engine/test_quant tests/engine/test_lrq
TESTS += tests/engine/test_quant tests/engine/test_lrq
tests_engine_test_quant_SOURCES = tests/engine/test_quant.c
tests_engine_test_quant_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_quant_LDADD = libeng_quant.la libeng_pool.la $(COMMON_LIBS) $(OPENBLAS_LIBS) -lpthread $(TEST_LIBS)
tests_engine_test_lrq_SOURCES = tests/engine/test_lrq.c
tests_engine_test_lrq_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_lrq_LDADD = libeng_quant.la libeng_pool.la $(COMMON_LIBS) $(OPENBLAS_LIBS) -lpthread $(TEST_LIBS)
endif
# export (hf, gptq) and safetensors writer — appended by the export engineer
libeng_quant_la_SOURCES += engine/eng_st_write.c engine/eng_export.c engine/eng_st_gen.h
libeng_quant_la_SOURCES += engine/eng_export_int.h engine/eng_gguf.h engine/eng_gguf.c
if WITH_CRITERION
check_PROGRAMS += tests/engine/test_export
TESTS += tests/engine/test_export
tests_engine_test_export_SOURCES = tests/engine/test_export.c
tests_engine_test_export_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_export_LDADD = libeng_quant.la libeng_pool.la libeng_io.la libcommon.la $(JANSSON_LIBS) $(NETTLE_LIBS) \
	$(OPENBLAS_LIBS) -lpthread -lm $(TEST_LIBS)
endif
EXTRA_DIST += tools/gptq_unpack.py
# evaluated = exported, GGUF, in-job verifiers (issue 16)
if WITH_CRITERION
check_PROGRAMS += tests/engine/test_gguf
TESTS += tests/engine/test_gguf
tests_engine_test_gguf_SOURCES = tests/engine/test_gguf.c
tests_engine_test_gguf_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_gguf_LDADD = libeng_quant.la libeng_pool.la libeng_io.la libcommon.la $(JANSSON_LIBS) $(NETTLE_LIBS) \
	$(OPENBLAS_LIBS) -lpthread -lm $(TEST_LIBS)
endif
EXTRA_DIST += tests/engine/gguf_decode.py tests/engine/ct_decode.py
# every ISA build of the quantizer kernels vs a scalar reference; unsupported ones SKIP (issue 12)
if WITH_CRITERION
check_PROGRAMS += tests/engine/test_qkern
TESTS += tests/engine/test_qkern
tests_engine_test_qkern_SOURCES = tests/engine/test_qkern.c
tests_engine_test_qkern_CFLAGS = $(TEST_CFLAGS) -Wno-psabi
tests_engine_test_qkern_LDADD = libeng_quant.la libeng_pool.la $(COMMON_LIBS) $(OPENBLAS_LIBS) -lpthread $(TEST_LIBS)
endif
