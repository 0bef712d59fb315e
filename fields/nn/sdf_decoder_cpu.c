/* The elementwise passes of an SDF decoder with its gradient written out, fused (OpenMP).
 *
 * Built on first use by fields/cpu_kernels.py and called from fields/nn/sdf_decoder.py, where the
 * matrix products run in PyTorch (BLAS) and the autograd function says what each pass is for. One
 * hidden layer z = W1 h + b1 (n x w), softplus_b a = relu(z) + log(1 + exp(-b |z|)) / b, its slope
 * s = sigmoid(b z), the gradient's row v = s * W2[0]; the encoding enters with its Jacobian
 * J (n x dim x e) at the inputs offset .. offset + e - 1 of h, scaled by `jscale`.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* z (n x w) -> a (in place of z), s, v = s * w2row */
void softplus_slope_forward(float *z, int64_t n, int w, float beta, const float *w2row, float *s, float *v,
                            int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        float *zi = z + i * w, *si = s + i * w, *vi = v + i * w;
#pragma omp simd
        for (int j = 0; j < w; ++j) {
            float x = zi[j];
            float ax = fabsf(x) * -beta;
            float e = expf(ax < -30.0f ? -30.0f : ax);
            float inv = 1.0f / (1.0f + e);
            float sl = x >= 0.0f ? inv : e * inv;
            zi[j] = (x > 0.0f ? x : 0.0f) + logf(1.0f + e) / beta;
            si[j] = sl;
            vi[j] = sl * w2row[j];
        }
    }
}

/* da, dv (n x w) -> dz (in place of da) = da * s + dv * w2row * b s (1 - s); dw2row += sum_i dv * s */
void softplus_slope_backward(float *da, const float *dv, const float *s, int64_t n, int w, float beta,
                             const float *w2row, float *dw2row, int threads) {
    float *partial = calloc((size_t)threads * w, sizeof(float));
#pragma omp parallel num_threads(threads)
    {
        float *acc = partial + (size_t)omp_get_thread_num() * w;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; ++i) {
            float *dai = da + i * w;
            const float *dvi = dv + i * w, *si = s + i * w;
#pragma omp simd
            for (int j = 0; j < w; ++j) {
                float sl = si[j], g = dvi[j];
                acc[j] += g * sl;
                dai[j] = dai[j] * sl + g * w2row[j] * beta * sl * (1.0f - sl);
            }
        }
    }
    for (int t = 0; t < threads; ++t)
        for (int j = 0; j < w; ++j) dw2row[j] += partial[(size_t)t * w + j];
    free(partial);
}

/* gh (n x in) -> g (n x dim) = gh[:, :dim] + jscale * J gh[:, offset : offset + e] */
void jacobian_gradient(const float *gh, const float *jac, int64_t n, int in, int dim, int offset, int e,
                       float jscale, float *g, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float *ghi = gh + i * in, *ji = jac + i * (int64_t)dim * e;
        for (int d = 0; d < dim; ++d) {
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int k = 0; k < e; ++k) acc += ji[d * e + k] * ghi[offset + k];
            g[i * dim + d] = ghi[d] + jscale * acc;
        }
    }
}

/* dg (n x dim) -> dgh (n x in): dg at the coordinates, jscale J^T dg at the encoding, 0 elsewhere;
 * djac (n x dim x e) = jscale dg gh[:, offset:] (the Jacobian's gradient) */
void jacobian_gradient_backward(const float *dg, const float *gh, const float *jac, int64_t n, int in, int dim,
                                int offset, int e, float jscale, float *dgh, float *djac, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float *ghi = gh + i * in, *ji = jac + i * (int64_t)dim * e, *dgi = dg + i * dim;
        float *dghi = dgh + i * in, *dji = djac + i * (int64_t)dim * e;
        memset(dghi, 0, sizeof(float) * in);
        for (int d = 0; d < dim; ++d) {
            float gd = dgi[d] * jscale;
            dghi[d] = dgi[d];
#pragma omp simd
            for (int k = 0; k < e; ++k) {
                dghi[offset + k] += gd * ji[d * e + k];
                dji[d * e + k] = gd * ghi[offset + k];
            }
        }
    }
}

/* z (n x w) -> out (n) = bias + sum_j softplus_b(z_ij) w2row_j: the distance alone, without writing the
 * activations (tracing, occupancy grids and meshes read nothing else) */
void softplus_dot(const float *z, int64_t n, int w, float beta, const float *w2row, float bias, float *out,
                  int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float *zi = z + i * w;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int j = 0; j < w; ++j) {
            float x = zi[j];
            float ax = fabsf(x) * -beta;
            float e = expf(ax < -30.0f ? -30.0f : ax);
            acc += ((x > 0.0f ? x : 0.0f) + logf(1.0f + e) / beta) * w2row[j];
        }
        out[i] = bias + acc;
    }
}
