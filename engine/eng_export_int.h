/* eng_export_int.h — helpers eng_export.c shares with the other exporters (eng_gguf.c, eng_ct.c);
 * not part of the engine's API. */
#ifndef ENG_EXPORT_INT_H
#define ENG_EXPORT_INT_H
#include <jansson.h>
#include "eng_export.h"

/* outdir created and writable, not the source's directory, stale loader-visible files removed. */
int eng__export_prepare(const eng_model_t *src, const char *outdir, lrq_err_t *err);
/* lrq-manifest.json (docs/formats.md, Artifacts) over the n files `names` of outdir; extra (stolen,
 * may be NULL) is merged into the top-level object. */
int eng__export_manifest(const eng_model_t *src, int bits, int group, int sym, const char *outdir, const char *kind,
                         json_t *extra, const char *const *names, int n, lrq_err_t *err);
int eng__export_write_json(const char *dir, const char *name, const json_t *j, lrq_err_t *err);
/* config.json of the source, or one built from a llama2.c header (new reference). */
json_t *eng__export_base_config(const eng_model_t *src);
/* Tokenizer / generation files beside the source copied into outdir; *names (malloc'd array of
 * malloc'd names, *n of them) for the manifest. */
int eng__export_copy_side_files(const eng_model_t *src, const char *outdir, char ***names, int *n, lrq_err_t *err);
/* The model's group size: that of the first linear whose groups are narrower than its rows, else 0
 * (per-channel, or groups at least as wide as every row). */
int eng__export_group(const eng_model_t *src, const eng_qsource_t *qs, int *gs, lrq_err_t *err);
#endif
