/* buildinfo.c - the version and commit CMake passes to this file only
 * (buildinfo.h), so that a new commit recompiles one file, not the tree. */
#include "hubbub/buildinfo.h"

#ifndef HB_VERSION
#define HB_VERSION "unknown"
#endif
#ifndef HB_GIT_COMMIT
#define HB_GIT_COMMIT "unknown"
#endif

const char *hb_build_version(void) { return HB_VERSION; }
const char *hb_build_commit(void) { return HB_GIT_COMMIT; }
