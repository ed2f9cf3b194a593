/* PNG grid: for each chosen training sample, its image above its heat map
 * of dE_val/dx (diverging colours, symmetric scale: blue where brightening
 * the pixel lowers the validation loss, red where it raises it, white where
 * it does nothing), with the image's outline drawn over the heat map and
 * the class, influence and colour scale written below in a small bitmap
 * font. */
#include "picture.h"

#include <hgrad.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_PNG
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#ifdef HAVE_PNG
#include <png.h>
#endif

#ifdef HAVE_PNG
#define GAP 16
#define MARGIN 20
#define TEXT_SCALE 2
#define LINE (7 * TEXT_SCALE)

typedef unsigned char rgb[3];

static const rgb black = {0, 0, 0}, grey = {90, 90, 90}, outline = {40, 40, 40};
static const rgb blue_end = {33, 102, 172}, red_end = {178, 24, 43};

typedef struct canvas {
    int w, h;
    unsigned char *px;
    int rows, cols, zoom; /* the images' size and their magnification */
    int cw, ch;           /* one image drawn: cols * zoom by rows * zoom */
} canvas;

static void put(canvas *c, int x, int y, const rgb col)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    memcpy(c->px + 3 * ((size_t)y * (size_t)c->w + (size_t)x), col, 3);
}

static void rect(canvas *c, int x0, int y0, int w, int h, const rgb col)
{
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++)
            put(c, x, y, col);
}

/* 3x5 glyphs, rows top to bottom, 3 bits each (MSB left). */
static unsigned glyph(char ch)
{
    static const struct {
        char c;
        unsigned bits;
    } font[] = {
        {'0', 075557}, {'1', 026227}, {'2', 071747}, {'3', 071717}, {'4', 055711}, {'5', 074717}, {'6', 074757},
        {'7', 071111}, {'8', 075757}, {'9', 075717}, {'A', 025755}, {'B', 065656}, {'C', 034443}, {'D', 065556},
        {'E', 074647}, {'F', 074644}, {'G', 034553}, {'H', 055755}, {'I', 072227}, {'J', 011152}, {'K', 055655},
        {'L', 044447}, {'M', 057755}, {'N', 065555}, {'O', 025552}, {'P', 065644}, {'Q', 025563}, {'R', 065655},
        {'S', 034216}, {'T', 072222}, {'U', 055557}, {'V', 055552}, {'W', 055775}, {'X', 055255}, {'Y', 055222},
        {'Z', 071247}, {'.', 000002}, {'-', 000700}, {'+', 002720}, {':', 002020}, {'/', 011244}, {'=', 007070},
        {'(', 024442}, {')', 021112}, {',', 000024}, {'_', 000007}, {'#', 057575}, {'%', 051245}, {'<', 012421},
        {'>', 042124}, {'|', 022222}, {'*', 005250},
    };
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
        if (font[i].c == ch)
            return font[i].bits;
    return 0;
}

/* Text in capitals at (x, y), top-left; returns its width in pixels. */
static int text(canvas *c, int x, int y, const char *s, const rgb col)
{
    int x0 = x;
    for (; *s; s++, x += 4 * TEXT_SCALE) {
        char ch = *s >= 'a' && *s <= 'z' ? (char)(*s - 32) : *s;
        unsigned bits = glyph(ch);
        for (int r = 0; r < 5; r++)
            for (int q = 0; q < 3; q++)
                if (bits >> (3 * (4 - r) + (2 - q)) & 1u)
                    rect(c, x + q * TEXT_SCALE, y + r * TEXT_SCALE, TEXT_SCALE, TEXT_SCALE, col);
    }
    return x - x0;
}

