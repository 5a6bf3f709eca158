# engine: model I/O (safetensors reader, llama2.c, config.json), tokenizers, data streams
noinst_LTLIBRARIES += libeng_io.la
libeng_io_la_SOURCES = engine/eng_model.h engine/eng_half.h engine/eng_tok.h engine/eng_safetensors.h \
	engine/eng_spm.h engine/eng_model.c engine/eng_st_read.c engine/eng_tok.c engine/eng_spm.c engine/eng_data.c

# tests (Criterion, TAP through LOG_DRIVER)
IO_TEST_LIBS = libeng_io.la libcommon.la $(JANSSON_LIBS) -lm $(TEST_LIBS)
check_PROGRAMS += tests/engine/test_model tests/engine/test_tok tests/engine/test_data
TESTS += tests/engine/test_model tests/engine/test_tok tests/engine/test_data
tests_engine_test_model_SOURCES = tests/engine/test_model.c tests/engine/test_util.h
tests_engine_test_model_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_model_LDADD = $(IO_TEST_LIBS)
tests_engine_test_tok_SOURCES = tests/engine/test_tok.c
tests_engine_test_tok_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_tok_LDADD = $(IO_TEST_LIBS)
tests_engine_test_data_SOURCES = tests/engine/test_data.c
tests_engine_test_data_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_data_LDADD = $(IO_TEST_LIBS)
EXTRA_DIST += tools/mkmodel.py tests/engine/ref_tok.py tests/engine/tok_bin2json.py
# SentencePiece .model tokenizers against the .bin exports; the GGUF export from each
check_PROGRAMS += tests/engine/test_spm
TESTS += tests/engine/test_spm
tests_engine_test_spm_SOURCES = tests/engine/test_spm.c tests/engine/test_util.h
tests_engine_test_spm_CFLAGS = $(TEST_CFLAGS)
tests_engine_test_spm_LDADD = libeng_quant.la libeng_pool.la libeng_io.la libcommon.la $(JANSSON_LIBS) $(NETTLE_LIBS) \
	$(OPENBLAS_LIBS) -lpthread -lm $(TEST_LIBS)
# end to end: a .model as the job's tokenizer; corrupt / UNIGRAM ones fail naming "tokenizer"
TESTS += tests/integration/test_tok_spm.sh
EXTRA_DIST += tests/integration/test_tok_spm.sh
