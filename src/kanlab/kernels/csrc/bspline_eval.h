// kanlab CPU kernels: B-spline evaluation at the non-zero basis functions only, shared by kan_cpu.cpp (the
// bspline_local / bspline_dense ops) and kan_local.cpp (the training step's lists, built straight from the inputs).
//
// Notation: x (N, I) inputs; grid (I, M) one knot row per feature, M = G + 2k + 1; K = M - k - 1 basis
// functions; R = k + 1 local values per input; v (N, I, R) local values; first (N, I) index of the first.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "buffer_pool.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr int kMaxOrder = 15;

// ---- B-spline local evaluation ----------------------------------------------------------------------

// Interval j with t[j] <= x < t[j+1] (the right end t[M-1] belongs to the last interval of positive length);
// -1 when x lies outside [t[0], t[M-1]] or is NaN.
// (`bucket`, when given, narrows the search: see Row.)
template <typename T>
inline int64_t find_interval(T x, const T* t, int64_t M, T inv_h, const int32_t* bucket = nullptr,
                             int64_t B = 0, T inv_b = T(0)) {
  if (!(x >= t[0] && x <= t[M - 1])) return -1;
  if (x == t[M - 1]) {
    int64_t j = M - 2;
    while (j > 0 && !(t[j] < t[j + 1])) --j;
    return (t[j] < t[j + 1]) ? j : -1;
  }
  int64_t lo = 0, hi = M - 1;  // t[lo] <= x < t[hi]
  if (bucket != nullptr) {
    int64_t b = static_cast<int64_t>((x - t[0]) * inv_b);
    b = std::min<int64_t>(std::max<int64_t>(b, 0), B - 1);
    const int64_t l = bucket[b], h = std::min<int64_t>(bucket[b + 1] + 1, M - 1);
    if (t[l] <= x && x < t[h]) {  // else rounding put x in a neighbouring bucket: search the whole row
      lo = l;
      hi = h;
    }
  } else {
    int64_t j = static_cast<int64_t>((x - t[0]) * inv_h);  // exact for uniform rows, a guess otherwise
    j = std::min<int64_t>(std::max<int64_t>(j, 0), M - 2);
    if (t[j] <= x && x < t[j + 1]) return j;
  }
  while (hi - lo > 1) {
    int64_t mid = (lo + hi) >> 1;
    if (t[mid] <= x) lo = mid; else hi = mid;
  }
  return lo;
}

// Per-feature facts about a knot row: first knot, spacing, whether the row is uniform, and for non-uniform
// rows a bucket table: kBuckets * (M - 1) equal buckets over the row, bucket[b] = the interval holding the
// bucket's left edge, so an input's interval lies in [bucket[b], bucket[b + 1]] (usually one or two knots).
constexpr int64_t kBuckets = 4;

template <typename T>
struct Row {
  const T* t;
  int64_t M;
  T inv_h;     // (M - 1) / (t[M-1] - t[0]), 0 for a degenerate row
  bool uniform;
  const int32_t* bucket;  // B + 1 entries (non-uniform rows), else null
  int64_t B;
  T inv_b;                // B / (t[M-1] - t[0])
};

