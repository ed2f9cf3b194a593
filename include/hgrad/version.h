/* libhgrad's version: compile-time macros and the runtime library's string.
 * The macros match meson's project version (the build checks it). */
#ifndef HGRAD_VERSION_H
#define HGRAD_VERSION_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HG_VERSION_MAJOR 0
#define HG_VERSION_MINOR 1
#define HG_VERSION_PATCH 0
#define HG_VERSION_STRING "0.1.0"
/* One number for comparisons: 10000 major + 100 minor + patch. */
#define HG_VERSION_NUMBER (HG_VERSION_MAJOR * 10000 + HG_VERSION_MINOR * 100 + HG_VERSION_PATCH)

/* Version of the library actually linked ("0.1.0"), static storage, never
 * NULL; compare with HG_VERSION_STRING to detect a header/library mismatch. */
HG_API const char *hg_version(void);
/* Its HG_VERSION_NUMBER. */
HG_API int hg_version_number(void);

#ifdef __cplusplus
}
#endif
#endif
