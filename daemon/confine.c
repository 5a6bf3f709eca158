/* confine.c — see confine.h. */
#include "confine.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* res strictly below root ("/srv/data" does not contain "/srv/database", nor itself). */
static int confine__under(const char *res, const char *root)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/') return 1;
    return !strncmp(res, root, n) && res[n] == '/';
}

int confine_path(const char *const *roots, int nroots, const char *value, int allow_dir, char out[PATH_MAX])
{
    for (int i = 0; i < nroots; i++) {
        char cand[PATH_MAX * 2], res[PATH_MAX];
        if (value[0] == '/') snprintf(cand, sizeof cand, "%s", value);
        else snprintf(cand, sizeof cand, "%s/%s", roots[i], value);
        if (strlen(cand) >= PATH_MAX || !realpath(cand, res)) {
            if (value[0] == '/') break;
            continue;
        }
        for (int k = 0; k < nroots; k++) {
            if (!confine__under(res, roots[k])) continue;
            struct stat st;
            if (stat(res, &st)) return -1;
            if (!(S_ISREG(st.st_mode) || (allow_dir && S_ISDIR(st.st_mode)))) return -1;
            if (access(res, R_OK)) return -1;
            memcpy(out, res, strlen(res) + 1);
            return 0;
        }
        if (value[0] == '/') break;
    }
    return -1;
}
