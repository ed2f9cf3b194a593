/* For running the regression tests against the old library: ONLY=<test
 * name> registers just that test, and every ck_assert* logs and continues
 * instead of ending the test, so all of a test's checks are reported (a
 * check after a failed one may then crash the test; it runs in its own
 * process). At exit: the distinct check lines that passed and failed. */
#ifndef KEEP_GOING_H
#define KEEP_GOING_H
#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

#undef tcase_add_test
#define tcase_add_test(tc, tf)                          \
    do {                                                \
        const char *only_ = getenv("ONLY");             \
        if (!only_ || strcmp(only_, (tf)->name) == 0)   \
            tcase_add_test_raise_signal((tc), (tf), 0); \
    } while (0)

#define KG_LINES 4096
static unsigned char kg_state[KG_LINES]; /* bit 1: passed, bit 2: failed */
static pid_t kg_pid;
static int kg_registered;

static void kg_report(void)
{
    if (getpid() != kg_pid)
        return; /* a child of the test (fork in the test itself) */
    int pass = 0, fail = 0;
    for (int i = 0; i < KG_LINES; i++) {
        pass += kg_state[i] == 1;
        fail += (kg_state[i] & 2) != 0;
    }
    fprintf(stderr, "KG %s: %d check lines passed, %d failed:", getenv("ONLY") ? getenv("ONLY") : "?", pass, fail);
    for (int i = 0; i < KG_LINES; i++)
        if (kg_state[i] & 2)
            fprintf(stderr, " %d", i);
    fprintf(stderr, "\n");
}

static void kg_note(int line, int ok)
{
    if (!kg_registered) {
        kg_registered = 1;
        kg_pid = getpid();
        atexit(kg_report);
    }
    if (line >= 0 && line < KG_LINES)
        kg_state[line] |= (unsigned char)(ok ? 1 : 2);
}

static void kg_fail(const char *file, int line, const char *expr, ...)
{
    kg_note(line, 0);
    va_list ap;
    va_start(ap, expr);
    const char *fmt = va_arg(ap, const char *);
    fprintf(stderr, "KG FAIL %s:%d: %s", file, line, expr);
    if (fmt) {
        fprintf(stderr, ": ");
        vfprintf(stderr, fmt, ap);
    }
    fprintf(stderr, "\n");
    va_end(ap);
}

#undef ck_assert_msg
#define ck_assert_msg(expr, ...) \
    ((expr) ? kg_note(__LINE__, 1) : kg_fail(__FILE__, __LINE__, "Assertion '" #expr "' failed", ##__VA_ARGS__, NULL))
#endif
