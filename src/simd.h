/* HG_SIMD_CLONES: hot elementwise loops are also compiled for AVX2 and
 * AVX-512 on x86-64 and picked at load time (target_clones). Every clone
 * runs the same IEEE operations (the library is built in ISO C mode, so
 * nothing is contracted into FMA), so results do not depend on the clone.
 * Sanitizer builds keep one version. Internal. */
#ifndef HGRAD_SIMD_H
#define HGRAD_SIMD_H

/* GCC says __SANITIZE_THREAD__; clang 14 only answers __has_feature. Under
 * TSan the ifunc resolvers run before its runtime is up and crash. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HG_NO_SIMD_CLONES 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define HG_NO_SIMD_CLONES 1
#endif
#endif

#if defined(__x86_64__) && defined(__has_attribute) && !defined(HG_NO_SIMD_CLONES)
#if __has_attribute(target_clones)
#define HG_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef HG_SIMD_CLONES
#define HG_SIMD_CLONES
#endif

#endif
