// kanlab CPU kernels: a whole small B-spline KAN layer in one pass (the "fused" path).
//
// For small layers (a [2, 5, 1] network on a thousand points) the arithmetic of a training step is a few
// hundred thousand multiply-adds and the time goes to launching ops: the "dense" and "local" paths run half a
// dozen kernels and PyTorch ops per layer and step.  Here one call computes
//
//   y[n, o] = Σ_i scale[o, i] · Σ_r coef[o, i, f + r] · B_{f + r}(x[n, i]) + base[o, i] · act(x[n, i])
//
// with the extrapolation rule of kanlab.basis.BSpline folded in (mode 0 "clamp": the basis at the input
// clamped to the grid range; mode 1 "linear": plus the tangent at the nearest end, the distance capped at
// 1e6 grid ranges), and one call its gradients with respect to x, coef, scale and base.  Scalar code, one
// sample after another: meant for layers where launching ops costs more than arithmetic.
//
// Notation: x (N, I); grid (I, M) one knot row per feature, M = G + 2k + 1; K = M - k - 1 basis functions;
// coef (O, I, K); scale, base (O, I); bias (O) optional, added to y; act: 0 none, 1 SiLU, 2 identity.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/ones_like.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/silu.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

constexpr int kFusedMaxOrder = 15;
constexpr int64_t kMaxChunks = 16;  // gradient accumulators (a fixed split of the samples: thread-independent)

// Per-feature constants: the knot row, its grid range, inverse mean spacing and linear-extrapolation cap, and
// the reciprocal knot differences inv[(r - 1) * M + m] = 1 / (t[m + r] - t[m]) (0 for repeated knots), r = 1..k,
// so that evaluating the basis needs no division.
template <typename T>
struct Feature {
  const T* t;
  const T* inv;
  const int32_t* bucket;  // kBucketsPerInterval * G equal buckets over the range: the interval at each left edge
  T lo, hi, inv_b, cap;
  int64_t n_buckets;
};

constexpr int64_t kBucketsPerInterval = 4;

template <typename T>
std::vector<Feature<T>> features(const T* g, int64_t I, int64_t M, int k, std::vector<T>& store,
                                 std::vector<int32_t>& buckets) {
  std::vector<Feature<T>> f(I);
  const int64_t rows = std::max(k, 1);
  const int64_t G = M - 2 * k - 1, nb = kBucketsPerInterval * G;
  store.assign(static_cast<size_t>(I * rows * M), T(0));
  buckets.assign(static_cast<size_t>(I * nb), 0);
  for (int64_t i = 0; i < I; ++i) {
    const T* t = g + i * M;
    T* inv = store.data() + i * rows * M;
    for (int r = 1; r <= k; ++r)
      for (int64_t m = 0; m + r < M; ++m) {
        const T d = t[m + r] - t[m];
        inv[(r - 1) * M + m] = d > T(0) ? T(1) / d : T(0);
      }
    const T lo = t[k], hi = t[M - k - 1];
    const T span = hi - lo;
    int32_t* bk = buckets.data() + i * nb;
    int64_t j = k;
    for (int64_t b = 0; b < nb; ++b) {
      const T edge = lo + span * (T(b) / T(nb));
      while (j < M - k - 2 && t[j + 1] <= edge) ++j;
      bk[b] = static_cast<int32_t>(j);
    }
    f[i] = Feature<T>{t, inv, bk, lo, hi, span > T(0) ? T(nb) / span : T(0), T(1e6) * span, nb};
  }
  return f;
}

constexpr int64_t kBlock = 64;  // samples evaluated together (the vector loops run across them)

// Work buffers of one thread for one block of samples and one feature, structure-of-arrays.
template <typename T>
struct BlockBasis {
  T xs[kBlock], dist[kBlock], pass[kBlock];
  int32_t j[kBlock];
  T v[(kFusedMaxOrder + 1) * kBlock], dv[(kFusedMaxOrder + 1) * kBlock];
};

