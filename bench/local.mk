# Benchmarks: built by `make`, run by `make bench`, never part of `make check`.
noinst_PROGRAMS += bench/lrq-bench
bench_lrq_bench_SOURCES = bench/lrq_bench.c bench/lrq_bench_methods.c
bench_lrq_bench_CFLAGS = $(AM_CFLAGS) $(LAPACKE_CFLAGS)
bench_lrq_bench_LDADD = $(ENGINE_LIBS) $(LAPACKE_LIBS)
EXTRA_DIST += bench/quality.sh bench/backends.sh bench/precision.sh

bench: all
	@echo "== LRQ iteration, Llama-2-7B-shaped block (synthetic weights): fp32 OpenBLAS, fp32 oneDNN, bf16 =="
	$(SHELL) $(top_srcdir)/bench/backends.sh $(abs_top_builddir) block --dim 4096 --ffn 11008 --heads 32 --kv-heads 32 --rank 1024 --batch 2 --seq 512 --iters 3 --threads 2
	@echo "== LRQ iteration, stories260K-shaped block (synthetic weights): fp32 OpenBLAS, fp32 oneDNN, bf16 =="
	$(SHELL) $(top_srcdir)/bench/backends.sh $(abs_top_builddir) block --dim 64 --ffn 172 --heads 8 --kv-heads 4 --rank 16 --batch 2 --seq 256 --iters 200 --threads 2
	@echo "== Quality on stories260K (calib.txt → eval.txt, seq 256) =="
	$(SHELL) $(top_srcdir)/bench/quality.sh $(abs_top_builddir) $(abs_top_srcdir)/../shared
.PHONY: bench
EXTRA_DIST += bench/torch_block.py bench/compare.sh bench/wrk.sh

# Optional side-by-side with PyTorch CPU (needs Debian python3-torch; prints "skipped" without it).
bench-torch: all
	$(SHELL) $(top_srcdir)/bench/compare.sh $(abs_top_builddir) 2
.PHONY: bench-torch

# GPTQ and truncated SVD on 7B-shaped synthetic weights (issue 10), and the methods' quality table.
bench-methods: all
	./bench/lrq-bench gptq --dim 4096 --ffn 11008 --tokens 2048 --threads 2
	./bench/lrq-bench svd --m 4096 --n 4096 --rank 32
	nice -n 10 $(SHELL) $(top_srcdir)/bench/methods_table.sh $(abs_top_builddir) $(abs_top_srcdir)/../shared
.PHONY: bench-methods
EXTRA_DIST += bench/methods_table.sh

# bf16 vs fp32 reconstruction quality on stories260K (LRQ and FlexRound W3; a few minutes).
bench-precision: all
	$(SHELL) $(top_srcdir)/bench/precision.sh $(abs_top_builddir) $(abs_top_srcdir)/../shared
.PHONY: bench-precision

# Wall time of the block pipelines: sequential, parallel in one worker, parallel as 2 and 5 tasks
# (issue 14, docs/daemon.md "Block-parallel tasks"); stories260K and babyllama-tok105.
bench-pipeline: all
	nice -n 10 $(SHELL) $(top_srcdir)/bench/pipeline_tasks.sh $(abs_top_builddir) $(abs_top_srcdir)/../shared
.PHONY: bench-pipeline
EXTRA_DIST += bench/pipeline_tasks.sh

# A Llama-2-7B-shaped job end to end through lrqd and lrqctl (issue 15; docs/e2e-7b.md): writes the
# synthetic checkpoint once under ../bench-models (13.5 GB at 32 layers), then per-stage time, peak
# RSS, disk against lrqd's estimate and the paper schedule's extrapolated time. Hours, not part of
# make check. E2E_ARGS: e.g. "--layers 2", "--sweep '2 4 8'", "--layers 2 --kill".
E2E_ARGS ?= --layers 32
bench-e2e-7b: all
	nice -n 10 bash $(top_srcdir)/bench/e2e-7b.sh $(abs_top_builddir) $(abs_top_srcdir)/../shared $(E2E_ARGS)
.PHONY: bench-e2e-7b
EXTRA_DIST += bench/e2e-7b.sh
