/* Bad command lines of mnist_hypergrad, table-driven: each must exit with
 * the expected status (2: bad usage) after one clear message naming the
 * problem on stderr, and must touch no file (it runs in a scratch folder
 * holding one existing output file, which must be left as it was). Then
 * one good run on images that are not 28 x 28 (12 x 10, written here as
 * IDX files) must succeed and write its outputs.
 * Usage: test_cli PATH_TO_MNIST_HYPERGRAD
 *
 * test_cli --if-data DIR PROGRAM ARGS... runs PROGRAM with ARGS when DIR
 * holds MNIST-format train and t10k files, else exits 77 (a skip for meson):
 * the example's runs on Debian's Fashion-MNIST use it. */
#define _DEFAULT_SOURCE /* realpath */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char scratch[64], datas[64];

static void be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* DIR/PREFIX-images-idx3-ubyte and -labels-idx1-ubyte: n images rows x cols,
 * labels_n labels. */
static int write_idx(const char *dir, const char *prefix, uint32_t n, uint32_t rows, uint32_t cols, uint32_t labels_n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    be32(f, 0x803);
    be32(f, n);
    be32(f, rows);
    be32(f, cols);
    for (uint32_t i = 0; i < n * rows * cols; i++) /* a class-dependent bar on a zero background */
        fputc((i / cols) % rows == (i / (rows * cols)) % 10 ? 200 : (i * 7919u) % 13 == 0 ? 90 : 0, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    if (!(f = fopen(path, "wb")))
        return -1;
    be32(f, 0x801);
    be32(f, labels_n);
    for (uint32_t i = 0; i < labels_n; i++)
        fputc((int)(i % 10), f);
    fclose(f);
    return 0;
}

/* Runs exe with args in the scratch folder; stderr into err. Returns the exit status. */
static int run(const char *exe, const char *const *args, char *err, size_t size)
{
    char errpath[128];
    snprintf(errpath, sizeof errpath, "%s/stderr", datas);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(scratch) != 0 || !freopen(errpath, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(99);
        const char *argv[64] = {exe};
        int n = 1;
        for (; args[n - 1] && n < 63; n++)
            argv[n] = args[n - 1];
        argv[n] = NULL;
        execv(exe, (char *const *)argv);
        _exit(98);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    FILE *f = fopen(errpath, "r");
    size_t got = f ? fread(err, 1, size - 1, f) : 0;
    err[got] = 0;
    if (f)
        fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The scratch folder holds exactly the sentinel, unchanged. */
static const char *scratch_problem(void)
{
    DIR *d = opendir(scratch);
    struct dirent *e;
    int others = 0;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "mnist_hypergrad.png"))
            others++;
    if (d)
        closedir(d);
    char path[128], buf[16] = {0};
    snprintf(path, sizeof path, "%s/mnist_hypergrad.png", scratch);
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    if (others)
        return "a file was created";
    if (got != 3 || strcmp(buf, "old"))
        return "the existing output file was changed";
    return NULL;
}

typedef struct bad_case {
    const char *args[12];
    const char *expect; /* in the message */
    int status;
} bad_case;

static bool has(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.gz", dir, name);
    if (access(path, R_OK) == 0)
        return true;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, R_OK) == 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "--if-data")) {
        const char *dir = argv[2];
        if (!has(dir, "train-images-idx3-ubyte") || !has(dir, "train-labels-idx1-ubyte") ||
            !has(dir, "t10k-images-idx3-ubyte") || !has(dir, "t10k-labels-idx1-ubyte")) {
            printf("SKIP: no MNIST-format data in %s (apt-get install dataset-fashion-mnist)\n", dir);
            return 77;
        }
        execv(argv[3], argv + 3);
        perror(argv[3]);
        return 1;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: test_cli PATH_TO_MNIST_HYPERGRAD\n");
        return 2;
    }
    static char exe[4096];
    if (!realpath(argv[1], exe)) {
        perror(argv[1]);
        return 1;
    }
    strcpy(scratch, "/tmp/hgrad_cli_XXXXXX");
    strcpy(datas, "/tmp/hgrad_cli_data_XXXXXX");
    if (!mkdtemp(scratch) || !mkdtemp(datas)) {
        perror("mkdtemp");
        return 1;
    }
    char sentinel[128], one[128], empty[128], mismatch[128], small[128], nodir[128], longcase[4200];
    snprintf(sentinel, sizeof sentinel, "%s/mnist_hypergrad.png", scratch);
    FILE *f = fopen(sentinel, "w");
    if (!f)
        return 1;
    fputs("old", f);
    fclose(f);
    snprintf(one, sizeof one, "%s/one", datas);
    snprintf(empty, sizeof empty, "%s/empty", datas);
    snprintf(mismatch, sizeof mismatch, "%s/mismatch", datas);
    snprintf(small, sizeof small, "%s/small", datas);
    snprintf(nodir, sizeof nodir, "%s/no/such/folder/x.png", datas);
    mkdir(one, 0777);
    mkdir(empty, 0777);
    mkdir(mismatch, 0777);
    mkdir(small, 0777);
    /* one t10k image only: 0 training rows after the 80/20 split */
    if (write_idx(one, "t10k", 1, 28, 28, 1) || write_idx(mismatch, "t10k", 20, 28, 28, 19) ||
        write_idx(small, "train", 300, 12, 10, 300) || write_idx(small, "t10k", 60, 12, 10, 60))
        return 1;
    memset(longcase, 'a', 4100);
    longcase[0] = '/';
    longcase[4100] = 0;
    const bad_case cases[] = {
        {{"--steps", "4294967297"}, "--steps", 2},
        {{"--epochs", "4294967297"}, "--epochs", 2},
        {{"--fd-pixels", "4294967296"}, "--fd-pixels", 2},
        {{"--steps", "-1"}, "--steps", 2},
        {{"--steps", "10x"}, "--steps", 2},
        {{"--steps", ""}, "--steps", 2},
        {{"--steps"}, "needs a value", 2},
        {{"--lr", "0"}, "--lr", 2},
        {{"--lr", "-0.1"}, "--lr", 2},
        {{"--lr", "nan"}, "--lr", 2},
        {{"--lr", "inf"}, "--lr", 2},
        {{"--lr", "1e300"}, "--lr", 2},
        {{"--batch", "0"}, "--batch", 2},
        {{"--seed", "-1"}, "--seed", 2},
        {{"--seed", "18446744073709551616"}, "--seed", 2},
        {{"--hidden", "64,,64"}, "--hidden", 2},
        {{"--hidden", "0"}, "--hidden", 2},
        {{"--hidden", "64,"}, "--hidden", 2},
        {{"--opt", "rmsprop"}, "--opt", 2},
        {{"--dtype", "f16"}, "--dtype", 2},
        {{"--loss", "hinge"}, "--loss", 2},
        {{"--through", "half"}, "--through", 2},
        {{"--through", "all", "--steps", "3"}, "--through and --steps", 2},
        {{"--fd-tolerance", "0"}, "--fd-tolerance", 2},
        {{"--fd-tolerance", "1e-6", "--dtype", "f32"}, "--fd-tolerance needs --dtype f64", 2},
        {{"--snapshots", "0"}, "--snapshots", 2},
        {{"--bogus"}, "unknown option --bogus", 2},
        {{"--synthetic", "--data", one}, "--synthetic and --data", 2},
        {{"--repeat", "3"}, "--repeat", 2},
        {{"--case", longcase}, "--case", 2},
        {{"--case", one, "--hidden", "8"}, "--hidden does not apply", 2},
        {{"--out", nodir}, "--out", 2},
        {{"--out", datas}, "is a folder", 2},
        {{"--influence", nodir}, "--influence", 2},
        {{"--save-dx", nodir}, "--save-dx", 2},
        {{"--out", "same.npy", "--influence", "same.npy"}, "different files", 2},
        {{"--data", empty}, "holds no t10k", 2},
        {{"--data", one}, "0 training", 2},
        {{"--data", mismatch}, "matching images", 1},
        {{"--synthetic", "--batch", "100000"}, "--batch 100000 is more than", 2},
        {{"--synthetic", "--val", "5000"}, "--val 5000 is more than", 2},
        {{"--synthetic", "--epochs", "1", "--steps", "100000"}, "--steps 100000 is more than", 2},
    };
    int failures = 0, n = (int)(sizeof cases / sizeof cases[0]);
    static char err[65536];
    for (int i = 0; i < n; i++) {
        const bad_case *c = &cases[i];
        int status = run(exe, c->args, err, sizeof err);
        const char *problem = scratch_problem();
        int error_lines = 0;
        bool empty_line = false;
        for (const char *s = err; *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : s + strlen(s)) {
            error_lines += !strncmp(s, "error:", 6);
            empty_line = empty_line || !strncmp(s, "error: \n", 8) || (!strncmp(s, "error:", 6) && s[6] == '\n');
        }
        bool ok = status == c->status && strstr(err, c->expect) && error_lines == 1 && !empty_line && !problem;
        char shown[120];
        snprintf(shown, sizeof shown, "%s %s %s %s", c->args[0], c->args[1] ? c->args[1] : "",
                 c->args[1] && c->args[2] ? c->args[2] : "", c->args[2] && c->args[3] ? c->args[3] : "");
        printf("%-4s %-70.70s -> %d  %s", ok ? "ok" : "FAIL", shown, status, err[0] ? err : "(no message)\n");
        if (!ok) {
            printf("     expected status %d and a single error line containing \"%s\"%s%s\n", c->status, c->expect,
                   problem ? "; " : "", problem ? problem : "");
            failures++;
        }
        /* put the scratch folder back for the next case */
        if (problem) {
            char cmd[256];
            snprintf(cmd, sizeof cmd, "find %s -mindepth 1 ! -name mnist_hypergrad.png -delete", scratch);
            if (system(cmd) != 0)
                return 1;
            f = fopen(sentinel, "w");
            if (f) {
                fputs("old", f);
                fclose(f);
            }
        }
    }
    /* A good run on 12 x 10 images: outputs written, exit 0. */
    const char *good[] = {"--data",      small, "--epochs", "2", "--batch",   "16",     "--val", "20", "--steps", "4",
                          "--fd-pixels", "1",   "--hidden", "8", "--save-dx", "dx.npy", NULL};
    int status = run(exe, good, err, sizeof err);
    char path[160];
    struct stat st;
    snprintf(path, sizeof path, "%s/influence.npy", scratch);
    bool influence = stat(path, &st) == 0 && st.st_size > 0;
    snprintf(path, sizeof path, "%s/dx.npy", scratch);
    bool dx = stat(path, &st) == 0 && st.st_size >= 300 * 120 * 4;
    printf("%-4s a run on 12 x 10 images -> %d, influence.npy %s, dx.npy %s\n%s",
           status == 0 && influence && dx ? "ok" : "FAIL", status, influence ? "written" : "MISSING",
           dx ? "written" : "MISSING", status ? err : "");
    failures += !(status == 0 && influence && dx);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", scratch, datas);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s, %s\n", scratch, datas);
    printf(failures ? "%d FAILED\n" : "all %d bad command lines refused cleanly\n", failures ? failures : n);
    return failures ? 1 : 0;
}