// Basis of feature f for the inputs x[0..cnt): for every sample the interval j (order <= j <= M - order - 2)
// of the clamped input, the k + 1 values v[s * kBlock + n] = B_{j-k+s} with the extrapolation rule applied
// and, with `deriv`, their derivatives with respect to the input dv (zero where the input does not reach the
// basis: outside the range for "clamp", beyond the distance cap for "linear").
template <int RC, typename T>
void block_basis(const Feature<T>& f, int64_t M, int k_runtime, int mode, const T* __restrict x, int64_t cnt, bool deriv,
                 BlockBasis<T>& b) {
  const int k = RC > 0 ? RC - 1 : k_runtime;  // compile-time for the common orders: unrolled loops
  const T* __restrict t = f.t;
  const int64_t lo = k, hi = M - k - 1;
  T* __restrict xs = b.xs;
  T* __restrict dist = b.dist;
  T* __restrict pass = b.pass;
  int32_t* __restrict jb = b.j;
  for (int64_t n = 0; n < cnt; ++n) {  // scalar: the search (a guess from the mean spacing, then checked)
    const T xi = x[n];
    const T xc = xi < f.lo ? f.lo : (xi > f.hi ? f.hi : xi);  // NaN stays NaN
    xs[n] = xc;
    const bool inside = xi >= f.lo && xi <= f.hi;
    T d = T(0), p = inside ? T(1) : T(0);  // torch.clamp passes the gradient at the ends
    if (mode == 1 && k > 0 && !inside && xi == xi) {
      d = xi < f.lo ? xi - f.lo : xi - f.hi;
      if (d < -f.cap) d = -f.cap;
      else if (d > f.cap) d = f.cap;
      else p = T(1);  // the tangent's distance term carries the gradient outside the range
    }
    dist[n] = d;
    pass[n] = p;
    int64_t j = lo;
    if (xc >= f.lo && xc < f.hi) {  // the bucket's interval, then a short walk (rounding, dense knots)
      int64_t b = static_cast<int64_t>((xc - f.lo) * f.inv_b);
      b = std::min<int64_t>(std::max<int64_t>(b, 0), f.n_buckets - 1);
      j = f.bucket[b];
      while (j < hi - 1 && t[j + 1] <= xc) ++j;
      while (j > lo && xc < t[j]) --j;
    } else if (xc == f.hi) {  // the right end belongs to the last interval of positive length
      j = hi - 1;
      while (j > lo && !(t[j] < t[j + 1])) --j;
    }
    jb[n] = static_cast<int32_t>(j - k);  // the window's first basis function
  }
  T* __restrict v = b.v;
  T* __restrict dv = b.dv;
  const bool need_dv = deriv || mode == 1;
#pragma omp simd
  for (int64_t n = 0; n < cnt; ++n) v[n] = T(1);
  for (int r = 1; r <= k; ++r) {
    const T* __restrict inv = f.inv + (r - 1) * M;
    if (r == k && need_dv) {  // v holds B_{j-k+1+s, k-1}: dB_{m,k} = k (B_{m,k-1}/(t[m+k]-t[m]) - B_{m+1,k-1}/(t[m+k+1]-t[m+1]))
      for (int s = 0; s <= k; ++s) {
        T* __restrict d = dv + s * kBlock;
        const T* __restrict vl = v + (s >= 1 ? s - 1 : 0) * kBlock;  // the first and last terms are absent
        const T* __restrict vr = v + (s <= k - 1 ? s : 0) * kBlock;
        const T fl = s >= 1 ? T(k) : T(0), fr = s <= k - 1 ? T(k) : T(0);
#pragma omp simd
        for (int64_t n = 0; n < cnt; ++n) {
          const int64_t m = jb[n] + s;
          d[n] = fl * vl[n] * inv[m] - fr * vr[n] * inv[m + 1];
        }
      }
    }
    T* __restrict vr = v + r * kBlock;  // "saved", becomes v[r]
#pragma omp simd
    for (int64_t n = 0; n < cnt; ++n) vr[n] = T(0);
    for (int s = 0; s < r; ++s) {
      T* __restrict vs = v + s * kBlock;
#pragma omp simd
      for (int64_t n = 0; n < cnt; ++n) {
        const int64_t jn = jb[n] + k;
        const T temp = vs[n] * inv[jn + s + 1 - r];  // 1 / (t[j+s+1] - t[j+s+1-r])
        const T saved = vr[n];
        vs[n] = saved + (t[jn + s + 1] - xs[n]) * temp;
        vr[n] = (xs[n] - t[jn + s + 1 - r]) * temp;
      }
    }
  }
  if (k == 0) {
#pragma omp simd
    for (int64_t n = 0; n < cnt; ++n) dv[n] = T(0);
  }
  if (mode == 1 && k > 0) {  // the tangent: values + slope · distance (distance 0 inside)
    for (int s = 0; s <= k; ++s) {
      T* __restrict vs = v + s * kBlock;
      const T* __restrict ds = dv + s * kBlock;
#pragma omp simd
      for (int64_t n = 0; n < cnt; ++n) vs[n] += ds[n] * dist[n];
    }
  }
  if (deriv) {
    for (int s = 0; s <= k; ++s) {
      T* __restrict ds = dv + s * kBlock;
#pragma omp simd
      for (int64_t n = 0; n < cnt; ++n) ds[n] *= pass[n];
    }
  }
}

// Calls f(std::integral_constant<int, R>) for window sizes R = k + 1 of orders 1..5 (compile-time loops), else
// f(std::integral_constant<int, 0>) (run-time window size).
template <typename F>
void with_window(int R, F&& f) {
  switch (R) {
    case 2: f(std::integral_constant<int, 2>()); break;
    case 3: f(std::integral_constant<int, 3>()); break;
    case 4: f(std::integral_constant<int, 4>()); break;
    case 5: f(std::integral_constant<int, 5>()); break;
    case 6: f(std::integral_constant<int, 6>()); break;
    default: f(std::integral_constant<int, 0>());
  }
}

