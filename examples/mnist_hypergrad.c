/* mnist_hypergrad: which training images helped, and which hurt?
 *
 * Trains an MLP (784-64-64-10 by default) on MNIST-format data as the
 * original question did (Adam, batch 32, 5 epochs, shuffled), then computes
 * the exact gradient of the validation loss E_val with respect to every
 * training image and every sample's loss weight, through the whole last
 * epoch of training (double backward), ranks the samples, checks the
 * result against finite differences and draws the most helpful and most
 * harmful samples with their maps. The phases below each call one file of
 * examples/mnist/: the library calls that compute the hypergradient are
 * the first functions of hypergrad.c. `mnist_hypergrad --help` lists the
 * options; docs/hypergradient.md explains the output.
 *
 * Built with MPI, `mpirun -np N mnist_hypergrad ...` runs it on N ranks
 * (examples/mnist/distributed.h, docs/distributed.md): every rank takes
 * its block of rows of each batch and of the validation set in training,
 * the hypergradient and the finite-difference replays; rank 0 prints and
 * writes the files. */
#include <hgrad.h>

#include "mnist/cli.h"
#include "mnist/crosscheck.h"
#include "mnist/data.h"
#include "mnist/distributed.h"
#include "mnist/fdcheck.h"
#include "mnist/hypergrad.h"
#include "mnist/linearity.h"
#include "mnist/picture.h"
#include "mnist/progress.h"
#include "mnist/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ranked {
    int64_t index;
    double dw;
} ranked;

static int by_influence(const void *a, const void *b)
{
    double x = ((const ranked *)a)->dw, y = ((const ranked *)b)->dw;
    return x < y ? -1 : x > y;
}

static const char *human_bytes(double b, char *buf, size_t size)
{
    if (b >= 1e9)
        snprintf(buf, size, "%.1f GB", b / 1e9);
    else if (b >= 1e6)
        snprintf(buf, size, "%.1f MB", b / 1e6);
    else
        snprintf(buf, size, "%.1f kB", b / 1e3);
    return buf;
}

/* Only rank 0 reports errors that every rank finds alike. */
#define SAY(dd, ...)                      \
    do {                                  \
        if ((dd)->rank == 0)              \
            fprintf(stderr, __VA_ARGS__); \
    } while (0)

static int save_array(hg_ctx *ctx, const char *path, hg_dtype dtype, int rank, const int64_t *shape, const void *data,
                      hg_npy_type type)
{
    hg_mark m = hg_ctx_mark(ctx);
    hg_tensor *t = hg_tensor_from(ctx, dtype, rank, shape, data);
    int rc = t && hg_npy_save_as(path, t, type) == HG_OK ? 0 : -1;
    if (rc)
        fprintf(stderr, "error: writing %s: %s\n", path, hg_ctx_error(ctx));
    hg_ctx_rewind(ctx, m);
    return rc;
}