// `store` must not reallocate afterwards (the rows point into it); `tables`: build the bucket tables (worth it
// when many inputs will be looked up); rows from `distinct` on repeat the first `distinct` rows.
template <typename T>
std::vector<Row<T>> describe_rows(const T* g, int64_t I, int64_t M, std::vector<int32_t>& store, bool tables,
                                  int64_t distinct) {
  std::vector<Row<T>> rows(I);
  const T rel = sizeof(T) == 4 ? T(1e-5) : T(1e-11);
  const int64_t B = kBuckets * (M - 1);
  store.assign(tables ? static_cast<size_t>(distinct * (B + 1)) : 0, 0);
  for (int64_t i = 0; i < I; ++i) {
    const T* t = g + i * M;
    const T span = t[M - 1] - t[0];
    const T h = span / T(M - 1);
    bool uniform = span > T(0);
    for (int64_t m = 1; uniform && m < M; ++m) {
      const T expect = t[0] + T(m) * h;
      uniform = std::abs(t[m] - expect) <= rel * h && t[m] > t[m - 1];
    }
    rows[i] = Row<T>{t, M, span > T(0) ? T(M - 1) / span : T(0), uniform, nullptr, B, T(0)};
    if (!tables || uniform || !(span > T(0))) continue;
    if (i >= distinct) {  // a repeat of row i % distinct (see RowEvaluator's blocks)
      rows[i].bucket = rows[i % distinct].bucket;
      rows[i].inv_b = rows[i % distinct].inv_b;
      continue;
    }
    int32_t* bk = store.data() + i * (B + 1);
    int64_t j = 0;
    for (int64_t b = 0; b <= B; ++b) {
      const T edge = t[0] + span * (T(b) / T(B));
      while (j < M - 2 && t[j + 1] <= edge) ++j;
      bk[b] = (int32_t)j;
    }
    rows[i].bucket = bk;
    rows[i].inv_b = T(B) / span;
  }
  return rows;
}

void check_grid(const at::Tensor& x, const at::Tensor& grid, int64_t order) {
  TORCH_CHECK(x.dim() == 2, "x must be (N, in), got ", x.sizes());
  TORCH_CHECK(grid.dim() == 2 && grid.size(0) == x.size(1), "grid must be (in, M) with in = ", x.size(1),
              ", got ", grid.sizes());
  TORCH_CHECK(order >= 0 && order <= kMaxOrder, "order must lie in [0, ", kMaxOrder, "], got ", order);
  TORCH_CHECK(grid.size(1) >= 2 * order + 2, "grid rows are too short for order ", order);
  TORCH_CHECK(x.scalar_type() == grid.scalar_type(), "x and grid must share a dtype");
  TORCH_CHECK(x.device().is_cpu() && grid.device().is_cpu(), "kanlab_cpp kernels run on CPU tensors");
}

// v[i, r] = n[r, i] * keep[i] for a window length known at compile time: one pass, which GCC vectorises as
// loads and lane permutations (the strided form below compiles to a scalar store per value).
template <int RC, typename T>
inline void interleave_window(const T* __restrict n, const T* __restrict keep, int64_t I, T* __restrict v) {
  for (int64_t i = 0; i < I; ++i) {
    const T kp = keep[i];
#pragma GCC unroll 16
    for (int r = 0; r < RC; ++r) v[i * RC + r] = n[r * I + i] * kp;
  }
}

// v[i, r] = n[r, i] * keep[i], the window shifted by jw[i] where it is clamped at the ends of the knot row.
template <typename T>
inline void store_window(const T* __restrict n, const T* __restrict keep, const int32_t* __restrict jw,
                         int64_t I, int R, T* __restrict v) {
  switch (R) {
    case 2: interleave_window<2>(n, keep, I, v); break;
    case 3: interleave_window<3>(n, keep, I, v); break;
    case 4: interleave_window<4>(n, keep, I, v); break;
    case 6: interleave_window<6>(n, keep, I, v); break;
    default:
      for (int r = 0; r < R; ++r) {
#pragma omp simd
        for (int64_t i = 0; i < I; ++i) v[i * R + r] = n[r * I + i] * keep[i];
      }
  }
  for (int64_t i = 0; i < I; ++i) {  // the few windows clamped at the ends
    const int sh = jw[i];
    if (sh == 0) continue;
    for (int r = 0; r < R; ++r) {
      const int src = r + sh;
      v[i * R + r] = (src >= 0 && src < R) ? n[src * I + i] * keep[i] : T(0);
    }
  }
}