/* Diverging map: -1 blue, 0 white, +1 red. */
static void diverging(double v, rgb out)
{
    v = v < -1 ? -1 : v > 1 ? 1 : isnan(v) ? 0 : v;
    const unsigned char *end = v < 0 ? blue_end : red_end;
    double a = fabs(v);
    for (int k = 0; k < 3; k++)
        out[k] = (unsigned char)lround(255 + a * (end[k] - 255));
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Symmetric colour scale of one heat map: the 99th percentile of |dx|, so
 * that a handful of extreme pixels do not wash out the rest. 0 if out of
 * memory (the caller then uses the maximum). */
static double scale_of(const double *dx, int n)
{
    double *v = malloc((size_t)n * sizeof *v), top = 0;
    for (int i = 0; i < n; i++)
        top = fmax(top, fabs(dx[i]));
    if (!v)
        return top > 0 ? top : 1;
    for (int i = 0; i < n; i++)
        v[i] = fabs(dx[i]);
    qsort(v, (size_t)n, sizeof v[0], by_value);
    double p99 = v[(int)(0.99 * (n - 1))];
    free(v);
    return p99 > 0 ? p99 : (top > 0 ? top : 1);
}

static bool ink(const canvas *c, const float *img, int r, int q)
{
    return r >= 0 && r < c->rows && q >= 0 && q < c->cols && img[r * c->cols + q] >= 0.5f;
}

static void draw_sample(canvas *c, int x0, int y0, const picture_sample *s)
{
    int rows = c->rows, cols = c->cols, z = c->zoom;
    double sc = scale_of(s->dx, rows * cols);
    int hy = y0 + c->ch + 4; /* top of the heat map */
    for (int r = 0; r < rows; r++)
        for (int q = 0; q < cols; q++) {
            unsigned char g = (unsigned char)lround(255 * (1 - fmin(fmax(s->image[r * cols + q], 0), 1)));
            rgb grey_px = {g, g, g}, heat;
            diverging(s->dx[r * cols + q] / sc, heat);
            rect(c, x0 + q * z, y0 + r * z, z, z, grey_px);
            rect(c, x0 + q * z, hy + r * z, z, z, heat);
        }
    /* the image's outline (ink at half intensity) over the heat map */
    for (int r = 0; r < rows; r++)
        for (int q = 0; q <= cols; q++)
            if (ink(c, s->image, r, q - 1) != ink(c, s->image, r, q))
                rect(c, x0 + q * z - (q == cols), hy + r * z, 1, z, outline);
    for (int r = 0; r <= rows; r++)
        for (int q = 0; q < cols; q++)
            if (ink(c, s->image, r - 1, q) != ink(c, s->image, r, q))
                rect(c, x0 + q * z, hy + r * z - (r == rows), z, 1, outline);
    char line[64];
    int ty = hy + c->ch + 6;
    text(c, x0, ty, s->caption, black);
    snprintf(line, sizeof line, "DW %+.1E", s->influence);
    text(c, x0, ty + LINE, line, black);
    snprintf(line, sizeof line, "SCALE %.0E", sc);
    text(c, x0, ty + 2 * LINE, line, grey);
}

#define SECTION(c) (24 + 2 * (c).ch + 4 + 6 + 3 * LINE + 12)

static void colour_bar(canvas *c, int x0, int y0)
{
    int w = 320, h = 14;
    for (int x = 0; x < w; x++) {
        rgb col;
        diverging(2.0 * x / (w - 1) - 1, col);
        rect(c, x0 + x, y0, 1, h, col);
    }
    rect(c, x0 - 1, y0 - 1, w + 2, 1, grey);
    rect(c, x0 - 1, y0 + h, w + 2, 1, grey);
    rect(c, x0 - 1, y0 - 1, 1, h + 2, grey);
    rect(c, x0 + w, y0 - 1, 1, h + 2, grey);
    text(c, x0, y0 + h + 5, "-SCALE", black);
    text(c, x0 + w / 2 - 4, y0 + h + 5, "0", black);
    text(c, x0 + w - 6 * 4 * TEXT_SCALE, y0 + h + 5, "+SCALE", black);
}

/* Written through hg_atomic_open (a temporary file beside path, renamed
 * over it on success): a failed write leaves what was there. */
static int save_png(const char *path, const canvas *c)
{
    hg_ctx *ctx = hg_ctx_new(NULL); /* receives the file errors */
    hg_atomic_file *out = ctx ? hg_atomic_open(ctx, path) : NULL;
    if (!out) {
        fprintf(stderr, "error: cannot write the picture: %s\n", ctx ? hg_ctx_error(ctx) : "out of memory");
        hg_ctx_free(ctx);
        return -1;
    }
    FILE *f = hg_atomic_stream(out);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        hg_atomic_abort(out);
        hg_ctx_free(ctx);
        fprintf(stderr, "error: libpng failed writing %s\n", path);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++)
        png_write_row(png, c->px + 3 * (size_t)y * (size_t)c->w);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    int rc = 0;
    if (hg_atomic_commit(out) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
        rc = -1;
    }
    hg_ctx_free(ctx);
    return rc;
}
#endif

