/* Seeded random numbers: xoshiro256** seeded by splitmix64; normals by the
 * Box-Muller transform. */
#include "internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void hg_rng_seed(hg_rng *rng, uint64_t seed)
{
    if (!rng)
        return;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t hg_rng_next(hg_rng *rng)
{
    if (!rng)
        return 0;
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double hg_rng_uniform(hg_rng *rng)
{
    return (double)(hg_rng_next(rng) >> 11) * 0x1.0p-53;
}

double hg_rng_normal(hg_rng *rng)
{
    double u1 = 1.0 - hg_rng_uniform(rng); /* (0, 1] */
    double u2 = hg_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

static hg_tensor *random_tensor(hg_ctx *ctx, hg_rng *rng, hg_dtype dtype, int rank, const int64_t *shape, double a,
                                double b, bool normal, const char *who)
{
    if (!ctx)
        return NULL;
    if (!rng) {
        hg_set_error(ctx, HG_ERR_NULL, "%s: rng is NULL", who);
        return NULL;
    }
    if (!hg_is_float(dtype)) {
        hg_set_error(ctx, HG_ERR_DTYPE, "%s: dtype %s is not f32/f64", who, hg_dtype_name(dtype));
        return NULL;
    }
    hg_tensor *t = hg_tensor_alloc(ctx, who, dtype, rank, shape);
    if (!t)
        return NULL;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = normal ? a + b * hg_rng_normal(rng) : a + (b - a) * hg_rng_uniform(rng);
        if (dtype == HG_F32)
            ((float *)t->data)[i] = (float)v;
        else
            ((double *)t->data)[i] = v;
    }
    return t;
}

hg_tensor *hg_rand_uniform(hg_ctx *ctx, hg_rng *rng, hg_dtype dtype, int rank, const int64_t *shape, double lo,
                           double hi)
{
    return random_tensor(ctx, rng, dtype, rank, shape, lo, hi, false, "hg_rand_uniform");
}

hg_tensor *hg_rand_normal(hg_ctx *ctx, hg_rng *rng, hg_dtype dtype, int rank, const int64_t *shape, double mean,
                          double std)
{
    return random_tensor(ctx, rng, dtype, rank, shape, mean, std, true, "hg_rand_normal");
}
