/* Command-line parsing for mnist_hypergrad (see cli.h). */
#include "cli.h"

#include "fdcheck.h"

#include "crosscheck.h"
#include "hypergrad.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cli_usage(FILE *f)
{
    fprintf(f, "usage: mnist_hypergrad [options]\n"
               "       mnist_hypergrad --case DIR [--steps K] [--opt NAME] [--lr LR] [--dtype f32|f64] [--repeat N]\n"
               "\n"
               "Trains an MLP on MNIST-format data as the original question did (Adam, batch 32,\n"
               "5 epochs, shuffled), then computes the gradient of the validation loss with respect to\n"
               "every training image and sample weight through the whole last epoch, from the\n"
               "optimizer state training left (double backward), ranks the training samples by their\n"
               "influence, checks the result against finite differences and draws it.\n"
               "See docs/hypergradient.md.\n"
               "\n"
               "data\n"
               "  --data DIR        MNIST-format IDX files, gzip or raw (default: $HGRAD_DATA, then\n"
               "                    /usr/share/datasets/fashion-mnist). train-* and t10k-* files; a\n"
               "                    folder with only t10k-* is split 80/20 into training and held out\n"
               "  --synthetic       the small built-in synthetic set instead (not with --data)\n"
               "  --train-limit N   train on the first N training images only\n"
               "  --val N           held-out images in E_val (default 1000: the first 1000 of t10k)\n"
               "training\n"
               "  --hidden LIST     hidden layer sizes, e.g. 64,64 (default) or 128 or 32,32,32\n"
               "  --opt NAME        sgd | momentum | adam (default adam)\n"
               "  --lr X            learning rate (default 1e-3 for adam, 0.01 otherwise), 0 < X <= 10\n"
               "  --epochs N        training epochs (default 5)\n"
               "  --batch N         mini-batch size (default 32)\n"
               "  --seed N          random seed: initial weights, shuffling (default 1)\n"
               "  --dtype T         f32 | f64: training and hypergradient (default f64)\n"
               "hypergradient\n"
               "  --through WHAT    last-epoch (default): every step of the last epoch;\n"
               "                    all: every step from initialisation (a sample's gradient sums\n"
               "                    its appearances)\n"
               "  --steps K         only the last K training steps instead\n"
               "  --fresh-state     the unrolled steps start from a fresh optimizer state (t = 1,\n"
               "                    zero moments) instead of the state training left\n"
               "  --snapshots N     states kept for the checkpointed reverse sweep (default: as many\n"
               "                    as fit in 48 MB, e.g. 36 for the default Adam run)\n"
               "  --loss L          ce | mse: E_val is the cross-entropy or the squared error of the\n"
               "                    softmax against one-hot labels (default ce)\n"
               "  --fd-pixels N     pixels checked by finite differences (default 2; 0: no check)\n"
               "  --fd-tolerance X  exit with status 3 when a derivative the differences resolve is\n"
               "                    off by more than X relative (default 1e-4), or, when given, when\n"
               "                    none is resolved\n"
               "  --linearity N     replay real changes: a sample's weight and brightness changed by\n"
               "                    1e-6..1, and leave-one-out for the N (0..8) most helpful and most\n"
               "                    harmful samples, against the first-order prediction\n"
               "output\n"
               "  --out FILE        the picture (default mnist_hypergrad.png)\n"
               "  --influence FILE  dE_val/dw_i of every training sample, float64 [n] (default\n"
               "                    influence.npy)\n"
               "  --save-dx FILE    also dE_val/dx of every training image, float32 [n, pixels]\n"
               "cross-check mode\n"
               "  --case DIR        DIR/{W1,b1,...,x_train,y_train,x_val,y_val}.npy and optionally a\n"
               "                    warm optimizer state (t.npy, uW1.npy.., mW1.npy.., vW1.npy..) in,\n"
               "                    DIR/dx.npy out; prints val_loss, median_seconds, peak_bytes\n"
               "  --repeat N        timing repeats in cross-check mode (default 1)\n"
               "  --help            this text\n"
               "\n"
               "Exit status: 0 success, 1 error (or results not finite), 2 bad usage, 3 the\n"
               "finite-difference check failed.\n"
               "\n"
               "Built with MPI, `mpirun -np N mnist_hypergrad ...` splits every batch and the\n"
               "validation images over N ranks (docs/distributed.md); rank 0 prints and writes.\n");
}

/* Prints "error: " and the message on one line; returns -1. */
__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return -1;
}

/* A whole decimal integer in [lo, hi]; no wrap, no trailing characters. */
static int parse_int(const char *opt, const char *v, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno == ERANGE || x < lo || x > hi || strchr(v, ' ')) {
        return bad("%s %s: expected a whole number from %lld to %lld", opt, v, lo, hi);
    }
    *out = x;
    return 0;
}