void check_inputs(const at::Tensor& x, const at::Tensor& grid, const at::Tensor& coef, const at::Tensor& scale,
                  const c10::optional<at::Tensor>& base, int64_t order, int64_t mode, int64_t act) {
  TORCH_CHECK(x.dim() == 2, "x must be (N, in), got ", x.sizes());
  const int64_t I = x.size(1);
  TORCH_CHECK(order >= 0 && order <= kFusedMaxOrder, "order must lie in [0, ", kFusedMaxOrder, "], got ", order);
  TORCH_CHECK(grid.dim() == 2 && grid.size(0) == I && grid.size(1) >= 2 * order + 2,
              "grid must be (in, M) with in = ", I, " and M >= 2 order + 2, got ", grid.sizes());
  const int64_t K = grid.size(1) - order - 1;
  TORCH_CHECK(coef.dim() == 3 && coef.size(1) == I && coef.size(2) == K, "coef must be (out, ", I, ", ", K,
              "), got ", coef.sizes());
  TORCH_CHECK(scale.dim() == 2 && scale.size(0) == coef.size(0) && scale.size(1) == I, "scale must be (",
              coef.size(0), ", ", I, "), got ", scale.sizes());
  if (base.has_value() && base->defined())
    TORCH_CHECK(base->sizes() == scale.sizes(), "base must be (", coef.size(0), ", ", I, "), got ", base->sizes());
  TORCH_CHECK(mode == 0 || mode == 1, "mode must be 0 (clamp) or 1 (linear), got ", mode);
  TORCH_CHECK(act >= 0 && act <= 2, "act must be 0 (none), 1 (SiLU) or 2 (identity), got ", act);
  for (const at::Tensor* t : {&grid, &coef, &scale})
    TORCH_CHECK(t->scalar_type() == x.scalar_type() && t->device().is_cpu(),
                "fused layer tensors must be CPU tensors of one dtype");
  if (base.has_value() && base->defined())
    TORCH_CHECK(base->scalar_type() == x.scalar_type() && base->device().is_cpu(),
                "fused layer tensors must be CPU tensors of one dtype");
}

template <typename T>
void silu_and_derivative(const T* __restrict x, const T* __restrict sig, int64_t n, T* __restrict a,
                         T* __restrict da) {
#pragma omp simd
  for (int64_t e = 0; e < n; ++e) {
    const T s = sig[e];
    a[e] = x[e] * s;
    da[e] = s * (T(1) + x[e] * (T(1) - s));  // silu' = s (1 + x (1 - s))
  }
}

// The base activation and (with `derivative`) its derivative for every input (x contiguous); the exponentials
// by ATen's vectorised sigmoid/silu.
std::pair<at::Tensor, at::Tensor> activation(const at::Tensor& x, int64_t act, bool derivative) {
  if (act == 1) {
    if (!derivative) return {at::silu(x), at::Tensor()};
    const at::Tensor s = at::sigmoid(x).contiguous();
    at::Tensor a = at::empty_like(x), da = at::empty_like(x);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kanlab_fused_silu", [&] {
      silu_and_derivative<scalar_t>(x.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), x.numel(),
                                    a.data_ptr<scalar_t>(), da.data_ptr<scalar_t>());
    });
    return {a, da};
  }
  return {x, derivative ? at::ones_like(x) : at::Tensor()};  // identity
}

// yo[n] += sc · Σ_s c[first[n] + s] · v[s][n] + bw · a[n] over one block (c: one edge's coefficients).
template <int RC, typename T>
inline void add_edge_output(const T* __restrict c, const int32_t* __restrict first, const T* __restrict v, int R,
                            T sc, T bw, const T* __restrict a, int64_t cnt, T* __restrict yo) {
#pragma omp simd
  for (int64_t n = 0; n < cnt; ++n) {
    T sp = T(0);
    for (int s = 0; s < (RC > 0 ? RC : R); ++s) sp += c[first[n] + s] * v[s * kBlock + n];
    yo[n] += sc * sp + bw * a[n];
  }
}

// gx[n] += go[n] · (sc · Σ_s c[first[n] + s] · dv[s][n] + bw · da[n]).
template <int RC, typename T>
inline void add_edge_input_grad(const T* __restrict c, const int32_t* __restrict first, const T* __restrict dv,
                                int R, T sc, T bw, const T* __restrict da, const T* __restrict go, int64_t cnt,
                                T* __restrict gx) {
#pragma omp simd
  for (int64_t n = 0; n < cnt; ++n) {
    T sp = T(0);
    for (int s = 0; s < (RC > 0 ? RC : R); ++s) sp += c[first[n] + s] * dv[s * kBlock + n];
    gx[n] += go[n] * (sc * sp + bw * da[n]);
  }
}

