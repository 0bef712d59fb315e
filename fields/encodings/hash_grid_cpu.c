/* Hash-grid encoding kernels for the CPU (OpenMP), same layout and arithmetic as tiny-cuda-nn.
 *
 * Built on first use by fields/encodings/hash_grid_kernels.py with the system C compiler and called
 * through ctypes; the pure-PyTorch path in hash_grid.py is the reference and the fallback.
 * Per level: pos = x * scale + 0.5, corners floor(pos) + {0,1}^d, index dense (x0 + x1 r + x2 r^2)
 * or hashed (xor of x_k * prime_k in uint32), modulo the level's table size, plus its offset.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

#define MAX_F 8

static const uint32_t PRIMES[3] = {1u, 2654435761u, 805459861u};

static inline __attribute__((always_inline)) uint32_t corner_index(const uint32_t *c, int dim, uint32_t res, uint32_t size, int hashed) {
    uint32_t idx = 0;
    if (hashed) {
        for (int k = 0; k < dim; ++k) idx ^= c[k] * PRIMES[k];
    } else {
        uint32_t stride = 1;
        for (int k = 0; k < dim; ++k) {
            idx += c[k] * stride;
            stride *= res;
        }
    }
    /* the modulo only where it changes something: a division costs as much as the rest of a corner */
    if (idx < size) return idx;
    return (size & (size - 1)) == 0 ? idx & (size - 1) : idx % size;
}

/* base corner, interpolation fraction and its derivative d frac / d pos for one level */
static inline __attribute__((always_inline)) void locate(const float *xi, int dim, float scale, int smooth, int32_t *base, float *frac, float *dfrac) {
    for (int k = 0; k < dim; ++k) {
        float pos = xi[k] * scale + 0.5f;
        float fl = floorf(pos);
        float f = pos - fl;
        base[k] = (int32_t)fl;
        if (smooth) {
            frac[k] = f * f * (3.0f - 2.0f * f);
            dfrac[k] = 6.0f * f * (1.0f - f);
        } else {
            frac[k] = f;
            dfrac[k] = 1.0f;
        }
    }
}

/* corner c of the cell: its row in the parameter array (times F), its weight, and per-axis weights */
static inline __attribute__((always_inline)) int64_t corner_row(int c, int dim, const int32_t *base, const float *frac, uint32_t res, uint32_t size,
                                 int hashed, int64_t offset, int F, float *wk, float *w) {
    uint32_t cc[3];
    *w = 1.0f;
    for (int k = 0; k < dim; ++k) {
        int bit = (c >> k) & 1;
        cc[k] = (uint32_t)(base[k] + bit);
        wk[k] = bit ? frac[k] : 1.0f - frac[k];
        *w *= wk[k];
    }
    return ((int64_t)corner_index(cc, dim, res, size, hashed) + offset) * F;
}

/* d w_c / d x_k for corner c (sign times d frac / d pos times the scale times the other axes' weights) */
static inline __attribute__((always_inline)) void corner_dweights(int c, int dim, const float *wk, const float *dfrac, float scale, float *dw) {
    for (int k = 0; k < dim; ++k) {
        float d = ((c >> k) & 1 ? 1.0f : -1.0f) * dfrac[k] * scale;
        for (int j = 0; j < dim; ++j)
            if (j != k) d *= wk[j];
        dw[k] = d;
    }
}

/* One point at one level: its features, unscaled by the level mask (always inlined, see below). */
static inline __attribute__((always_inline)) void point_features(const float *xi, int dim, const float *params, int F,
                                                                 float scale, uint32_t res, uint32_t size, int hashed,
                                                                 int64_t offset, int smooth, float *acc) {
    int32_t base[3];
    float frac[3], dfrac[3];
    locate(xi, dim, scale, smooth, base, frac, dfrac);
    for (int f = 0; f < F; ++f) acc[f] = 0.0f;
    for (int c = 0; c < (1 << dim); ++c) {
        float wk[3], w;
        const float *v = params + corner_row(c, dim, base, frac, res, size, hashed, offset, F, wk, &w);
        for (int f = 0; f < F; ++f) acc[f] += w * v[f];
    }
}

/* The encoding. 3-D with 2 features (an SDF's grid) and with 1 (a dense scalar grid, the occupancy
 * grid's trilinear lookup) have their own copies of the loop with those sizes fixed at compile time:
 * the corner loops unroll. */
