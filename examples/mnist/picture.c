/* PNG grid: for each chosen training sample, its image above its heat map
 * of dE_val/dx (blue: raising the pixel lowers the validation loss; red:
 * raises it), with the label and influence printed in a tiny bitmap font. */
#include "picture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_PNG
#include <png.h>
#endif

#define ZOOM 4
#define CELL (28 * ZOOM)
#define GAP 12
#define MARGIN 16
#define TEXT_SCALE 2

typedef struct canvas {
    int w, h;
    unsigned char *rgb;
} canvas;

static void put(canvas *c, int x, int y, const unsigned char col[3])
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    memcpy(c->rgb + 3 * ((size_t)y * (size_t)c->w + (size_t)x), col, 3);
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
        {'(', 024442}, {')', 021112}, {',', 000024}, {'_', 000007},
    };
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
        if (font[i].c == ch)
            return font[i].bits;
    return 0;
}

static void text(canvas *c, int x, int y, const char *s, const unsigned char col[3])
{
    for (; *s; s++, x += 4 * TEXT_SCALE) {
        char ch = *s >= 'a' && *s <= 'z' ? (char)(*s - 32) : *s;
        unsigned bits = glyph(ch);
        for (int r = 0; r < 5; r++)
            for (int q = 0; q < 3; q++)
                if (bits >> (3 * (4 - r) + (2 - q)) & 1u)
                    for (int dy = 0; dy < TEXT_SCALE; dy++)
                        for (int dx = 0; dx < TEXT_SCALE; dx++)
                            put(c, x + q * TEXT_SCALE + dx, y + r * TEXT_SCALE + dy, col);
    }
}

/* Diverging map: -1 blue, 0 white, +1 red. */
static void diverging(double v, unsigned char out[3])
{
    v = v < -1 ? -1 : v > 1 ? 1 : v;
    double a = fabs(v);
    unsigned char fade = (unsigned char)lround(255 * (1 - a));
    if (v < 0) {
        out[0] = fade;
        out[1] = (unsigned char)lround(255 * (1 - 0.75 * a));
        out[2] = 255;
    } else {
        out[0] = 255;
        out[1] = (unsigned char)lround(255 * (1 - 0.85 * a));
        out[2] = fade;
    }
    (void)fade;
}

static int by_abs(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Symmetric colour scale of one heat map: the 99th percentile of |dx|, so
 * that a handful of extreme pixels do not wash out the rest. */
static double scale_of(const double *dx)
{
    double v[784];
    for (int i = 0; i < 784; i++)
        v[i] = fabs(dx[i]);
    qsort(v, 784, sizeof v[0], by_abs);
    return v[775] > 0 ? v[775] : (v[783] > 0 ? v[783] : 1);
}

static void draw_sample(canvas *c, int x0, int y0, const picture_sample *s)
{
    static const unsigned char black[3] = {0, 0, 0};
    double sc = scale_of(s->dx);
    for (int r = 0; r < 28; r++)
        for (int q = 0; q < 28; q++) {
            unsigned char g = (unsigned char)lround(255 * (1 - s->image[r * 28 + q]));
            unsigned char gray[3] = {g, g, g}, heat[3];
            diverging(s->dx[r * 28 + q] / sc, heat);
            for (int dy = 0; dy < ZOOM; dy++)
                for (int dx = 0; dx < ZOOM; dx++) {
                    put(c, x0 + q * ZOOM + dx, y0 + r * ZOOM + dy, gray);
                    put(c, x0 + q * ZOOM + dx, y0 + CELL + 4 + r * ZOOM + dy, heat);
                }
        }
    char line[64];
    snprintf(line, sizeof line, "LABEL %d", s->label);
    text(c, x0, y0 + 2 * CELL + 10, line, black);
    snprintf(line, sizeof line, "%+.2E", s->influence);
    text(c, x0, y0 + 2 * CELL + 24, line, black);
}

#ifdef HAVE_PNG
static int save_png(const char *path, const canvas *c)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        fprintf(stderr, "error: libpng failed writing %s\n", path);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++)
        png_write_row(png, c->rgb + 3 * (size_t)y * (size_t)c->w);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f) == 0 ? 0 : -1;
}
#endif

int picture_write(const char *path, const char *title, const picture_sample *helpful, int n_helpful,
                  const picture_sample *harmful, int n_harmful)
{
#ifndef HAVE_PNG
    (void)path;
    (void)title;
    (void)helpful;
    (void)n_helpful;
    (void)harmful;
    (void)n_harmful;
    fprintf(stderr, "note: built without libpng (-Dpng=disabled): no picture written\n");
    return 1;
#else
    static const unsigned char black[3] = {0, 0, 0}, blue[3] = {30, 70, 200}, red[3] = {200, 40, 30};
    int cols = n_helpful > n_harmful ? n_helpful : n_harmful;
    if (cols < 1)
        cols = 1;
    int block = 2 * CELL + 4 + 40; /* image, heat map, two text lines */
    canvas c;
    c.w = 2 * MARGIN + cols * CELL + (cols - 1) * GAP;
    if (c.w < 760)
        c.w = 760;
    c.h = MARGIN + 30 + 2 * (24 + block) + 40;
    c.rgb = malloc(3 * (size_t)c.w * (size_t)c.h);
    if (!c.rgb) {
        fprintf(stderr, "error: out of memory for the picture\n");
        return -1;
    }
    memset(c.rgb, 255, 3 * (size_t)c.w * (size_t)c.h);
    int y = MARGIN;
    text(&c, MARGIN, y, title, black);
    y += 30;
    text(&c, MARGIN, y, "MOST HELPFUL TRAINING SAMPLES (UPWEIGHTING LOWERS E_VAL)", blue);
    y += 24;
    for (int i = 0; i < n_helpful; i++)
        draw_sample(&c, MARGIN + i * (CELL + GAP), y, &helpful[i]);
    y += block;
    text(&c, MARGIN, y, "MOST HARMFUL TRAINING SAMPLES (UPWEIGHTING RAISES E_VAL)", red);
    y += 24;
    for (int i = 0; i < n_harmful; i++)
        draw_sample(&c, MARGIN + i * (CELL + GAP), y, &harmful[i]);
    y += block;
    text(&c, MARGIN, y + 4, "TOP: IMAGE. BELOW: DE_VAL/DX, BLUE = BRIGHTER LOWERS E_VAL, RED = RAISES", black);
    text(&c, MARGIN, y + 20, "NUMBER: DE_VAL/DW, THE INFLUENCE OF THE SAMPLE", black);
    int rc = save_png(path, &c);
    free(c.rgb);
    return rc;
#endif
}
