bin_PROGRAMS += lrq-worker
lrq_worker_SOURCES = worker/wk_main.c worker/wk_run.c worker/wk_recon.c worker/wk_proto.c worker/wk_proto.h \
	worker/wk_ckpt.c worker/wk_ckpt.h worker/wk_qstore.c worker/wk_qstore.h worker/wk_job.h \
	worker/wk_methods.c worker/wk_methods.h worker/wk_act.c worker/wk_act.h
lrq_worker_CFLAGS = $(AM_CFLAGS) $(NETTLE_CFLAGS) $(LAPACKE_CFLAGS)
lrq_worker_LDADD = $(ENGINE_LIBS)