void hash_grid_forward(const float *x, int64_t n, int dim, const float *params, int F, int L, const float *scales,
                       const int32_t *res, const uint32_t *sizes, const int64_t *offsets, const int32_t *hashed,
                       const float *mask, int smooth, int threads, float *out) {
    /* level-outer: one level's table (at most a few MB) stays in cache while every point reads it */
    for (int l = 0; l < L; ++l) {
        const float m = mask[l];
        const uint32_t r = (uint32_t)res[l], size = sizes[l];
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t i = 0; i < n; ++i) {
            float acc[MAX_F];
            if (dim == 3 && F == 2)
                point_features(x + i * 3, 3, params, 2, scales[l], r, size, hashed[l], offsets[l], smooth, acc);
            else if (dim == 3 && F == 1)
                point_features(x + i * 3, 3, params, 1, scales[l], r, size, hashed[l], offsets[l], smooth, acc);
            else
                point_features(x + i * dim, dim, params, F, scales[l], r, size, hashed[l], offsets[l], smooth, acc);
            float *o = out + (i * L + l) * F;
            for (int f = 0; f < F; ++f) o[f] = acc[f] * m;
        }
    }
}

/* grad_params (may be NULL) accumulates w * g per corner; grad_x (may be NULL) gets d out / d x . g.
 * Threads split the levels, not the points: levels own disjoint table rows, so no atomics are
 * needed; each thread sums its d/dx into its own buffer, added up at the end. Level l goes to thread
 * l mod threads (static, 1), so the order of those sums, and the result to the last bit, is the same
 * on every run: with dynamic scheduling it changed from run to run, and the neural SfM's poses with
 * it (lego-25: 0.550 or 0.560 deg). */
void hash_grid_backward(const float *x, int64_t n, int dim, const float *params, int F, int L, const float *scales,
                        const int32_t *res, const uint32_t *sizes, const int64_t *offsets, const int32_t *hashed,
                        const float *mask, int smooth, int threads, const float *grad_out, float *grad_params,
                        float *grad_x) {
    if (threads < 1) threads = 1;
    float *gx_all = NULL;
    if (grad_x) {
        gx_all = (float *)calloc((size_t)threads * (size_t)n * (size_t)dim, sizeof(float));
        if (!gx_all) return;
    }
#pragma omp parallel num_threads(threads)
    {
        float *gx_t = gx_all ? gx_all + (size_t)omp_get_thread_num() * (size_t)n * (size_t)dim : NULL;
#pragma omp for schedule(static, 1)
        for (int l = 0; l < L; ++l) {
            if (mask[l] == 0.0f) continue;
            for (int64_t i = 0; i < n; ++i) {
                const float *xi = x + i * dim;
                const float *g = grad_out + (i * L + l) * F;
                float gl[MAX_F];
                for (int f = 0; f < F; ++f) gl[f] = g[f] * mask[l];
                int32_t base[3];
                float frac[3], dfrac[3];
                locate(xi, dim, scales[l], smooth, base, frac, dfrac);
                for (int c = 0; c < (1 << dim); ++c) {
                    float wk[3], w;
                    int64_t row = corner_row(c, dim, base, frac, (uint32_t)res[l], sizes[l], hashed[l], offsets[l], F, wk, &w);
                    if (grad_params)
                        for (int f = 0; f < F; ++f) grad_params[row + f] += w * gl[f];
                    if (gx_t) {
                        float dot = 0.0f, dw[3];
                        for (int f = 0; f < F; ++f) dot += gl[f] * params[row + f];
                        corner_dweights(c, dim, wk, dfrac, scales[l], dw);
                        for (int k = 0; k < dim; ++k) gx_t[i * dim + k] += dw[k] * dot;
                    }
                }
            }
        }
    }
    if (grad_x) {
        for (int64_t i = 0; i < n * dim; ++i) {
            float sum = 0.0f;
            for (int t = 0; t < threads; ++t) sum += gx_all[(size_t)t * (size_t)n * (size_t)dim + i];
            grad_x[i] = sum;
        }
        free(gx_all);
    }
}

/* The backward's own backward, for losses on d out / d x (Eikonal). With gg = grad of the loss with
 * respect to grad_x (n, dim) and dw_c = d w_c / d x, the first backward computed
 *   grad_x = sum_c dw_c (g . theta_c),   grad_params[c] += w_c g.
 * Differentiating grad_x (the only output a loss reads) gives
 *   d/dg:      grad_g[f]       = sum_c (gg . dw_c) theta_c[f]
 *   d/dtheta:  grad_params2[c] += (gg . dw_c) g
 *   d/dx:      grad_x2[m]      = sum_c sum_k gg_k (d dw_c[k] / d x_m) (g . theta_c)
 * Any output may be NULL. Threads split the levels as in the backward. */
