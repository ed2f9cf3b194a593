/* Differentiable collectives over MPI (optional part of libhgrad: library
 * libhgrad-mpi, pkg-config module hgrad-mpi, built when meson finds MPI).
 *
 * Model: one process (rank) per shard, one hg_ctx per rank, every rank runs
 * the same program. Collectives are ordinary recorded ops whose vjps are
 * collectives again, so gradients and gradients of gradients flow across
 * ranks to any order:
 *
 *   op                      forward                        vjp
 *   hg_mpi_allreduce_sum    y = sum_r x_r on every rank    gx = allreduce_sum(gy)
 *   hg_mpi_allreduce_mean   y = (sum_r x_r) * (1/P)        gx = allreduce_mean(gy)
 *   hg_mpi_broadcast        y = x_root on every rank       gx = reduce_sum(gy, root)
 *   hg_mpi_reduce_sum       y = sum_r x_r on root, 0 else  gx = broadcast(gy, root)
 *   hg_mpi_allgather        y = concat_r x_r (axis 0)      gx = reduce_scatter(gy)
 *   hg_mpi_reduce_scatter   y = rows of rank r of sum_s x_s gx = allgather(gy)
 *
 * What a gradient means: each rank seeds its own target, and the sweep
 * differentiates the SUM over ranks of those seeded targets (so a loss
 * computed on a rank's shard, scaled by the global count, is the rank's part
 * of the global mean). A tensor that is replicated (the same value computed
 * on every rank, like the parameters in data-parallel training) gets a
 * per-rank cotangent whose sum over ranks is its true gradient: reduce it with
 * hg_mpi_allreduce_sum (or the in-place form) at the end. Inputs that are
 * sharded (a rank's own training rows) get their exact gradient locally.
 *
 * Determinism: sums are formed in rank order 0, 1, ..., P-1 for every element
 * (contributions are exchanged, then added locally in that order), so results
 * are bitwise identical on every rank, from run to run and whatever the
 * timing, and bitwise equal to one process adding the same per-rank tensors
 * left to right ((x_0 + x_1) + x_2 ...). They are not bitwise equal to a
 * single process that computes a full-batch gradient in one product (the
 * order of the additions differs), only equal to rounding (about 1e-15
 * relative in f64).
 *
 * Errors: every rank must call the same collectives in the same order. A
 * collective first agrees on every rank's inputs (dtype, shapes, root,
 * counts) and on whether each rank could take part; a bad or NULL input on
 * one rank, or an allocation failure, makes the call fail on EVERY rank
 * (HG_ERR_REMOTE on the others, naming the failing rank and its error)
 * instead of leaving them waiting. A NULL tensor argument still takes part in
 * the agreement, so a chain of calls can be checked once at the end as
 * usual. MPI's own errors are returned (HG_ERR_REMOTE with MPI's message):
 * the library works on a duplicate of the caller's communicator with
 * MPI_ERRORS_RETURN and never calls MPI_Abort. A rank that fails outside a
 * collective and skips the next one still leaves the others waiting in it:
 * call hg_mpi_agree before the next collective when that can happen (for
 * example after a gradient sweep). */
#ifndef HGRAD_MPI_H
#define HGRAD_MPI_H

#include <mpi.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hg_mpi_comm hg_mpi_comm;

/* Collective over comm: a library communicator (an MPI_Comm_dup of comm with
 * MPI_ERRORS_RETURN, so library traffic never mixes with the caller's).
 * MPI must be initialised. Returns NULL on failure with *status set
 * (HG_ERR_NULL, HG_ERR_OOM, HG_ERR_REMOTE); status may be NULL. Free with
 * hg_mpi_comm_free after every ctx whose tapes recorded ops on it is done
 * with them. Not thread-safe: one thread uses a comm at a time. */
