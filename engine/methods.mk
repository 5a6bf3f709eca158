# engine: GPTQ, LQER / L²QER, ODLRI (issue 10) and the low-rank factors' forward term.
# The factored forward is part of the numerics (eng_block.c calls it); the fits need LAPACK(E).
libeng_num_la_SOURCES += engine/eng_lowrank.h engine/eng_lowrank.c
libeng_quant_la_SOURCES += engine/eng_gptq.h engine/eng_gptq.c engine/eng_lqer.h engine/eng_lqer.c \
	engine/eng_odlri.h engine/eng_odlri.c
libeng_quant_la_CFLAGS += $(LAPACKE_CFLAGS)
libeng_quant_la_LIBADD = $(LAPACKE_LIBS)

