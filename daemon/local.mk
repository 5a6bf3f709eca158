# fragment: daemon/local.mk