void hash_grid_backward_backward(const float *x, int64_t n, int dim, const float *params, int F, int L,
                                 const float *scales, const int32_t *res, const uint32_t *sizes,
                                 const int64_t *offsets, const int32_t *hashed, const float *mask, int smooth,
                                 int threads, const float *grad_out, const float *gg, float *grad_g,
                                 float *grad_params, float *grad_x2) {
    if (threads < 1) threads = 1;
    float *gx_all = NULL;
    if (grad_x2) {
        gx_all = (float *)calloc((size_t)threads * (size_t)n * (size_t)dim, sizeof(float));
        if (!gx_all) return;
    }
#pragma omp parallel num_threads(threads)
    {
        float *gx_t = gx_all ? gx_all + (size_t)omp_get_thread_num() * (size_t)n * (size_t)dim : NULL;
#pragma omp for schedule(static, 1)
        for (int l = 0; l < L; ++l) {
            for (int64_t i = 0; i < n; ++i) {
                float *gg_out = grad_g ? grad_g + (i * L + l) * F : NULL;
                if (mask[l] == 0.0f) {
                    if (gg_out)
                        for (int f = 0; f < F; ++f) gg_out[f] = 0.0f;
                    continue;
                }
                const float *xi = x + i * dim, *ggi = gg + i * dim;
                const float *g = grad_out + (i * L + l) * F;
                float gl[MAX_F], acc[MAX_F] = {0};
                for (int f = 0; f < F; ++f) gl[f] = g[f] * mask[l];
                int32_t base[3];
                float frac[3], dfrac[3], d2frac[3];
                locate(xi, dim, scales[l], smooth, base, frac, dfrac);
                for (int k = 0; k < dim; ++k) {
                    float f = xi[k] * scales[l] + 0.5f;
                    f -= floorf(f);
                    d2frac[k] = smooth ? 6.0f * (1.0f - 2.0f * f) * scales[l] * scales[l] : 0.0f;
                }
                for (int c = 0; c < (1 << dim); ++c) {
                    float wk[3], w, dw[3], sgn[3];
                    int64_t row = corner_row(c, dim, base, frac, (uint32_t)res[l], sizes[l], hashed[l], offsets[l], F, wk, &w);
                    float ggdw = 0.0f;
                    corner_dweights(c, dim, wk, dfrac, scales[l], dw);
                    for (int k = 0; k < dim; ++k) {
                        sgn[k] = (c >> k) & 1 ? 1.0f : -1.0f;
                        ggdw += ggi[k] * dw[k];
                    }
                    const float *v = params + row;
                    for (int f = 0; f < F; ++f) acc[f] += ggdw * v[f];
                    if (grad_params)
                        for (int f = 0; f < F; ++f) grad_params[row + f] += ggdw * gl[f];
                    if (gx_t) {
                        float dot = 0.0f;
                        for (int f = 0; f < F; ++f) dot += gl[f] * v[f];
                        for (int m = 0; m < dim; ++m) {
                            float h = 0.0f;
                            for (int k = 0; k < dim; ++k) {
                                float d2;
                                if (k == m) {
                                    d2 = sgn[k] * d2frac[k];
                                    for (int j = 0; j < dim; ++j)
                                        if (j != k) d2 *= wk[j];
                                } else {
                                    d2 = sgn[k] * dfrac[k] * scales[l] * sgn[m] * dfrac[m] * scales[l];
                                    for (int j = 0; j < dim; ++j)
                                        if (j != k && j != m) d2 *= wk[j];
                                }
                                h += ggi[k] * d2;
                            }
                            gx_t[i * dim + m] += h * dot;
                        }
                    }
                }
                if (gg_out)
                    for (int f = 0; f < F; ++f) gg_out[f] = acc[f] * mask[l];
            }
        }
    }
    if (grad_x2) {
        for (int64_t i = 0; i < n * dim; ++i) {
            float sum = 0.0f;
            for (int t = 0; t < threads; ++t) sum += gx_all[(size_t)t * (size_t)n * (size_t)dim + i];
            grad_x2[i] = sum;
        }
        free(gx_all);
    }
}

/* One point at one level: its features and their Jacobian (d / dx), unscaled by the level mask.
 * Always inlined with constant dim and F (see the kernels), so the corner loops unroll. */
static inline __attribute__((always_inline)) void point_jacobian(const float *xi, int dim, const float *params, int F,
                                                                 float scale, uint32_t res, uint32_t size, int hashed,
                                                                 int64_t offset, int smooth, float *acc, float *jacc) {
    int32_t base[3];
    float frac[3], dfrac[3];
    locate(xi, dim, scale, smooth, base, frac, dfrac);
    for (int f = 0; f < F; ++f) acc[f] = 0.0f;
    for (int f = 0; f < F * dim; ++f) jacc[f] = 0.0f;
    for (int c = 0; c < (1 << dim); ++c) {
        float wk[3], w, dw[3];
        const float *v = params + corner_row(c, dim, base, frac, res, size, hashed, offset, F, wk, &w);
        corner_dweights(c, dim, wk, dfrac, scale, dw);
        for (int f = 0; f < F; ++f) {
            acc[f] += w * v[f];
            for (int k = 0; k < dim; ++k) jacc[f * dim + k] += dw[k] * v[f];
        }
    }
}

