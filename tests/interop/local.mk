# make check-interop: lrq's artifacts in real runtimes (llama.cpp via node-llama-cpp's prebuilt CPU
# binary, installed by scripts/setup into tests/interop/node_modules). Not part of `make check`.
EXTRA_DIST += tests/interop/test_interop.sh tests/interop/llama.mjs tests/interop/package.json \
	tests/interop/package-lock.json
.PHONY: check-interop
check-interop: lrq-worker$(EXEEXT)
	LRQ_SRCDIR=$(abs_top_srcdir) LRQ_BUILDDIR=$(abs_top_builddir) $(SHELL) $(top_srcdir)/tests/interop/test_interop.sh
