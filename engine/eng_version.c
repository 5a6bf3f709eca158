#include "config.h"
const char *eng_version(void) { return PACKAGE_VERSION; }
