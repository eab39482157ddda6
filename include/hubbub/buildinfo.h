/*
 * buildinfo.h - what this binary was built from: the version and the git
 * commit, set by CMake when it configures the build (CMakeLists.txt), for
 * /metrics (hubbub_build_info) and anyone who asks.
 */
#ifndef HUBBUB_BUILDINFO_H
#define HUBBUB_BUILDINFO_H

/** "0.1.0". */
const char *hb_build_version(void);
/** The abbreviated commit ("e2010f0c1d2a"), with "-dirty" when the tree had
 * changes; "unknown" outside a git checkout. */
const char *hb_build_commit(void);

#endif
