# fragment: bench/local.mk