static int run(options *o, const dist *dd)
{
    double t_start = now_seconds();
    hg_ctx *ctx = hg_ctx_new(NULL), *keep = hg_ctx_new(NULL), *hctx = hg_ctx_new(NULL);
    int rc = 1;
    schedule sched = {0};
    hypergrad_result res = {0};
    ranked *rank = NULL;
    char name[64], buf[64], hb[32], hb2[32];
    if (!ctx || !keep || !hctx) {
        fprintf(stderr, "error: out of memory\n");
        goto done;
    }

    /* ---- 1. data ---------------------------------------------------------- */
    printf("== 1. data\n");
    dataset d;
    int drc = dataset_load(ctx, o->data_dir, o->synthetic, o->train_limit, o->seed, &d);
    int mine = drc == 0 ? 0 : drc == -2 ? 2 : 1;
    drc = dist_max(dd, mine); /* every rank loads the data */
    if (drc != 0) {
        if (mine == 0 && dd->rank == 0)
            fprintf(stderr, "error: another MPI rank could not load the data (its message follows)\n");
        rc = drc;
        goto done;
    }
    int64_t n_train = hg_tensor_dim(d.x_train, 0), n_test = hg_tensor_dim(d.x_test, 0);
    int64_t pixels = hg_tensor_dim(d.x_train, 1);
    if (dd->size > 1) {
        /* Every rank must hold the same data: compare sizes, labels and images. */
        int64_t sizes[4] = {n_train, n_test, pixels, d.classes};
        uint64_t h = dist_hash(DIST_HASH0, sizes, sizeof sizes);
        h = dist_hash(h, hg_tensor_cdata(d.y_train), (size_t)n_train * sizeof(int32_t));
        h = dist_hash(h, hg_tensor_cdata(d.y_test), (size_t)n_test * sizeof(int32_t));
        h = dist_hash(h, hg_tensor_cdata(d.x_train), (size_t)(n_train * pixels) * sizeof(float));
        h = dist_hash(h, hg_tensor_cdata(d.x_test), (size_t)(n_test * pixels) * sizeof(float));
        if (!dist_same(dd, h)) {
            SAY(dd, "error: the MPI ranks loaded different data (%s on rank 0): every rank needs the same files\n",
                d.source);
            goto done;
        }
    }
    printf("  source: %s\n  %lld training and %lld held-out images, %lld x %lld pixels, %d classes%s\n", d.source,
           (long long)n_train, (long long)n_test, (long long)d.rows, (long long)d.cols, d.classes,
           d.synthetic ? "  ** SYNTHETIC DATA, NOT REAL IMAGES **" : "");
    if (dd->size > 1)
        printf("  %d MPI ranks: each takes its block of rows of every batch and of the validation images\n", dd->size);
    if (o->batch < dd->size || o->val < dd->size) {
        SAY(dd, "error: %s %lld is less than the %d MPI ranks: each rank needs a row\n",
            o->batch < dd->size ? "--batch" : "--val", (long long)(o->batch < dd->size ? o->batch : o->val), dd->size);
        rc = 2;
        goto done;
    }
    if (o->batch > n_train || o->val > n_test) {
        SAY(dd, "error: %s %lld is more than the %lld %s images\n", o->batch > n_train ? "--batch" : "--val",
            (long long)(o->batch > n_train ? o->batch : o->val), (long long)(o->batch > n_train ? n_train : n_test),
            o->batch > n_train ? "training" : "held-out");
        rc = 2;
        goto done;
    }
    /* E_val on the first --val held-out images (fixed); accuracy on the rest. */
    hg_tensor *x_val = rows_f32(ctx, d.x_test, 0, o->val), *y_val = rows_i32(ctx, d.y_test, 0, o->val);
    int64_t n_acc = o->val < n_test ? n_test - o->val : n_test, acc0 = o->val < n_test ? o->val : 0;
    hg_tensor *x_acc = rows_f32(ctx, d.x_test, acc0, n_acc), *y_acc = rows_i32(ctx, d.y_test, acc0, n_acc);

    /* ---- 2. training -------------------------------------------------------- */
    hg_mlp spec = o->spec;
    spec.sizes[0] = pixels;
    spec.sizes[spec.n_layers] = d.classes;
    hg_opt_config cfg = {.kind = o->opt, .lr = cli_lr(o), .momentum = 0.9};
    if (schedule_make(&sched, n_train, o->batch, o->epochs, o->seed) != 0)
        goto done;
    int64_t total = schedule_steps(&sched), k0, k1 = total;
    if (o->through == THROUGH_STEPS && o->steps > total) {
        SAY(dd, "error: --steps %lld is more than the %lld steps of training (%d epochs of %lld)\n",
            (long long)o->steps, (long long)total, o->epochs, (long long)sched.steps_per_epoch);
        rc = 2;
        goto done;
    }
    k0 = o->through == THROUGH_ALL ? 0 : o->through == THROUGH_STEPS ? total - o->steps : total - sched.steps_per_epoch;
    char arch[128] = "";
    for (int l = 0; l <= spec.n_layers; l++)
        snprintf(arch + strlen(arch), sizeof arch - strlen(arch), "%s%lld", l ? "-" : "", (long long)spec.sizes[l]);
    printf("\n== 2. training a %s ReLU MLP with %s (lr %g, batch %lld, shuffled, %s, %d epoch%s: %lld steps)\n", arch,
           hg_opt_name(o->opt), cfg.lr, (long long)o->batch, hg_dtype_name(o->dtype), o->epochs,
           o->epochs == 1 ? "" : "s", (long long)total);
    train_state start;
    train_report tr;
    hg_tensor *trained[HYPER_MAX_PARAMS];
    if (train(ctx, keep, dd, &d, &sched, &spec, &cfg, o->dtype, o->seed, x_acc, y_acc, k0, &start, trained, &tr) != 0)
        goto done;
    printf("  test accuracy %.2f%% on %lld held-out images%s\n", 100 * tr.accuracy, (long long)n_acc,
           d.synthetic ? " (SYNTHETIC)"
           : d.fashion ? " (about 87% is typical for this network on Fashion-MNIST)"
                       : "");
    /* E_val: each rank its block of the validation images. */
    int64_t val0, val_mine;
    dist_rows(dd, o->val, &val0, &val_mine);
    hypergrad_problem hp = {.d = &d,
                            .s = &sched,
                            .spec = spec,
                            .opt = cfg,
                            .dtype = o->dtype,
                            .k0 = k0,
                            .k1 = k1,
                            .start = &start,
                            .dist = dd,
                            .val_total = o->val,
                            .x_val = hyper_copy_as(hctx, rows_f32(hctx, x_val, val0, val_mine), o->dtype),
                            .y_val = rows_i32(hctx, y_val, val0, val_mine),
                            .loss = o->loss,
                            .snapshots = o->snapshots};
    double e_trained = hypergrad_val_loss(ctx, &hp, trained);
    bool warm = !o->fresh_state && start.ns > 0;
    if (!warm) {
        start.ns = 0; /* zero moments, t from 1 */
        start.t = 0;
    }

    /* ---- 3. hypergradient ------------------------------------------------- */
    int64_t K = k1 - k0;
    printf("\n== 3. hypergradient dE_val/dx_i and dE_val/dw_i for every training sample through %s\n"
           "  steps %lld..%lld (%lld step%s) of %s, %s, in %s\n",
           o->through == THROUGH_ALL     ? "all of training"
           : o->through == THROUGH_STEPS ? "the last steps"
                                         : "the last epoch",
           (long long)k0 + 1, (long long)k1, (long long)K, K > 1 ? "s" : "", hg_opt_name(o->opt),
           warm                   ? "from the optimizer state training left (warm)"
           : o->opt == HG_OPT_SGD ? "plain SGD (no optimizer state)"
                                  : "from a FRESH optimizer state (t = 1, zero moments)",
           hg_dtype_name(o->dtype));
    printf("  E_val: %s on the first %lld held-out images; w_i: sample i's weight in the training loss\n",
           o->loss == VAL_LOSS_CE ? "mean cross-entropy" : "mean squared error of softmax vs one-hot (--loss mse)",
           (long long)o->val);
    if (!hp.x_val || !hp.y_val)
        fprintf(stderr, "error: %s\n", hg_ctx_error(hctx));
    if (dist_max(dd, !hp.x_val || !hp.y_val) || dist_max(dd, hypergrad_run(hctx, &hp, o->dx_path != NULL, &res) != 0))
        goto done;
    printf("  E_val %.10f after training; %.10f at the end of the differentiated steps%s\n", e_trained, res.val_loss,
           warm || o->opt == HG_OPT_SGD ? (e_trained == res.val_loss ? " (identical)" : "")
                                        : " (replayed from a fresh state: differs)");
    printf("  %lld samples touched; forward %.1f s, reverse sweep %.1f s (%lld steps recomputed from %d "
           "snapshots)\n  arena peak %s (one recorded step %s)\n",
           (long long)res.touched, res.seconds_forward, res.seconds_reverse, (long long)res.recomputed,
           res.snapshots_used, human_bytes((double)res.arena_peak, hb, sizeof hb),
           human_bytes((double)res.step_peak, hb2, sizeof hb2));
    if (!res.finite || !isfinite(e_trained)) {
        SAY(dd,
            "error: the results are not finite (E_val %g): training diverged? (try a smaller --lr); "
            "nothing written\n",
            res.val_loss);
        goto done;
    }

    /* ---- 4. finite differences --------------------------------------------- */
    fd_summary fs = {0};
    if (o->fd_pixels > 0 && o->dtype != HG_F64) {
        printf("\n== 4. no finite-difference check: in f32 rounding swamps the differences (use --dtype f64)\n");
    } else if (o->fd_pixels > 0) {
        printf("\n== 4. check against central finite differences (replaying the %lld step%s for each value)\n",
               (long long)K, K > 1 ? "s" : "");
        double h_max = 1e-2, h_min = 1e-7;
        printf("  4th-order stencil on a ladder h = %.0e .. %.0e (x sqrt(10)); each estimate is taken where three\n"
               "  consecutive steps agree best, and counted when they agree to %.0e (the fd spread)\n",
               h_max, h_min, FD_RESOLVED);
        fd_check(hctx, &hp, &res, o->fd_pixels, h_max, h_min, &fs);
        printf("  finite-difference check: %d derivatives resolved (%d not), worst relative error %.1e: %s"
               " (%d evaluations, %.1f s)\n",
               fs.checked, fs.unresolved, fs.worst,
               fs.worst > o->fd_tolerance            ? "CHECK FAILED"
               : fs.checked && fs.worst <= FD_TARGET ? "agrees to 1e-6"
               : fs.checked                          ? "above 1e-6, below 1e-4 (see the fd spreads above)"
                                                     : "nothing resolved",
               fs.evaluations, fs.seconds);
    }

    double t_lin = 0;
    if (o->linearity >= 0) {
        printf("\n== 4b. how far the first-order prediction holds (replaying the steps after each change)\n");
        t_lin = linearity_report(hctx, &hp, &res, o->linearity);
    }

    /* ---- 5. ranking and files ---------------------------------------------- */
    printf("\n== 5. ranking the %lld samples touched by dE_val/dw_i\n", (long long)res.touched);
    rank = malloc((size_t)n_train * sizeof *rank);
    if (!rank) {
        fprintf(stderr, "error: out of memory\n");
        goto done;
    }
    int64_t nr = 0;
    for (int64_t i = 0; i < n_train; i++)
        if (res.dw[i] != 0)
            rank[nr++] = (ranked){i, res.dw[i]};
    qsort(rank, (size_t)nr, sizeof *rank, by_influence);
    int top = (int)(nr / 2 < HYPERGRAD_TOP ? nr / 2 : HYPERGRAD_TOP);
    if (top > res.n_maps)
        top = res.n_maps;
    const int32_t *labels = hg_tensor_ci32(d.y_train);
    printf("  dE_val/dw_i < 0: sample i helps (weighing it more lowers E_val); > 0: it hurts\n");
    printf("  %-38s %s\n", "most helpful", "most harmful");
    for (int k = 0; k < top; k++) {
        const ranked *g = &rank[k], *b = &rank[nr - 1 - k];
        char left[64];
        snprintf(left, sizeof left, "#%-6lld %-12s %+.3e", (long long)g->index,
                 dataset_class_name(&d, labels[g->index], name, sizeof name), g->dw);
        printf("  %-38s #%-6lld %-12s %+.3e\n", left, (long long)b->index,
               dataset_class_name(&d, labels[b->index], buf, sizeof buf), b->dw);
    }
    /* Every rank holds the same results: rank 0 writes them. */
    if (dd->rank == 0 && save_array(ctx, o->influence_path, HG_F64, 1, &n_train, res.dw, HG_NPY_F64) != 0)
        goto done;
    printf("  wrote %s: dE_val/dw_i, float64 [%lld] (0 for samples the steps did not touch)\n", o->influence_path,
           (long long)n_train);
    if (o->dx_path) {
        if (dd->rank == 0 &&
            save_array(ctx, o->dx_path, HG_F32, 2, (int64_t[]){n_train, pixels}, res.dx, HG_NPY_F32) != 0)
            goto done;
        printf("  wrote %s: dE_val/dx, float32 [%lld, %lld]\n", o->dx_path, (long long)n_train, (long long)pixels);
    }

    /* ---- 6. picture -------------------------------------------------------- */
    printf("\n== 6. picture\n");
    picture_sample good[HYPERGRAD_TOP], bad[HYPERGRAD_TOP];
    sample_map *hm = res.helpful, *bm = res.harmful;
    /* the maps in rank order */
    for (int k = 0; k < top; k++) {
        for (int s = 0; s < 2; s++) {
            sample_map *list = s ? bm : hm;
            int64_t want = s ? rank[nr - 1 - k].index : rank[k].index;
            for (int q = 0; q < res.n_maps; q++)
                if (list[q].index == want) {
                    picture_sample *ps = s ? &bad[k] : &good[k];
                    *ps = (picture_sample){.image = hg_tensor_cf32(d.x_train) + want * pixels,
                                           .dx = list[q].dx,
                                           .influence = list[q].dw};
                    dataset_class_name(&d, labels[want], ps->caption, sizeof ps->caption);
                }
        }
    }
    char title[320];
    snprintf(title, sizeof title,
             "DE_VAL/DX AND DE_VAL/DW THROUGH %lld %s STEP%s (%s%s), %s\n"
             "E_VAL: %s ON %lld HELD-OUT IMAGES. %lld TRAINING SAMPLES RANKED",
             (long long)K, hg_opt_name(o->opt), K > 1 ? "S" : "",
             o->through == THROUGH_ALL     ? "ALL OF TRAINING"
             : o->through == THROUGH_STEPS ? "THE LAST STEPS"
                                           : "THE LAST EPOCH",
             warm                   ? ", WARM STATE"
             : o->opt == HG_OPT_SGD ? ""
                                    : ", FRESH STATE",
             d.synthetic ? "SYNTHETIC DATA (NOT REAL IMAGES)"
             : d.fashion ? "FASHION-MNIST"
                         : "MNIST-FORMAT DATA",
             o->loss == VAL_LOSS_CE ? "CROSS-ENTROPY" : "MSE OF SOFTMAX VS ONE-HOT", (long long)o->val,
             (long long)res.touched);
    int pic = dd->rank != 0 ? 0 : picture_write(o->out_png, title, (int)d.rows, (int)d.cols, good, top, bad, top);
    if (pic == 0 && dd->rank == 0)
        printf("  wrote %s: the %d most helpful and %d most harmful samples above their maps\n", o->out_png, top, top);

    printf("\n== 7. timings\n");
    char lin[48] = "";
    if (t_lin > 0)
        snprintf(lin, sizeof lin, " | linearity %.1f s", t_lin);
    printf("  training %.1f s | hypergradient %.1f s (forward %.1f, reverse %.1f) | finite differences %.1f s"
           "%s | total %.1f s\n",
           tr.seconds, res.seconds_forward + res.seconds_reverse, res.seconds_forward, res.seconds_reverse, fs.seconds,
           lin, now_seconds() - t_start);
    bool fd_failed = fs.worst > o->fd_tolerance || (o->fd_tolerance_given && o->fd_pixels > 0 && fs.checked == 0);
    if (fd_failed)
        SAY(dd, "error: finite differences: %s (--fd-tolerance %g)\n",
            fs.checked ? "a resolved derivative is off" : "nothing resolved", o->fd_tolerance);
    rc = pic < 0 ? 1 : fd_failed ? 3 : 0;
done:
    free(rank);
    hypergrad_free(&res);
    schedule_free(&sched);
    hg_ctx_free(hctx);
    hg_ctx_free(keep);
    hg_ctx_free(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress and errors in order */
    /* One BLAS thread whatever OPENBLAS_NUM_THREADS says: the products here
     * are too small to gain from more (docs/performance.md), and the output
     * files are then the same bits under any environment. */
    hg_blas_set_threads(1);
    dist dd;
    if (dist_init(&argc, &argv, &dd) != 0)
        return dist_finish(&dd, 1);
    /* Every rank reads the same command line; only rank 0 says what is
     * wrong with it and checks that the files it will write can be. */
    options o;
    FILE *err = stderr;
    if (dd.rank != 0)
        stderr = fopen("/dev/null", "w");
    int rc = stderr ? cli_parse(argc, argv, &o, dd.rank == 0) : -1;
    if (dd.rank != 0) {
        if (stderr)
            fclose(stderr);
        stderr = err;
    }
    rc = dist_max(&dd, rc == 0 ? 0 : rc > 0 ? 1 : 2);
    if (rc != 0)
        return dist_finish(&dd, rc == 1 ? 0 : 2);
    uint64_t h = DIST_HASH0;
    for (int i = 1; i < argc; i++)
        h = dist_hash(h, argv[i], strlen(argv[i]) + 1);
    if (!dist_same(&dd, h)) {
        SAY(&dd, "error: the MPI ranks were started with different command lines\n");
        return dist_finish(&dd, 2);
    }
    if (o.case_dir) {
        if (dd.size > 1) {
            SAY(&dd, "error: --case runs on one process, not under mpirun -np %d\n", dd.size);
            return dist_finish(&dd, 2);
        }
        crosscheck_options c = {o.case_dir, (int)o.steps, o.opt, o.lr, o.dtype, o.repeat};
        return dist_finish(&dd, crosscheck_run(&c));
    }
    return dist_finish(&dd, run(&o, &dd));
}
