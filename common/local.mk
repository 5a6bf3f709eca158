noinst_LTLIBRARIES += libcommon.la
libcommon_la_SOURCES = common/lrq_err.c common/lrq_err.h common/lrq_spec.c common/lrq_spec.h
