/* Loops that reduce, expand or reorder along axes: the kernels behind
 * hg_sum_to, hg_broadcast_to and hg_permute. Not installed.
 *
 * All tensors are contiguous row-major and already checked by the op's shape
 * rule; out is freshly allocated and never aliases x. No allocation: scratch
 * lives on the stack. */
#ifndef HGRAD_LAYOUT_H
#define HGRAD_LAYOUT_H

#include "../internal.h"

/* out = x summed over the axes where out (right-aligned, shape broadcastable
 * to x's) has extent 1 or is missing. Float dtypes; f32 sums accumulate in
 * double. [n,m] -> [m] and [n,m] -> [n,1] are contiguous loops. An empty x
 * gives zeros. */
void hg_layout_sum_to(hg_tensor *out, const hg_tensor *x);

/* out = x broadcast (NumPy rules, right-aligned) to out's shape. Any dtype.
 * [m] -> [n,m] copies rows; [n,1] -> [n,m] fills rows. */
void hg_layout_broadcast(hg_tensor *out, const hg_tensor *x);

/* out[i0..] = x[...] with out.shape[d] = x.shape[perm[d]]; perm is a valid
 * permutation of x's rank. Any dtype. Unit axes are dropped and axes that
 * stay adjacent are merged, so a permutation that keeps the last axis copies
 * rows, and a 2-D transpose is done in cache tiles. */
void hg_layout_permute(hg_tensor *out, const hg_tensor *x, const int *perm);

#endif