// One edge's weight gradients over one block: gc[first[n] + s] += go[n] · sc · v[s][n] (a scatter),
// *gs += Σ go · (c · v), *gb += Σ go · a.
template <int RC, typename T>
inline void add_edge_weight_grad(const T* __restrict c, const int32_t* __restrict first, const T* __restrict v,
                                 int R, T sc, const T* __restrict a, const T* __restrict go, int64_t cnt,
                                 T* __restrict gc, T* gs, T* gb) {
  T s_acc = T(0), b_acc = T(0);
#pragma omp simd reduction(+ : s_acc, b_acc)
  for (int64_t n = 0; n < cnt; ++n) {
    T sp = T(0);
    for (int s = 0; s < (RC > 0 ? RC : R); ++s) sp += c[first[n] + s] * v[s * kBlock + n];
    s_acc += go[n] * sp;
    b_acc += go[n] * a[n];
  }
  *gs += s_acc;
  if (gb != nullptr) *gb += b_acc;
  for (int64_t n = 0; n < cnt; ++n) {  // scalar: neighbouring samples often hit the same coefficients
    const T w = go[n] * sc;
    T* dst = gc + first[n];
    for (int s = 0; s < (RC > 0 ? RC : R); ++s) dst[s] += w * v[s * kBlock + n];
  }
}

// ---- layers with several outputs: vectorised across the outputs ---------------------------------------
// With enough outputs the loops run over the outputs (contiguous rows of transposed coefficients, no gathers)
// instead of over the samples of a block (which gathers coefficients per sample).  Measured break-even on one
// core ([2, O] layer, 1000 samples, G = 10): the forward from O = 8 (5: 49 vs 47 µs, 8: 48 vs 56, 32: 64 vs
// 107), the backward from O = 4 (5: 32 vs 40 µs, 32: 67 vs 194).
constexpr int64_t kWideOutForward = 8;
constexpr int64_t kWideOutBackward = 4;

// (O, I, K) · scale → (I, K, O), optionally scaled by scale (O, I).
template <typename T>
std::vector<T> transposed_coef(const T* C, const T* S, int64_t O, int64_t I, int64_t K) {
  std::vector<T> out(static_cast<size_t>(I * K * O));
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      const T sc = S != nullptr ? S[o * I + i] : T(1);
      for (int64_t q = 0; q < K; ++q) out[(i * K + q) * O + o] = C[(o * I + i) * K + q] * sc;
    }
  return out;
}

// y[n, :] += Σ_s ct[first[n] + s, :] · v[s][n] + bt · a[n] for one feature over one block (ct: (K, O)).
template <int RC, typename T>
inline void add_feature_output_wide(const T* __restrict ct, const T* __restrict bt, const int32_t* __restrict first,
                                    const T* __restrict v, int R, const T* __restrict a, int64_t cnt, int64_t O,
                                    T* __restrict y) {
  const int Rn = RC > 0 ? RC : R;
  for (int64_t n = 0; n < cnt; ++n) {
    T w[kFusedMaxOrder + 1];
    for (int s = 0; s < Rn; ++s) w[s] = v[s * kBlock + n];
    const T an = bt != nullptr ? a[n] : T(0);
    const T* __restrict c = ct + first[n] * O;
    T* __restrict yr = y + n * O;
#pragma omp simd
    for (int64_t o = 0; o < O; ++o) {
      T acc = bt != nullptr ? bt[o] * an : T(0);
      for (int s = 0; s < Rn; ++s) acc += c[s * O + o] * w[s];
      yr[o] += acc;
    }
  }
}

// One feature's gradients over one block, outputs innermost: gx[n] = Σ_o g[n,o]·(Σ_s ct[f+s,o]·dv_s + bt[o]·da[n]),
// gct[f+s, o] += g[n,o]·v_s (unscaled), gst[o] += g[n,o]·Σ_s c0t[f+s,o]·v_s, gbt[o] += g[n,o]·a[n].
template <int RC, typename T>
inline void add_feature_grads_wide(const T* __restrict ct, const T* __restrict c0t, const T* __restrict bt,
                                   const int32_t* __restrict first, const T* __restrict v, const T* __restrict dv,
                                   int R, const T* __restrict a, const T* __restrict da, const T* __restrict g,
                                   int64_t cnt, int64_t O, bool need_x, bool need_w, T* __restrict gx,
                                   T* __restrict gct, T* __restrict gst, T* __restrict gbt) {
  const int Rn = RC > 0 ? RC : R;
  for (int64_t n = 0; n < cnt; ++n) {
    const T* __restrict gn = g + n * O;
    const int64_t f = first[n];
    if (need_x) {
      T d[kFusedMaxOrder + 1];
      for (int s = 0; s < Rn; ++s) d[s] = dv[s * kBlock + n];
      const T dan = bt != nullptr ? da[n] : T(0);
      const T* __restrict c = ct + f * O;
      T sum = T(0);
#pragma omp simd reduction(+ : sum)
      for (int64_t o = 0; o < O; ++o) {
        T e = bt != nullptr ? bt[o] * dan : T(0);
        for (int s = 0; s < Rn; ++s) e += c[s * O + o] * d[s];
        sum += gn[o] * e;
      }
      gx[n] = sum;
    }
    if (need_w) {
      T w[kFusedMaxOrder + 1];
      for (int s = 0; s < Rn; ++s) w[s] = v[s * kBlock + n];
      const T an = bt != nullptr ? a[n] : T(0);
      const T* __restrict c0 = c0t + f * O;
      T* __restrict gc = gct + f * O;
#pragma omp simd
      for (int64_t o = 0; o < O; ++o) {
        T sp = T(0);
        for (int s = 0; s < Rn; ++s) {
          sp += c0[s * O + o] * w[s];
          gc[s * O + o] += gn[o] * w[s];
        }
        gst[o] += gn[o] * sp;
        if (bt != nullptr) gbt[o] += gn[o] * an;
      }
    }
  }
}