// Knot intervals of L inputs on uniform rows: interval by floor((x - t0) / h) corrected against the actual
// knots; writes u (the position in the interval, in units of h), keep (1 where the input lies on its row and
// d <= k), jw (the window's shift where it is clamped at the ends of the row) and first.  Input l lies on row l
// (x[0..L) one sample, every feature: t0, tl, invh per row, g (L, M)) or, with OneRow, every input on row 0 (one
// feature's samples).  (noinline here and in uniform_pieces: inlined into feature_lists_from_inputs' loop, GCC
// lost the restrict qualifiers and left the loops scalar.)
template <typename T, bool OneRow, typename F>
__attribute__((noinline)) void uniform_intervals(const T* __restrict x, const T* __restrict g, const T* __restrict t0,
                              const T* __restrict tl, const T* __restrict invh, int64_t L, int64_t M, int k, int d,
                              T* __restrict u, T* __restrict keep, int32_t* __restrict jw, F* __restrict first) {
  const int R = k + 1;
  const int Mi = (int)M, Ki = (int)(M - k - 1);
#pragma omp simd
  for (int64_t l = 0; l < L; ++l) {
    const int64_t i = OneRow ? 0 : l;
    const T xi = x[l];
    const T lo = t0[i], hi = tl[i];
    const bool valid = (xi >= lo) & (xi <= hi);
    const T xs = valid ? xi : lo;
    const T ih = invh[i];
    int j = (int)((xs - lo) * ih);
    j = j < 0 ? 0 : (j > Mi - 2 ? Mi - 2 : j);
    const int64_t base = i * M;
    // Correct the guess against both neighbouring knots at once (knots strictly increase, so at most one
    // applies).  Written as two gathers and unconditional adds: GCC 12 does not vectorise the loop when the
    // second correction depends on the first.
    const T below = g[base + j], above = g[base + j + 1];
    j -= (xs < below) ? 1 : 0;
    j += (xs >= above) ? 1 : 0;
    j = j < 0 ? 0 : (j > Mi - 2 ? Mi - 2 : j);
    u[l] = (xs - g[base + j]) * ih;
    keep[l] = (valid & (d <= k)) ? T(1) : T(0);
    const int f0 = j - k;
    const int fst = f0 < 0 ? 0 : (f0 > Ki - R ? Ki - R : f0);
    jw[l] = fst - f0;  // window shift, non-zero only near the ends
    first[l] = (F)(valid ? fst : ((xi > hi) ? Ki - R : 0));
  }
}

// The d-th derivative of the k + 1 non-zero uniform B-spline pieces at positions u[0..L) (see
// uniform_intervals; invh[l], read only when d > 0, is the reciprocal knot spacing of input l's row), written
// to v (L, R) through store_window.  `n` holds R * L scalars.
template <typename T>
__attribute__((noinline)) void uniform_pieces(const T* __restrict u, const T* __restrict keep, const int32_t* __restrict jw,
                           const T* __restrict invh, int64_t L, int k, int d, T* __restrict n, T* __restrict v) {
  const int R = k + 1;
  const int p = d > k ? 0 : k - d;
  const int64_t I = L;
#pragma omp simd
  for (int64_t i = 0; i < I; ++i) n[i] = T(1);
  for (int r = 1; r <= p; ++r) {
    const T inv_r = T(1) / T(r);
    T* __restrict nr = n + r * I;
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) nr[i] = T(0);  // "saved", becomes n[r]
    for (int s = 0; s < r; ++s) {
      T* __restrict ns = n + s * I;
      const T a = T(s + 1), b = T(r - s - 1);
#pragma omp simd
      for (int64_t i = 0; i < I; ++i) {
        const T temp = ns[i] * inv_r;
        const T saved = nr[i];
        ns[i] = saved + (a - u[i]) * temp;
        nr[i] = (u[i] + b) * temp;
      }
    }
  }
  for (int q = p + 1; q <= k; ++q) {  // derivative steps: B' = (B_{m,q-1} - B_{m+1,q-1}) / h
    T* __restrict nq = n + q * I;
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) nq[i] = n[(q - 1) * I + i] * invh[i];
    for (int s = q - 1; s >= 1; --s) {
      T* __restrict ns = n + s * I;
      const T* __restrict nm = n + (s - 1) * I;
#pragma omp simd
      for (int64_t i = 0; i < I; ++i) ns[i] = (nm[i] - ns[i]) * invh[i];
    }
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) n[i] = -n[i] * invh[i];
  }
  store_window<T>(n, keep, jw, I, R, v);
}

