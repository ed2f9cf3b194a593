/* mnist_hypergrad over MPI: the ranks of a run and the few collectives the
 * example needs, on top of libhgrad-mpi (<hgrad/mpi.h>). Built with MPI
 * (meson's `mpi` option, HGRAD_WITH_MPI) and started by mpirun, the program
 * runs as P ranks: every rank loads the data and walks the same shuffled
 * schedule, and takes its block of rows of every batch and of the
 * validation set (hg_mpi_shard). Without MPI, or started without mpirun, it
 * is one process (rank 0 of 1) and every call below is a no-op or the
 * identity, so the single-process program runs exactly the same code.
 *
 * Errors: every rank makes the same calls in the same order; a rank that
 * fails keeps calling them with NULL tensors (the library then fails the
 * call on every rank) or stops at an agreement (dist_agree) that every rank
 * reaches. Nothing here calls MPI_Abort. */
#ifndef MNIST_DISTRIBUTED_H
#define MNIST_DISTRIBUTED_H

#include <hgrad.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hg_mpi_comm;

typedef struct dist {
    int rank, size;           /* 0 and 1 for one process */
    struct hg_mpi_comm *comm; /* NULL for one process */
    bool mpi;                 /* MPI_Init was called (finish with dist_finish) */
} dist;

/* Starts MPI when the program was launched by an MPI launcher (Open MPI's
 * or PMI's environment variables are set), else leaves MPI alone: one
 * process. On ranks other than 0, stdout goes to /dev/null and every line
 * on stderr starts with "rank N: ". Returns 0, or -1 (printed) when MPI
 * could not start. */
int dist_init(int *argc, char ***argv, dist *d);

/* The largest of every rank's status (the exit status all ranks agree on),
 * then frees the communicator and finalizes MPI. When it is not 0, rank 0
 * first repeats on its stderr what every other failing rank wrote to its
 * stderr (the last 2 KB, indented): Open MPI ends the job at the first
 * non-zero exit and can drop output that mpirun had not yet read. For the
 * same reason only rank 0 returns the status and the other ranks return 0,
 * so mpirun's exit status is rank 0's and its report always gets out. */
int dist_finish(dist *d, int status);

/* The largest of every rank's v (a plain agreement, e.g. on the command
 * line's result); v itself on one process. */
int dist_max(const dist *d, int v);

/* Does every rank hold rank 0's v (a hash of its command line, its data)?
 * Collective; true on one process. */
bool dist_same(const dist *d, uint64_t v);

/* FNV-1a hash of n bytes, continuing from h (start with DIST_HASH0). */
#define DIST_HASH0 14695981039346656037ull
uint64_t dist_hash(uint64_t h, const void *bytes, size_t n);

/* This rank's block [*start, *start + *count) of n rows. */
void dist_rows(const dist *d, int64_t n, int64_t *start, int64_t *count);

/* Recorded: the sum over ranks of x (in rank order; its vjp is the same
 * sum), or x itself on one process. NULL in (an earlier failure) takes
 * part and makes the call fail on every rank. */
hg_tensor *dist_sum(hg_ctx *ctx, const dist *d, hg_tensor *x);

/* Recorded: ts[i] = the sum over ranks of ts[i] for n float tensors of one
 * dtype, as ONE all-reduce of their concatenation (the same sums, bit for
 * bit, as one dist_sum per tensor, with one collective instead of n). A
 * NULL entry fails it on every rank and sets every ts[i] to NULL. Returns
 * the ctx status. */
hg_status dist_sum_n(hg_ctx *ctx, const dist *d, int n, hg_tensor **ts);

/* Training form, in place: ts[i] = the sum over ranks of ts[i]. A NULL
 * entry fails the call on every rank. HG_OK on one process. */
hg_status dist_sum_inplace(hg_ctx *ctx, const dist *d, int n, hg_tensor *const *ts);

/* In place: ts[i] = rank 0's ts[i]. */
hg_status dist_broadcast(hg_ctx *ctx, const dist *d, int n, hg_tensor *const *ts);

/* HG_OK when no rank's ctx holds an error, else the error on every rank. */
hg_status dist_agree(hg_ctx *ctx, const dist *d);

/* v[0 .. n) = its sum over ranks (in rank order), in place, in chunks
 * through ctx's arena (rewound afterwards). v may be NULL on a rank that
 * failed (every rank then gets an error). */
hg_status dist_sum_f64(hg_ctx *ctx, const dist *d, double *v, int64_t n);
hg_status dist_sum_f32(hg_ctx *ctx, const dist *d, float *v, int64_t n);

/* all[r * n .. (r + 1) * n) = rank r's mine[0 .. n), on every rank. */
hg_status dist_gather_f64(hg_ctx *ctx, const dist *d, const double *mine, int64_t n, double *all);

#endif
