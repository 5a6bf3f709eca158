# fragment: worker/local.mk