// One row of inputs x[0..I) (one sample, every feature) on uniform rows, vectorised across features (every
// loop runs over i innermost).  `work` holds (order + 3) * I scalars and I ints.
template <typename T>
void eval_row_uniform(const T* __restrict x, const T* __restrict g, const T* __restrict t0,
                      const T* __restrict tl, const T* __restrict invh, int64_t I, int64_t M, int k, int d,
                      T* __restrict work, int32_t* __restrict jw, T* __restrict v, int64_t* __restrict first) {
  T* __restrict u = work;           // (I)
  T* __restrict keep = work + I;    // (I)
  T* __restrict n = work + 2 * I;   // (R, I)
  uniform_intervals<T, false>(x, g, t0, tl, invh, I, M, k, d, u, keep, jw, first);
  uniform_pieces<T>(u, keep, jw, invh, I, k, d, n, v);
}

// One row of inputs on any knot rows (non-uniform, repeated knots), vectorised across the row like
// eval_row_uniform: the interval of each input by a (bucket-narrowed) search, then de Boor's triangle and the
// derivative steps on the knots gathered around it.  `work` holds (order + 3) * I scalars, jw 2 * I ints.
template <typename T>
void eval_row_general(const T* __restrict x, const T* __restrict g, const Row<T>* rows, int64_t I, int64_t M,
                      int k, int d, T* __restrict work, int32_t* __restrict jw, T* __restrict v,
                      int64_t* __restrict first) {
  const int R = k + 1;
  const int p = d > k ? 0 : k - d;
  const int Mi = (int)M, Ki = (int)(M - k - 1);
  T* __restrict xs = work;          // (I) the input, or the first knot where it is invalid
  T* __restrict keep = work + I;    // (I)
  T* __restrict n = work + 2 * I;   // (R, I)
  int32_t* __restrict jj = jw + I;  // (I) the interval
  for (int64_t i = 0; i < I; ++i) {  // scalar: the search
    const Row<T>& row = rows[i];
    const T xi = x[i];
    int64_t j = find_interval(xi, row.t, M, row.inv_h, row.bucket, row.B, row.inv_b);
    const bool valid = j >= 0;
    if (!valid) j = k;
    xs[i] = valid ? xi : row.t[0];
    keep[i] = (valid && d <= k) ? T(1) : T(0);
    jj[i] = (int32_t)j;
    const int f0 = (int)j - k;
    const int fst = f0 < 0 ? 0 : (f0 > Ki - R ? Ki - R : f0);
    jw[i] = fst - f0;
    first[i] = valid ? fst : ((xi > row.t[M - 1]) ? Ki - R : 0);
  }
#define KANLAB_KNOT(i, idx) g[(i) * M + std::min(std::max((idx), 0), Mi - 1)]
#pragma omp simd
  for (int64_t i = 0; i < I; ++i) n[i] = T(1);
  for (int r = 1; r <= p; ++r) {
    T* __restrict nr = n + r * I;
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) nr[i] = T(0);  // "saved", becomes n[r]
    for (int s = 0; s < r; ++s) {
      T* __restrict ns = n + s * I;
#pragma omp simd
      for (int64_t i = 0; i < I; ++i) {
        const T tr = KANLAB_KNOT(i, jj[i] + s + 1), tl = KANLAB_KNOT(i, jj[i] + s + 1 - r);
        const T den = tr - tl;
        const T temp = den > T(0) ? ns[i] / den : T(0);
        const T saved = nr[i];
        ns[i] = saved + (tr - xs[i]) * temp;
        nr[i] = (xs[i] - tl) * temp;
      }
    }
  }
  for (int q = p + 1; q <= k; ++q) {  // derivative steps, in place from s = q down to 0
    for (int s = q; s >= 0; --s) {
      T* __restrict ns = n + s * I;
      const T* __restrict nm = n + (s > 0 ? s - 1 : 0) * I;
#pragma omp simd
      for (int64_t i = 0; i < I; ++i) {
        const int m = jj[i] - q + s;
        T left = T(0), right = T(0);
        if (s >= 1) {
          const T den = KANLAB_KNOT(i, m + q) - KANLAB_KNOT(i, m);
          left = den > T(0) ? nm[i] / den : T(0);
        }
        if (s <= q - 1) {
          const T den = KANLAB_KNOT(i, m + q + 1) - KANLAB_KNOT(i, m + 1);
          right = den > T(0) ? ns[i] / den : T(0);
        }
        ns[i] = T(q) * (left - right);
      }
    }
  }
