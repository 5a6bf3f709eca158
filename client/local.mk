# fragment: client/local.mk — lrqctl, the command-line client (libcurl + jansson)
bin_PROGRAMS += lrqctl
noinst_LTLIBRARIES += libcli.la
libcli_la_SOURCES = client/cli.h client/cli_main.c client/cli_http.c client/cli_sse.c \
	client/cli_print.c client/cli_cmd.c
libcli_la_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(NETTLE_CFLAGS)
CLI_LIBS = libcli.la $(COMMON_LIBS) $(CURL_LIBS) $(NETTLE_LIBS)
lrqctl_SOURCES = client/lrqctl.c
lrqctl_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
lrqctl_LDADD = $(CLI_LIBS)

if WITH_CRITERION
check_PROGRAMS += tests/unit/test_cli tests/integration/test_cli_mock
TESTS += tests/unit/test_cli tests/integration/test_cli_mock
tests_unit_test_cli_SOURCES = tests/unit/test_cli.c
tests_unit_test_cli_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS) -I$(top_srcdir)/client
tests_unit_test_cli_LDADD = $(CLI_LIBS) $(TEST_LIBS)
tests_integration_test_cli_mock_SOURCES = tests/integration/test_cli_mock.c
tests_integration_test_cli_mock_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS) $(MHD_CFLAGS) -I$(top_srcdir)/client
tests_integration_test_cli_mock_LDADD = $(CLI_LIBS) $(MHD_LIBS) $(TEST_LIBS) -lpthread
endif
