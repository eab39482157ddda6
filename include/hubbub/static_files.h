/*
 * static_files.h - the SDK and demo files, embedded into the binary at build
 * time (cmake/embed.cmake), so the files served are exactly the ones tested
 * and the server needs no files beside it.
 */
#ifndef HUBBUB_STATIC_FILES_H
#define HUBBUB_STATIC_FILES_H

#include <stddef.h>

typedef struct {
  const char *path;  /* URL path, e.g. "/sdk/hubbub.js" */
  const unsigned char *data;
  size_t len;
  const char *etag;  /* quoted strong validator from the content hash */
} hb_static_file;

extern const hb_static_file hb_static_files[];
extern const size_t hb_static_files_count;

#endif
