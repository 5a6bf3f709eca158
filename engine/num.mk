# engine: numerics (block forward/backward, full-model forward, eval, generation)
noinst_LTLIBRARIES += libeng_num.la
libeng_num_la_SOURCES = engine/eng_block.h engine/eng_forward.h