static int parse_double(const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x) || !(x > lo) || !(x <= hi)) {
        return bad("%s %s: expected a number above %g and at most %g", opt, v, lo, hi);
    }
    *out = x;
    return 0;
}

/* "64,64" -> spec.sizes[1..]; inputs and outputs come from the data. */
static int parse_hidden(const char *v, hg_mlp *spec)
{
    int n = 0;
    const char *s = v;
    while (*s) {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (end == s || errno == ERANGE || x < 1 || x > 4096 || (*end && *end != ',') || n + 1 >= HG_MLP_MAX_LAYERS)
            return bad("--hidden %s: expected up to %d sizes from 1 to 4096 separated by commas, e.g. 64,64", v,
                       HG_MLP_MAX_LAYERS - 1);
        spec->sizes[++n] = x;
        s = *end ? end + 1 : end;
        if (*end && !*s)
            return bad("--hidden %s: a size is missing after the last comma", v);
    }
    if (n == 0)
        return bad("--hidden %s: no sizes", v);
    spec->n_layers = n + 1;
    return 0;
}

/* Can path be written (created or replaced by rename) without touching it?
 * Tries to create and remove a scratch file in its folder. */
static int check_writable(const char *opt, const char *path)
{
    struct stat st;
    if (!*path)
        return bad("%s: an empty file name", opt);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return bad("%s %s: is a folder, not a file", opt, path);
    char dir[4096];
    size_t len = strlen(path);
    if (len + 16 >= sizeof dir)
        return bad("%s: the file name is too long", opt);
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.mnist_hypergrad_XXXXXX", dir);
    int fd = mkstemp(probe);
    if (fd < 0) {
        fprintf(stderr, "error: %s %s: cannot write in the folder %s (%s)\n", opt, path, dir, strerror(errno));
        return -1;
    }
    close(fd);
    unlink(probe);
    if (access(path, F_OK) == 0 && access(path, W_OK) != 0)
        return bad("%s %s: the file exists and is not writable", opt, path);
    return 0;
}

double cli_lr(const options *o)
{
    return o->lr > 0 ? o->lr : o->opt == HG_OPT_ADAM ? 1e-3 : 0.01;
}