int picture_write(const char *path, const char *title, int rows, int cols, const picture_sample *helpful, int n_helpful,
                  const picture_sample *harmful, int n_harmful)
{
#ifndef HAVE_PNG
    (void)rows;
    (void)cols;
    (void)path;
    (void)title;
    (void)helpful;
    (void)n_helpful;
    (void)harmful;
    (void)n_harmful;
    printf("  (built without libpng, -Dpng=disabled: no picture written)\n");
    return 1;
#else
    static const rgb blue_text = {33, 102, 172}, red_text = {178, 24, 43};
    n_helpful = n_helpful < PICTURE_MAX_COLUMNS ? n_helpful : PICTURE_MAX_COLUMNS;
    n_harmful = n_harmful < PICTURE_MAX_COLUMNS ? n_harmful : PICTURE_MAX_COLUMNS;
    canvas c;
    c.rows = rows;
    c.cols = cols;
    c.zoom = 112 / (rows > cols ? rows : cols);
    if (c.zoom < 1)
        c.zoom = 1;
    c.cw = cols * c.zoom;
    c.ch = rows * c.zoom;
    int columns = n_helpful > n_harmful ? n_helpful : n_harmful;
    if (columns < 1)
        columns = 1;
    int cell = c.cw > 13 * 4 * TEXT_SCALE ? c.cw : 13 * 4 * TEXT_SCALE; /* room for the captions */
    c.w = 2 * MARGIN + columns * cell + (columns - 1) * GAP;
    if (c.w < 1000)
        c.w = 1000;
    c.h = MARGIN + 2 * LINE + 10 + 2 * SECTION(c) + 4 * LINE + 50;
    c.px = malloc(3 * (size_t)c.w * (size_t)c.h);
    if (!c.px) {
        fprintf(stderr, "error: out of memory for the picture\n");
        return -1;
    }
    memset(c.px, 255, 3 * (size_t)c.w * (size_t)c.h);
    int y = MARGIN;
    char first[256];
    snprintf(first, sizeof first, "%s", title);
    char *second = strchr(first, '\n');
    if (second)
        *second++ = '\0';
    text(&c, MARGIN, y, first, black);
    if (second)
        text(&c, MARGIN, y + LINE, second, black);
    y += 2 * LINE + 10;
    text(&c, MARGIN, y, "MOST HELPFUL TRAINING SAMPLES: UPWEIGHTING THEM LOWERS E_VAL (DW < 0)", blue_text);
    for (int i = 0; i < n_helpful; i++)
        draw_sample(&c, MARGIN + i * (cell + GAP), y + 24, &helpful[i]);
    y += SECTION(c);
    text(&c, MARGIN, y, "MOST HARMFUL TRAINING SAMPLES: UPWEIGHTING THEM RAISES E_VAL (DW > 0)", red_text);
    for (int i = 0; i < n_harmful; i++)
        draw_sample(&c, MARGIN + i * (cell + GAP), y + 24, &harmful[i]);
    y += SECTION(c);
    text(&c, MARGIN, y, "TOP: THE TRAINING IMAGE.  BELOW: ITS HEAT MAP OF DE_VAL/DX, THE IMAGE OUTLINED:", black);
    text(&c, MARGIN, y + LINE, "BLUE = BRIGHTENING THE PIXEL LOWERS THE VALIDATION LOSS, RED = RAISES IT.", black);
    text(&c, MARGIN, y + 2 * LINE, "EACH MAP HAS ITS OWN SYMMETRIC SCALE (99TH PERCENTILE OF |DX|, PRINTED BELOW IT).",
         black);
    text(&c, MARGIN, y + 3 * LINE, "DW = DE_VAL/DW: HOW E_VAL MOVES IF THE SAMPLE WEIGHS MORE IN THE TRAINING LOSS.",
         black);
    colour_bar(&c, MARGIN, y + 4 * LINE + 12);
    int rc = save_png(path, &c);
    free(c.px);
    return rc;
#endif
}
