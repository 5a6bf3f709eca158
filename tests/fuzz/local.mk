# fragment: tests/fuzz/local.mk — libFuzzer harnesses (owned by the fuzz engineer).
#
# `make fuzz` builds every tests/fuzz/fuzz_*.c with clang -fsanitize=fuzzer,address,undefined
# and runs each for FUZZ_SECONDS (default 30) on a copy of its seed corpus; crash inputs
# are left in fuzz-out/<name>/. `make check` replays the seeds and every committed crash
# input (tests/fuzz/regress/<name>/) through the same entry points.
fuzz:
	$(SHELL) $(top_srcdir)/scripts/fuzz.sh $(abs_top_srcdir) $${FUZZ_SECONDS:-30} $(abs_top_builddir)/fuzz-out
.PHONY: fuzz

if WITH_CRITERION
check_PROGRAMS += tests/fuzz/test_fuzz_regress
TESTS += tests/fuzz/test_fuzz_regress
tests_fuzz_test_fuzz_regress_SOURCES = tests/fuzz/test_fuzz_regress.c worker/wk_ckpt.c
tests_fuzz_test_fuzz_regress_CFLAGS = $(TEST_CFLAGS) $(NETTLE_CFLAGS) $(SQLITE_CFLAGS) $(MHD_CFLAGS)
tests_fuzz_test_fuzz_regress_LDADD = libeng_io.la libdaemon.la $(COMMON_LIBS) $(SQLITE_LIBS) $(MHD_LIBS) \
	$(TEST_LIBS)
endif

EXTRA_DIST += scripts/fuzz.sh tests/fuzz/README.md tests/fuzz/gen_corpus.py \
	tests/fuzz/fuzz_spec.c tests/fuzz/fuzz_safetensors.c tests/fuzz/fuzz_llama2c.c tests/fuzz/fuzz_hf.c \
	tests/fuzz/fuzz_tok_bin.c \
	tests/fuzz/fuzz_tok_json.c tests/fuzz/fuzz_tok_spm.c tests/fuzz/fuzz_lines.c tests/fuzz/fuzz_router.c tests/fuzz/fuzz_ckpt.c \
	tests/fuzz/corpus tests/fuzz/dict tests/fuzz/regress