int cli_parse(int argc, char **argv, options *o, bool check_outputs)
{
    *o = (options){.out_png = "mnist_hypergrad.png",
                   .influence_path = "influence.npy",
                   .epochs = 5,
                   .batch = 32,
                   .val = 1000,
                   .through = THROUGH_LAST_EPOCH,
                   .steps = 0,
                   .snapshots = 0,
                   .opt = HG_OPT_ADAM,
                   .dtype = HG_F64,
                   .loss = VAL_LOSS_CE,
                   .fd_pixels = 2,
                   .fd_tolerance = FD_FAILED,
                   .linearity = -1,
                   .repeat = 1,
                   .seed = 1};
    o->spec = (hg_mlp){3, {0, 64, 64, 0}, HG_ACT_RELU};
    bool through_given = false, hidden_given = false, lr_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cli_usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--synthetic")) {
            o->synthetic = true;
            continue;
        }
        if (!strcmp(a, "--fresh-state")) {
            o->fresh_state = true;
            continue;
        }
        static const char *const with_value[] = {"--data",        "--out",         "--case",    "--epochs",
                                                 "--train-limit", "--batch",       "--val",     "--steps",
                                                 "--fd-pixels",   "--repeat",      "--seed",    "--lr",
                                                 "--opt",         "--dtype",       "--loss",    "--hidden",
                                                 "--through",     "--influence",   "--save-dx", "--snapshots",
                                                 "--linearity",   "--fd-tolerance"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            known = known || !strcmp(a, with_value[k]);
        if (!known)
            return bad("unknown option %s (--help lists them)", a);
        if (!v)
            return bad("%s needs a value", a);
        i++;
        long long x = 0;
        int rc = 0;
        if (!strcmp(a, "--data"))
            o->data_dir = v;
        else if (!strcmp(a, "--out"))
            o->out_png = v;
        else if (!strcmp(a, "--influence"))
            o->influence_path = v;
        else if (!strcmp(a, "--save-dx"))
            o->dx_path = v;
        else if (!strcmp(a, "--case")) {
            if (strlen(v) > CROSSCHECK_MAX_DIR)
                return bad("--case: the folder name is longer than %d characters", CROSSCHECK_MAX_DIR);
            o->case_dir = v;
        } else if (!strcmp(a, "--epochs")) {
            if (!(rc = parse_int(a, v, 1, 1000, &x)))
                o->epochs = (int)x;
        } else if (!strcmp(a, "--train-limit")) {
            if (!(rc = parse_int(a, v, 1, INT64_MAX / 2, &x)))
                o->train_limit = x;
        } else if (!strcmp(a, "--batch")) {
            if (!(rc = parse_int(a, v, 1, 1000000, &x)))
                o->batch = x;
        } else if (!strcmp(a, "--val")) {
            if (!(rc = parse_int(a, v, 1, 100000000, &x)))
                o->val = x;
        } else if (!strcmp(a, "--steps")) {
            if (!(rc = parse_int(a, v, 1, 100000000, &x)))
                o->steps = x, o->steps_given = true;
        } else if (!strcmp(a, "--snapshots")) {
            if (!(rc = parse_int(a, v, 1, 100000, &x)))
                o->snapshots = (int)x;
        } else if (!strcmp(a, "--fd-tolerance")) {
            if (!(rc = parse_double(a, v, 1e-15, 1, &o->fd_tolerance)))
                o->fd_tolerance_given = true;
        } else if (!strcmp(a, "--fd-pixels")) {
            if (!(rc = parse_int(a, v, 0, 100000, &x)))
                o->fd_pixels = (int)x;
        } else if (!strcmp(a, "--linearity")) {
            if (!(rc = parse_int(a, v, 0, HYPERGRAD_TOP, &x)))
                o->linearity = (int)x;
        } else if (!strcmp(a, "--repeat")) {
            if (!(rc = parse_int(a, v, 1, 100000, &x)))
                o->repeat = (int)x, o->repeat_given = true;
        } else if (!strcmp(a, "--seed")) {
            char *end = NULL;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (end == v || *end || errno == ERANGE || v[0] == '-' || v[0] == ' ')
                return bad("--seed %s: expected a whole number from 0 to %llu", v, (unsigned long long)UINT64_MAX);
            o->seed = s;
        } else if (!strcmp(a, "--lr")) {
            rc = parse_double(a, v, 0, 10, &o->lr);
            lr_given = true;
        } else if (!strcmp(a, "--opt")) {
            if (hg_opt_parse(v, &o->opt) != 0)
                return bad("--opt %s: expected sgd, momentum or adam", v);
        } else if (!strcmp(a, "--dtype")) {
            if (strcmp(v, "f32") && strcmp(v, "f64"))
                return bad("--dtype %s: expected f32 or f64", v);
            o->dtype = strcmp(v, "f32") ? HG_F64 : HG_F32;
        } else if (!strcmp(a, "--loss")) {
            if (strcmp(v, "ce") && strcmp(v, "mse"))
                return bad("--loss %s: expected ce or mse", v);
            o->loss = strcmp(v, "ce") ? VAL_LOSS_MSE : VAL_LOSS_CE;
        } else if (!strcmp(a, "--hidden")) {
            rc = parse_hidden(v, &o->spec);
            hidden_given = true;
        } else if (!strcmp(a, "--through")) {
            if (!strcmp(v, "all"))
                o->through = THROUGH_ALL;
            else if (!strcmp(v, "last-epoch"))
                o->through = THROUGH_LAST_EPOCH;
            else
                return bad("--through %s: expected last-epoch or all", v);
            through_given = true;
        }
        if (rc)
            return -1;
    }
    /* Combinations. */
    if (o->synthetic && o->data_dir)
        return bad("--synthetic and --data %s: choose one", o->data_dir);
    if (o->repeat_given && !o->case_dir)
        return bad("--repeat only applies to the cross-check mode (--case DIR)");
    if (o->fd_tolerance_given && o->dtype != HG_F64)
        return bad("--fd-tolerance needs --dtype f64 (in f32 there is no finite-difference check)");
    if (through_given && o->steps_given)
        return bad("--through and --steps: choose one");
    if (o->steps_given)
        o->through = THROUGH_STEPS;
    if (o->case_dir) {
        /* Only the options the cross-check mode reads. */
        static const char *const case_options[] = {"--case", "--steps", "--opt", "--lr", "--dtype", "--repeat"};
        for (int i = 1; i < argc; i++) {
            if (strncmp(argv[i], "--", 2))
                continue;
            bool ok = false;
            for (size_t k = 0; k < sizeof case_options / sizeof case_options[0]; k++)
                ok = ok || !strcmp(argv[i], case_options[k]);
            if (!ok)
                return bad("%s does not apply to the cross-check mode (--case DIR)", argv[i]);
            i++; /* its value */
        }
        if (!o->steps_given)
            o->steps = 1;
        if (!lr_given)
            o->lr = 0;
        return 0;
    }
    (void)hidden_given;
    if (check_outputs && (check_writable("--out", o->out_png) || check_writable("--influence", o->influence_path) ||
                          (o->dx_path && check_writable("--save-dx", o->dx_path))))
        return -1;
    if (!strcmp(o->out_png, o->influence_path) ||
        (o->dx_path && (!strcmp(o->dx_path, o->out_png) || !strcmp(o->dx_path, o->influence_path))))
        return bad("--out, --influence and --save-dx must name different files");
    return 0;
}
