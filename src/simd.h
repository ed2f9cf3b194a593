/* HG_SIMD_CLONES: hot elementwise loops are also compiled for AVX2 and
 * AVX-512 on x86-64 and picked at load time (target_clones). Every clone
 * runs the same IEEE operations (the library is built in ISO C mode, so
 * nothing is contracted into FMA), so results do not depend on the clone.
 * Sanitizer builds keep one version. Internal. */
#ifndef HGRAD_SIMD_H
#define HGRAD_SIMD_H

#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define HG_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef HG_SIMD_CLONES
#define HG_SIMD_CLONES
#endif

#endif
