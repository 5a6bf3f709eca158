# engine: model I/O (safetensors reader, llama2.c, config.json), tokenizers, data streams
noinst_LTLIBRARIES += libeng_io.la
libeng_io_la_SOURCES = engine/eng_model.h engine/eng_half.h engine/eng_tok.h engine/eng_safetensors.h