// out[o] = Σ_n g[n, o] (the bias gradient), in sample order.
template <typename T>
void sum_rows(const T* __restrict g, int64_t N, int64_t O, T* __restrict out) {
  for (int64_t n = 0; n < N; ++n)
#pragma omp simd
    for (int64_t o = 0; o < O; ++o) out[o] += g[n * O + o];
}

// y (N, O), and with `save` what the backward needs (else empty): the basis windows of every block and
// feature — values (B, I, R, kBlock), input derivatives (B, I, R, kBlock), first indices (B, I, kBlock) int32,
// B = ceil(N / kBlock) — and the activation and its derivative (N, I).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> fused_forward(
    const at::Tensor& x_, const at::Tensor& grid_, const at::Tensor& coef_, const at::Tensor& scale_,
    const c10::optional<at::Tensor>& base_, const c10::optional<at::Tensor>& bias_, int64_t order, int64_t mode,
    int64_t act, bool save) {
  check_inputs(x_, grid_, coef_, scale_, base_, order, mode, act);
  const bool has_base = base_.has_value() && base_->defined() && act != 0;
  const at::Tensor x = x_.contiguous(), grid = grid_.contiguous(), coef = coef_.contiguous();
  const at::Tensor scale = scale_.contiguous();
  const at::Tensor base = has_base ? base_->contiguous() : at::Tensor();
  const bool has_bias = bias_.has_value() && bias_->defined();
  if (has_bias)
    TORCH_CHECK(bias_->dim() == 1 && bias_->size(0) == coef_.size(0) && bias_->scalar_type() == x_.scalar_type(),
                "bias must be (", coef_.size(0), ",) of the inputs' dtype, got ", bias_->sizes());
  const at::Tensor bias = has_bias ? bias_->contiguous() : at::Tensor();
  at::Tensor a, da;
  if (has_base) {
    auto ad = activation(x, act, save);
    a = ad.first.contiguous();
    if (save) da = ad.second.contiguous();
  }
  const int64_t N = x.size(0), I = x.size(1), M = grid.size(1), O = coef.size(0), K = coef.size(2);
  const int k = static_cast<int>(order), R = k + 1;
  const int64_t n_blocks = (N + kBlock - 1) / kBlock;
  at::Tensor y = at::empty({N, O}, x.options());
  const at::Tensor none = at::empty({0}, x.options());
  at::Tensor sv = save ? at::empty({n_blocks, I, R, kBlock}, x.options()) : none;
  at::Tensor sdv = save ? at::empty({n_blocks, I, R, kBlock}, x.options()) : none;
  at::Tensor sf = save ? at::empty({n_blocks, I, kBlock}, x.options().dtype(at::kInt)) : none.to(at::kInt);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kanlab_fused_forward", [&] {
    using T = scalar_t;
    std::vector<T> inv_store;
    std::vector<int32_t> bucket_store;
    const auto feat = features<T>(grid.data_ptr<T>(), I, M, k, inv_store, bucket_store);
    const T* X = x.data_ptr<T>();
    const T* A = has_base ? a.data_ptr<T>() : nullptr;
    const T* C = coef.data_ptr<T>();
    const T* S = scale.data_ptr<T>();
    const T* B = has_base ? base.data_ptr<T>() : nullptr;
    T* Y = y.data_ptr<T>();
    const T* BI = has_bias ? bias.data_ptr<T>() : nullptr;
    T* SV = save ? sv.data_ptr<T>() : nullptr;
    T* SDV = save ? sdv.data_ptr<T>() : nullptr;
    int32_t* SF = save ? sf.data_ptr<int32_t>() : nullptr;
    const bool wide = O >= kWideOutForward;
    const std::vector<T> ct = wide ? transposed_coef<T>(C, S, O, I, K) : std::vector<T>();
    const std::vector<T> bt = wide && has_base ? transposed_coef<T>(B, nullptr, O, I, 1) : std::vector<T>();
    with_window(R, [&](auto window) {
    constexpr int RC = decltype(window)::value;
    at::parallel_for(0, n_blocks, 4, [&](int64_t bb, int64_t be) {
      auto basis = std::make_unique<BlockBasis<T>>();
      std::vector<T> yb(wide ? 0 : O * kBlock), xb(kBlock), ab(kBlock);
      for (int64_t blk = bb; blk < be; ++blk) {
        const int64_t n0 = blk * kBlock, cnt = std::min(kBlock, N - n0);
        if (wide) {
          for (int64_t n = 0; n < cnt; ++n)
            for (int64_t o = 0; o < O; ++o) Y[(n0 + n) * O + o] = BI != nullptr ? BI[o] : T(0);
        } else {
          for (int64_t o = 0; o < O; ++o)
            std::fill_n(yb.begin() + o * kBlock, kBlock, BI != nullptr ? BI[o] : T(0));
        }
        for (int64_t i = 0; i < I; ++i) {
          for (int64_t n = 0; n < cnt; ++n) xb[n] = X[(n0 + n) * I + i];
          if (has_base)
            for (int64_t n = 0; n < cnt; ++n) ab[n] = A[(n0 + n) * I + i];
          block_basis<RC>(feat[i], M, k, (int)mode, xb.data(), cnt, save, *basis);
          if (save) {
            const int64_t at = blk * I + i;
            std::copy(basis->v, basis->v + R * kBlock, SV + at * R * kBlock);
            std::copy(basis->dv, basis->dv + R * kBlock, SDV + at * R * kBlock);
            std::copy(basis->j, basis->j + kBlock, SF + at * kBlock);
          }
          if (wide) {
            add_feature_output_wide<RC>(ct.data() + i * K * O, has_base ? bt.data() + i * O : nullptr, basis->j,
                                        basis->v, R, ab.data(), cnt, O, Y + n0 * O);
          } else {
            for (int64_t o = 0; o < O; ++o)
              add_edge_output<RC>(C + (o * I + i) * K, basis->j, basis->v, R, S[o * I + i],
                                  has_base ? B[o * I + i] : T(0), ab.data(), cnt, yb.data() + o * kBlock);
          }
        }
        if (!wide)
          for (int64_t n = 0; n < cnt; ++n)
            for (int64_t o = 0; o < O; ++o) Y[(n0 + n) * O + o] = yb[o * kBlock + n];
      }
    });
    });
  });
  return {y, sv, sdv, sf, has_base && save ? a : none, has_base && save ? da : none};
}

