# fragment: tests/local.mk
