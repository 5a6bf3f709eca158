# fragment: client/local.mk
