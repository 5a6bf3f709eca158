# engine: quantizers (RTN, LRQ, FlexRound, Adam) and exporters (hf, gptq, safetensors writer)
noinst_LTLIBRARIES += libeng_quant.la
libeng_quant_la_SOURCES = engine/eng_quant.h engine/eng_export.h