/* One point at one level: grad_params += w_c g + dw_c . gj per corner, times the level mask m; gj's
 * axes gj_stride apart. */
static inline __attribute__((always_inline)) void point_scatter(const float *xi, int dim, int F, float scale, uint32_t res,
                                                                uint32_t size, int hashed, int64_t offset, int smooth,
                                                                float m, const float *g, const float *gj,
                                                                int gj_stride, float *grad_params) {
    int32_t base[3];
    float frac[3], dfrac[3];
    locate(xi, dim, scale, smooth, base, frac, dfrac);
    for (int c = 0; c < (1 << dim); ++c) {
        float wk[3], w, dw[3];
        int64_t row = corner_row(c, dim, base, frac, res, size, hashed, offset, F, wk, &w);
        corner_dweights(c, dim, wk, dfrac, scale, dw);
        for (int f = 0; f < F; ++f) {
            float s = w * g[f];
            for (int k = 0; k < dim; ++k) s += dw[k] * gj[k * gj_stride + f];
            grad_params[row + f] += s * m;
        }
    }
}

/* The encoding and its Jacobian in one pass over the corners: out (n, L, F) as the forward, jac
 * (n, dim, L, F) = d out / d x (the axis before the features: a product with a vector over the
 * features then runs along contiguous memory). An SDF's gradient is then a product with the decoder's, and a loss
 * on it needs only first derivatives of (out, jac) in the parameters: hash_grid_backward_jacobian,
 * one scatter, instead of a backward and a double backward. Level-outer, as the forward; 3-D with
 * 2 features (the SDF's grid) has its own copy of the loop with those sizes fixed at compile time. */
void hash_grid_forward_jacobian(const float *x, int64_t n, int dim, const float *params, int F, int L,
                                const float *scales, const int32_t *res, const uint32_t *sizes, const int64_t *offsets,
                                const int32_t *hashed, const float *mask, int smooth, int threads, float *out,
                                float *jac) {
    for (int l = 0; l < L; ++l) {
        const float m = mask[l];
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t i = 0; i < n; ++i) {
            float *o = out + (i * L + l) * F, *jo = jac + (i * dim * L + l) * F;
            float acc[MAX_F], jacc[MAX_F * 3];
            if (m == 0.0f) {
                for (int f = 0; f < F; ++f) o[f] = 0.0f;
                for (int k = 0; k < dim; ++k)
                    for (int f = 0; f < F; ++f) jo[k * L * F + f] = 0.0f;
                continue;
            }
            if (dim == 3 && F == 2)
                point_jacobian(x + i * 3, 3, params, 2, scales[l], (uint32_t)res[l], sizes[l], hashed[l], offsets[l],
                               smooth, acc, jacc);
            else
                point_jacobian(x + i * dim, dim, params, F, scales[l], (uint32_t)res[l], sizes[l], hashed[l],
                               offsets[l], smooth, acc, jacc);
            for (int f = 0; f < F; ++f) o[f] = acc[f] * m;
            for (int k = 0; k < dim; ++k)
                for (int f = 0; f < F; ++f) jo[k * L * F + f] = jacc[f * dim + k] * m;
        }
    }
}

/* grad_params += d(out . grad_out + jac . grad_jac) / d params: per corner w_c grad_out + dw_c . grad_jac
 * (grad_jac laid out as jac, (n, dim, L, F)).
 * Threads split the levels (disjoint table rows, no atomics; the same order on every run). */
void hash_grid_backward_jacobian(const float *x, int64_t n, int dim, const float *params, int F, int L,
                                 const float *scales, const int32_t *res, const uint32_t *sizes,
                                 const int64_t *offsets, const int32_t *hashed, const float *mask, int smooth,
                                 int threads, const float *grad_out, const float *grad_jac, float *grad_params) {
    if (threads < 1) threads = 1;
    (void)params;
#pragma omp parallel for schedule(static, 1) num_threads(threads)
    for (int l = 0; l < L; ++l) {
        const float m = mask[l];
        if (m == 0.0f) continue;
        for (int64_t i = 0; i < n; ++i) {
            const float *g = grad_out + (i * L + l) * F, *gj = grad_jac + (i * dim * L + l) * F;
            if (dim == 3 && F == 2)
                point_scatter(x + i * 3, 3, 2, scales[l], (uint32_t)res[l], sizes[l], hashed[l], offsets[l], smooth,
                              m, g, gj, L * 2, grad_params);
            else
                point_scatter(x + i * dim, dim, F, scales[l], (uint32_t)res[l], sizes[l], hashed[l], offsets[l],
                              smooth, m, g, gj, L * F, grad_params);
        }
    }
}