HG_API hg_mpi_comm *hg_mpi_comm_new(MPI_Comm comm, hg_status *status);
/* Collective. Frees the duplicate communicator and the comm. NULL ignored. */
HG_API void hg_mpi_comm_free(hg_mpi_comm *comm);
/* This process's rank and the number of ranks (-1 for NULL). */
HG_API int hg_mpi_rank(const hg_mpi_comm *comm);
HG_API int hg_mpi_size(const hg_mpi_comm *comm);

/* The rows [*start, *start + *count) of n rows that rank `rank` of `size`
 * owns: contiguous blocks, the first n % size ranks one row more. Both
 * outputs 0 for invalid arguments. */
HG_API void hg_mpi_shard(int64_t n, int size, int rank, int64_t *start, int64_t *count);

/* ---- recorded collective ops (f32/f64 differentiable; i32 allowed, not
 * differentiated). Results are new tensors in ctx; NULL and the first error
 * on ctx on failure (on every rank, see above). Byte counts per rank must
 * fit an int (HG_ERR_OVERFLOW otherwise). ------------------------------- */

/* x: same shape and dtype on every rank. */
HG_API hg_tensor *hg_mpi_allreduce_sum(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x);
/* sum times 1/P (as hg_scale rounds it). */
HG_API hg_tensor *hg_mpi_allreduce_mean(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x);
/* x: same shape and dtype on every rank (the non-root values are ignored and
 * get zero gradient); root in [0, P), the same on every rank (HG_ERR_RANGE). */
HG_API hg_tensor *hg_mpi_broadcast(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x, int root);
/* x: same shape and dtype on every rank; the root gets the sum, the other
 * ranks zeros of x's shape. */
HG_API hg_tensor *hg_mpi_reduce_sum(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x, int root);
/* x: [n_r, ...] with rank >= 1, the same dtype and trailing extents on every
 * rank, n_r may differ (including 0): y = [sum n_r, ...], rank 0's rows
 * first. */
HG_API hg_tensor *hg_mpi_allgather(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x);
/* x: [N, ...] with rank >= 1, the same shape and dtype on every rank. rows:
 * P row counts summing to N, the same on every rank, or NULL for
 * hg_mpi_shard's split. Rank r gets [rows[r], ...], the sum over ranks of its
 * block of rows. */
HG_API hg_tensor *hg_mpi_reduce_scatter(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x, const int64_t *rows);

/* ---- training form and coordination (not recorded) -------------------- */

/* In place: ts[i] = sum over ranks of ts[i] (scale 1/P after the sum when
 * mean is nonzero), for n float tensors of matching shapes and dtypes on
 * every rank (for example the gradients of one data-parallel step, then an
 * hg_optimizer_step on every rank keeps the parameters identical). Sums in
 * rank order as above. Uses a buffer kept by comm: no allocation once it has
 * grown to the largest call. Errors (on every rank): HG_ERR_NULL,
 * HG_ERR_SHAPE, HG_ERR_DTYPE, HG_ERR_OOM, HG_ERR_STALE, HG_ERR_REMOTE;
 * nothing is changed on error. The first error goes on ctx. */
HG_API hg_status hg_mpi_allreduce_inplace(hg_ctx *ctx, hg_mpi_comm *comm, int n, hg_tensor *const *ts, int mean);
/* In place: ts[i] = root's ts[i] on every rank (for example to start every
 * rank from rank 0's initial weights). Same errors. */
HG_API hg_status hg_mpi_broadcast_inplace(hg_ctx *ctx, hg_mpi_comm *comm, int n, hg_tensor *const *ts, int root);
/* Agreement: every rank passes its ctx; returns HG_OK if no rank's ctx holds
 * an error, else the error on every rank (ranks without their own error get
 * HG_ERR_REMOTE naming the first failing rank and its message). */
HG_API hg_status hg_mpi_agree(hg_ctx *ctx, hg_mpi_comm *comm);

#ifdef __cplusplus
}
#endif
#endif
