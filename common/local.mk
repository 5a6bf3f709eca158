noinst_LTLIBRARIES += libcommon.la
libcommon_la_SOURCES = common/lrq_err.c common/lrq_err.h common/lrq_spec.c common/lrq_spec.h \
	common/lrq_sha256.c common/lrq_sha256.h common/lrq_fs.c common/lrq_fs.h \
	common/lrq_clock.c common/lrq_clock.h common/lrq_buf.c common/lrq_buf.h \
	common/lrq_tasks.c common/lrq_tasks.h
libcommon_la_CFLAGS = $(AM_CFLAGS) $(NETTLE_CFLAGS)