// Gradients for grad (N, O): (g_x (N, I), g_coef (O, I, K), g_scale (O, I), g_base (O, I), g_bias (O)); those not needed are
// empty (0,) tensors.  The weight gradients are summed per chunk of samples (a fixed split of N) and the chunks
// added in order, so the result does not depend on the number of threads.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> fused_backward(
    const at::Tensor& grad_, const at::Tensor& x_, const at::Tensor& grid_, const at::Tensor& coef_,
    const at::Tensor& scale_, const c10::optional<at::Tensor>& base_, int64_t order, int64_t mode, int64_t act,
    bool need_x, bool need_w, bool need_bias, const c10::optional<at::Tensor>& saved_v, const c10::optional<at::Tensor>& saved_dv,
    const c10::optional<at::Tensor>& saved_first, const c10::optional<at::Tensor>& saved_a,
    const c10::optional<at::Tensor>& saved_da) {
  check_inputs(x_, grid_, coef_, scale_, base_, order, mode, act);
  TORCH_CHECK(grad_.dim() == 2 && grad_.size(0) == x_.size(0) && grad_.size(1) == coef_.size(0),
              "grad must be (", x_.size(0), ", ", coef_.size(0), "), got ", grad_.sizes());
  TORCH_CHECK(grad_.scalar_type() == x_.scalar_type(), "grad must have the dtype of x");
  const bool has_base = base_.has_value() && base_->defined() && act != 0;
  const at::Tensor x = x_.contiguous(), grid = grid_.contiguous(), coef = coef_.contiguous();
  const at::Tensor scale = scale_.contiguous(), grad = grad_.contiguous();
  const at::Tensor base = has_base ? base_->contiguous() : at::Tensor();
  const int64_t N = x.size(0), I = x.size(1), M = grid.size(1), O = coef.size(0), K = coef.size(2);
  const int k = static_cast<int>(order), R = k + 1;
  const at::Tensor none = at::empty({0}, x.options());
  at::Tensor gx = need_x ? at::empty({N, I}, x.options()) : none;
  at::Tensor gc = need_w ? at::zeros({O, I, K}, x.options()) : none;
  at::Tensor gs = need_w ? at::zeros({O, I}, x.options()) : none;
  at::Tensor gb = need_w ? at::zeros({O, I}, x.options()) : none;
  at::Tensor gbias = need_bias ? at::zeros({O}, x.options()) : none;
  if (need_bias && N > 0) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kanlab_fused_bias_grad", [&] {
      sum_rows<scalar_t>(grad.data_ptr<scalar_t>(), N, O, gbias.data_ptr<scalar_t>());
    });
  }
  if (N == 0 || !(need_x || need_w)) return {gx, gc, gs, gb, gbias};
  const int64_t n_blocks = (N + kBlock - 1) / kBlock;
  const bool saved = saved_v.has_value() && saved_v->defined() && saved_v->numel() > 0;
  if (saved) {
    TORCH_CHECK(saved_v->sizes() == at::IntArrayRef({n_blocks, I, R, kBlock}) && saved_dv.has_value() &&
                saved_dv->sizes() == saved_v->sizes() && saved_first.has_value() &&
                saved_first->sizes() == at::IntArrayRef({n_blocks, I, kBlock}) &&
                saved_first->scalar_type() == at::kInt && saved_v->scalar_type() == x.scalar_type() &&
                saved_v->is_contiguous() && saved_dv->is_contiguous() && saved_first->is_contiguous(),
                "saved basis does not match the inputs (use the tensors fused_forward returned with save=True)");
    if (has_base)
      TORCH_CHECK(saved_a.has_value() && saved_a->sizes() == x.sizes() && saved_da.has_value() &&
                  saved_da->sizes() == x.sizes(), "saved activation does not match the inputs");
  }
  at::Tensor a, da;
  if (has_base) {
    if (saved) {
      a = saved_a->contiguous();
      da = saved_da->contiguous();
    } else {
      auto ad = activation(x, act, need_x);
      a = ad.first.contiguous();
      if (need_x) da = ad.second.contiguous();
    }
  }
  const int64_t n_chunks = std::min<int64_t>(n_blocks, kMaxChunks);
  const int64_t blocks_per_chunk = (n_blocks + n_chunks - 1) / n_chunks;
  const int64_t W = O * I * K + 2 * O * I;  // one chunk's accumulators: coef, scale, base
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kanlab_fused_backward", [&] {
    using T = scalar_t;
    std::vector<T> inv_store;
    std::vector<int32_t> bucket_store;
    const auto feat = features<T>(grid.data_ptr<T>(), I, M, k, inv_store, bucket_store);
    const T* X = x.data_ptr<T>();
    const T* A = has_base ? a.data_ptr<T>() : nullptr;
    const T* DA = has_base && need_x ? da.data_ptr<T>() : nullptr;
    const T* C = coef.data_ptr<T>();
    const T* S = scale.data_ptr<T>();
    const T* B = has_base ? base.data_ptr<T>() : nullptr;
    const T* G = grad.data_ptr<T>();
    T* GX = need_x ? gx.data_ptr<T>() : nullptr;
    const bool wide = O >= kWideOutBackward;  // then every chunk accumulates transposed, (I, K, O) / (I, O), in acc
    const std::vector<T> ct = wide ? transposed_coef<T>(C, S, O, I, K) : std::vector<T>();
    const std::vector<T> c0t = wide && need_w ? transposed_coef<T>(C, nullptr, O, I, K) : std::vector<T>();
    const std::vector<T> bt = wide && has_base ? transposed_coef<T>(B, nullptr, O, I, 1) : std::vector<T>();
    std::vector<T> acc(need_w && (n_chunks > 1 || wide) ? (n_chunks - (wide ? 0 : 1)) * W : 0, T(0));
    with_window(R, [&](auto window) {
    constexpr int RC = decltype(window)::value;
    at::parallel_for(0, n_chunks, 1, [&](int64_t cb, int64_t ce) {
      auto basis = std::make_unique<BlockBasis<T>>();
      std::vector<T> gt(O * kBlock), xb(kBlock), ab(kBlock), dab(kBlock), gxb(kBlock);
      for (int64_t chunk = cb; chunk < ce; ++chunk) {
        // chunk 0 accumulates straight into the outputs, the others into their own slices of acc
        T* wc = need_w ? (wide ? acc.data() + chunk * W : chunk == 0 ? gc.data_ptr<T>() : acc.data() + (chunk - 1) * W)
                       : nullptr;
        T* ws = need_w ? (chunk == 0 && !wide ? gs.data_ptr<T>() : wc + O * I * K) : nullptr;
        T* wb = need_w ? (chunk == 0 && !wide ? gb.data_ptr<T>() : wc + O * I * K + O * I) : nullptr;
        const int64_t blk1 = std::min(n_blocks, (chunk + 1) * blocks_per_chunk);
        for (int64_t blk = chunk * blocks_per_chunk; blk < blk1; ++blk) {
          const int64_t n0 = blk * kBlock, cnt = std::min(kBlock, N - n0);
          if (!wide)
            for (int64_t n = 0; n < cnt; ++n)
              for (int64_t o = 0; o < O; ++o) gt[o * kBlock + n] = G[(n0 + n) * O + o];
          for (int64_t i = 0; i < I; ++i) {
            for (int64_t n = 0; n < cnt; ++n) xb[n] = X[(n0 + n) * I + i];
            if (has_base) {
              for (int64_t n = 0; n < cnt; ++n) ab[n] = A[(n0 + n) * I + i];
              if (need_x)
                for (int64_t n = 0; n < cnt; ++n) dab[n] = DA[(n0 + n) * I + i];
            }
            const int32_t* jb = basis->j;
            const T* v = basis->v;
            const T* dv = basis->dv;
            if (saved) {
              const int64_t at = blk * I + i;
              jb = saved_first->data_ptr<int32_t>() + at * kBlock;
              v = saved_v->data_ptr<T>() + at * R * kBlock;
              dv = saved_dv->data_ptr<T>() + at * R * kBlock;
            } else {
              block_basis<RC>(feat[i], M, k, (int)mode, xb.data(), cnt, need_x, *basis);
            }
            std::fill(gxb.begin(), gxb.end(), T(0));
            if (wide) {
              add_feature_grads_wide<RC>(ct.data() + i * K * O, need_w ? c0t.data() + i * K * O : nullptr,
                                         has_base ? bt.data() + i * O : nullptr, jb, v, dv, R, ab.data(), dab.data(),
                                         G + n0 * O, cnt, O, need_x, need_w, gxb.data(),
                                         need_w ? wc + i * K * O : nullptr, need_w ? ws + i * O : nullptr,
                                         need_w ? wb + i * O : nullptr);
            }
            for (int64_t o = 0; o < (wide ? 0 : O); ++o) {
              const int64_t e = o * I + i;
              const T bw = has_base ? B[e] : T(0);
              if (need_x)
                add_edge_input_grad<RC>(C + e * K, jb, dv, R, S[e], bw, dab.data(), gt.data() + o * kBlock,
                                    cnt, gxb.data());
              if (need_w)
                add_edge_weight_grad<RC>(C + e * K, jb, v, R, S[e], ab.data(), gt.data() + o * kBlock, cnt,
                                     wc + e * K, ws + e, has_base ? wb + e : nullptr);
            }
            if (need_x)
              for (int64_t n = 0; n < cnt; ++n) GX[(n0 + n) * I + i] = gxb[n];
          }
        }
      }
    });
    });
    if (need_w && wide) {  // add the chunks in order, transpose back, scale the coefficient gradient
      T* oc = gc.data_ptr<T>();
      T* os = gs.data_ptr<T>();
      T* ob = gb.data_ptr<T>();
      for (int64_t chunk = 1; chunk < n_chunks; ++chunk) {
        const T* w = acc.data() + chunk * W;
        for (int64_t e = 0; e < W; ++e) acc[e] += w[e];
      }
      const T* tc = acc.data();
      const T* ts = tc + O * I * K;
      const T* tb = ts + O * I;
      for (int64_t o = 0; o < O; ++o)
        for (int64_t i = 0; i < I; ++i) {
          const T sc = S[o * I + i];
          for (int64_t q = 0; q < K; ++q) oc[(o * I + i) * K + q] = tc[(i * K + q) * O + o] * sc;
          os[o * I + i] = ts[i * O + o];
          ob[o * I + i] = has_base ? tb[i * O + o] : T(0);
        }
    } else if (need_w && n_chunks > 1) {  // add the chunks in order
      T* oc = gc.data_ptr<T>();
      T* os = gs.data_ptr<T>();
      T* ob = gb.data_ptr<T>();
      for (int64_t chunk = 1; chunk < n_chunks; ++chunk) {
        const T* w = acc.data() + (chunk - 1) * W;
        for (int64_t e = 0; e < O * I * K; ++e) oc[e] += w[e];
        for (int64_t e = 0; e < O * I; ++e) {
          os[e] += w[O * I * K + e];
          ob[e] += w[O * I * K + O * I + e];
        }
      }
    }
  });
  return {gx, gc, gs, gb, gbias};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(kanlab_cpp, m) {
  m.def("fused_forward(Tensor x, Tensor grid, Tensor coef, Tensor scale, Tensor? base, Tensor? bias, int order, "
        "int mode, int act, bool save) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("fused_backward(Tensor grad, Tensor x, Tensor grid, Tensor coef, Tensor scale, Tensor? base, int order, "
        "int mode, int act, bool need_x, bool need_w, bool need_bias, Tensor? saved_v, Tensor? saved_dv, "
        "Tensor? saved_first, Tensor? saved_a, Tensor? saved_da) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(kanlab_cpp, CPU, m) {
  m.impl("fused_forward", &fused_forward);
  m.impl("fused_backward", &fused_backward);
}
