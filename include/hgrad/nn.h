/* Neural-network pieces: dense layers, MLPs, activations, losses.
 *
 * Parameters are a plain array of tensors the caller owns (in a ctx arena):
 * for an MLP of L layers, params = {W1, b1, W2, b2, ..., WL, bL} with
 * W_l [in, out] and b_l [out]. Everything below is built from recorded ops,
 * so it is differentiable to any order (losses included). */
#ifndef HGRAD_NN_H
#define HGRAD_NN_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HG_MLP_MAX_LAYERS 8

typedef enum hg_activation { HG_ACT_NONE = 0, HG_ACT_RELU, HG_ACT_TANH, HG_ACT_SIGMOID } hg_activation;

typedef enum hg_init {
    HG_INIT_HE = 0, /* W ~ N(0, 2/in): for ReLU */
    HG_INIT_GLOROT  /* W ~ U(-a, a), a = sqrt(6/(in+out)): for tanh/sigmoid */
} hg_init;

/* sizes[0] inputs, sizes[n_layers] outputs; hidden layers use `hidden`,
 * the last layer is linear (logits). */
typedef struct hg_mlp {
    int n_layers;
    int64_t sizes[HG_MLP_MAX_LAYERS + 1];
    hg_activation hidden;
} hg_mlp;

/* Number of parameter tensors (2 * n_layers), or -1 for an invalid spec
 * (NULL, n_layers outside 1..HG_MLP_MAX_LAYERS, a size < 1, an unknown
 * activation). */
HG_API int hg_mlp_param_count(const hg_mlp *spec);
/* Allocate and initialise params (hg_mlp_param_count of them, f32 or f64)
 * in ctx: weights by `init` from rng (deterministic for a seed), biases
 * zero. On error params[] are NULL. Errors: HG_ERR_NULL, HG_ERR_INVALID
 * (spec or init), HG_ERR_DTYPE, HG_ERR_OOM. */
HG_API hg_status hg_mlp_init(hg_ctx *ctx, const hg_mlp *spec, hg_dtype dtype, hg_init init, hg_rng *rng,
                             hg_tensor **params);
/* Logits [n, sizes[n_layers]] for x [n, sizes[0]]: dense layers with the
 * hidden activation between them, none after the last. Each params entry
 * must have the shape the spec gives it (HG_ERR_SHAPE naming the layer);
 * NULL and first error on ctx on failure. */
HG_API hg_tensor *hg_mlp_forward(hg_ctx *ctx, const hg_mlp *spec, hg_tensor *const *params, hg_tensor *x);

/* y = x W + b -> [n, out]; x [n, in], W [in, out], b [out] (or NULL: no
 * bias), one float dtype (b of another shape is HG_ERR_SHAPE, not a silent
 * broadcast). NULL and first error on ctx on failure. */
HG_API hg_tensor *hg_dense(hg_ctx *ctx, hg_tensor *x, hg_tensor *W, hg_tensor *b);
/* Apply an activation elementwise (HG_ACT_NONE returns x itself; an
 * unknown one is HG_ERR_INVALID). */
HG_API hg_tensor *hg_activate(hg_ctx *ctx, hg_tensor *x, hg_activation act);

/* Softmax cross-entropy from float logits [n, c] and i32 labels [n] in
 * [0, c): per-sample losses [n] in the logits' dtype (one fused op, stable:
 * logsumexp - logit[label], sums in double). Its vjp
 * (softmax(logits) - onehot) * g is again made of ops, so it is
 * differentiable to any order in the logits (labels are constants).
 * Errors: HG_ERR_DTYPE, HG_ERR_SHAPE, HG_ERR_RANGE (a label outside [0, c)). */
HG_API hg_tensor *hg_softmax_cross_entropy_each(hg_ctx *ctx, hg_tensor *logits, hg_tensor *labels);
/* Mean of hg_softmax_cross_entropy_each over the batch (rank 0). */
HG_API hg_tensor *hg_softmax_cross_entropy(hg_ctx *ctx, hg_tensor *logits, hg_tensor *labels);
/* Mean squared error over all elements (rank 0); pred and target same shape. */
HG_API hg_tensor *hg_mse(hg_ctx *ctx, hg_tensor *pred, hg_tensor *target);
/* Fraction of rows whose arg-max (first on ties) equals the label, in
 * [0, 1], for float logits [n, c] and i32 labels [n], n, c >= 1; NAN on
 * error (error on ctx). Not differentiable, not recorded. */
HG_API double hg_accuracy(hg_ctx *ctx, hg_tensor *logits, hg_tensor *labels);

#ifdef __cplusplus
}
#endif
#endif