#undef KANLAB_KNOT
  store_window<T>(n, keep, jw, I, R, v);
}

// Evaluates rows of samples (every feature) with the fastest applicable method.  With few features, `block`
// samples are evaluated as one row (the knot rows repeated block times), so the loops vectorised across the
// row stay long.
template <typename T>
struct RowEvaluator {
  std::vector<T> repeated;  // the knot rows repeated `block` times (block > 1 only)
  const T* g;
  int64_t I1, I, M, block;
  int order, deriv;
  std::vector<Row<T>> rows;
  std::vector<int32_t> buckets;  // the rows' bucket tables
  std::vector<T> t0, tl, invh;
  bool all_uniform;

  RowEvaluator(const T* g_, int64_t I_, int64_t M_, int order_, int deriv_, int64_t n_samples)
      : g(g_), I1(I_), I(I_), M(M_), block(std::max<int64_t>(1, 64 / std::max<int64_t>(I_, 1))), order(order_),
        deriv(deriv_) {
    if (block > 1) {
      repeated.resize(static_cast<size_t>(block * I1 * M));
      for (int64_t s = 0; s < block; ++s) std::memcpy(repeated.data() + s * I1 * M, g_, sizeof(T) * I1 * M);
      g = repeated.data();
      I = block * I1;
    }
    rows = describe_rows(g, I, M, buckets, n_samples >= kBuckets * (M - 1), I1);
    t0.resize(I);
    tl.resize(I);
    invh.resize(I);
    all_uniform = true;
    for (int64_t i = 0; i < I; ++i) {
      t0[i] = g[i * M];
      tl[i] = g[i * M + M - 1];
      invh[i] = rows[i].inv_h;
      all_uniform = all_uniform && rows[i].uniform;
    }
  }

  // `count` (<= block) consecutive samples; work buffers: (order + 3) * I scalars and 2 * I ints per thread
  void operator()(const T* x, T* v, int64_t* first, T* work, int32_t* jw, int64_t count) const {
    const int64_t L = count * I1;
    if (all_uniform) {
      eval_row_uniform<T>(x, g, t0.data(), tl.data(), invh.data(), L, M, order, deriv, work, jw, v, first);
      return;
    }
    eval_row_general<T>(x, g, rows.data(), L, M, order, deriv, work, jw, v, first);
  }
};

// The bspline_local op's work for contiguous x (N, I) and grid (I, M) of one dtype (checked by the caller):
// v (N, I, R) and first (N, I) int64, both from the buffer pool.
inline std::tuple<at::Tensor, at::Tensor> evaluate_local(const at::Tensor& x, const at::Tensor& grid, int64_t order,
                                                         int64_t deriv) {
  const int64_t N = x.size(0), I = x.size(1), M = grid.size(1), R = order + 1;
  at::Tensor values = pooled_empty({N, I, R}, x.options());
  at::Tensor first = pooled_empty({N, I}, x.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bspline_local", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = grid.const_data_ptr<scalar_t>();
    scalar_t* vp = values.mutable_data_ptr<scalar_t>();
    int64_t* fp = first.mutable_data_ptr<int64_t>();
    const RowEvaluator<scalar_t> eval(gp, I, M, (int)order, (int)deriv, N);
    at::parallel_for(0, N, std::max<int64_t>(1, 4096 / I), [&](int64_t b, int64_t e) {
      std::vector<scalar_t> work((order + 3) * eval.I);
      std::vector<int32_t> jw(2 * eval.I);
      for (int64_t n = b; n < e; n += eval.block) {
        const int64_t cnt = std::min(eval.block, e - n);
        eval(xp + n * I, vp + n * I * R, fp + n * I, work.data(), jw.data(), cnt);
      }
    });
  });
  return {values, first};
}

}  // namespace
