/* GEMM tracing for the benchmark's "GEMM limit".
 *
 * The benchmark executable defines cblas_sgemm and cblas_dgemm itself. The
 * library's calls resolve to these (the executable comes first in symbol
 * lookup) and they forward to the BLAS's own functions (dlsym RTLD_NEXT).
 * While tracing is on, every call's shape, transposes, leading dimensions and
 * scalars are appended to a list and the time spent inside the BLAS is
 * summed. gemm_replay then issues the same sequence of calls alone, on
 * scratch buffers of the recorded sizes, so that the time of the matrix
 * products can be compared with the time of the whole computation.
 *
 * Products the library runs with libxsmm (hg_matmul_backend) never reach
 * cblas_?gemm: they are recorded through hg_set_gemm_observer instead, and
 * replayed with libxsmm the way the library runs them (operands swapped, a
 * TransB transposed first), so the limit is measured with the backend that
 * ran each product. */
#ifndef HGRAD_BENCH_GEMM_TRACE_H
#define HGRAD_BENCH_GEMM_TRACE_H

#include <stddef.h>

typedef struct gemm_call {
    int dtype; /* 0 f32, 1 f64 */
    int order, trans_a, trans_b;
    int m, n, k, lda, ldb, ldc;
    double alpha, beta;
    int backend; /* 0 CBLAS, 1 libxsmm */
} gemm_call;

/* 0 if the BLAS's own cblas_?gemm could be found (tracing works), else -1
 * with a message on stderr. */
int gemm_trace_init(void);
/* Start a new recording (clears the list and the in-run time). */
void gemm_trace_start(void);
void gemm_trace_stop(void);
size_t gemm_trace_count(void);
const gemm_call *gemm_trace_calls(void);
/* Seconds spent inside cblas_?gemm during the last recording. */
double gemm_trace_seconds(void);
/* Multiply-adds of the recorded calls (sum of m n k). */
double gemm_trace_flops(void);
/* Recorded calls that libxsmm ran. */
size_t gemm_trace_xsmm_count(void);
/* Time (seconds) of one replay of the recorded calls, each on scratch
 * operands of its recorded size. -1 if there is nothing to replay or memory
 * runs out. */
double gemm_replay(void);

/* BLAS thread control and identification (OpenBLAS found at run time). */
void blas_set_threads(int n);
/* "OpenBLAS 0.3.21 ... (core Zen)" or "reference/unknown CBLAS". */
const char *blas_description(void);

#endif
