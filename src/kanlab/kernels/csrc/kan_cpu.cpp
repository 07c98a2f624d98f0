// kanlab CPU kernels: local-support B-spline evaluation and the local KAN contraction.
//
// Built on first use by kanlab/kernels/extension.py with torch.utils.cpp_extension (JIT, cached outside the
// source tree) and registered as torch.ops.kanlab_cpp.*; kanlab/kernels/ops.py wraps these in
// torch.library.custom_op ops with autograd and fake (meta) implementations.  Pure-PyTorch equivalents live in
// kanlab/kernels/torch_impl.py and define the semantics tested here.
//
// Notation: x (N, I) inputs; grid (I, M) one knot row per feature, M = G + 2k + 1; K = M - k - 1 basis
// functions; R = k + 1 local values per input; v (N, I, R) local values; first (N, I) int64 index of the first;
// coef (O, I, K) coefficients; scale (O, I) per-edge factor (spline_scaler * mask); y (N, O).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include <vector>

namespace {

constexpr int kMaxOrder = 15;
constexpr int64_t kGroupBytes = 1 << 20;  // weight slabs of one feature group, kept in L2

// ---- B-spline local evaluation ----------------------------------------------------------------------

// Interval j with t[j] <= x < t[j+1] (the right end t[M-1] belongs to the last interval of positive length);
// -1 when x lies outside [t[0], t[M-1]] or is NaN.
template <typename T>
inline int64_t find_interval(T x, const T* t, int64_t M, T inv_h) {
  if (!(x >= t[0] && x <= t[M - 1])) return -1;
  if (x == t[M - 1]) {
    int64_t j = M - 2;
    while (j > 0 && !(t[j] < t[j + 1])) --j;
    return (t[j] < t[j + 1]) ? j : -1;
  }
  int64_t j = static_cast<int64_t>((x - t[0]) * inv_h);  // exact for uniform rows, a guess otherwise
  j = std::min<int64_t>(std::max<int64_t>(j, 0), M - 2);
  if (t[j] <= x && x < t[j + 1]) return j;
  int64_t lo = 0, hi = M - 1;  // t[lo] <= x < t[hi]
  while (hi - lo > 1) {
    int64_t mid = (lo + hi) >> 1;
    if (t[mid] <= x) lo = mid; else hi = mid;
  }
  return lo;
}

// d-th derivative of the k+1 functions j-k..j (the polynomial piece on interval j) into out[0..k].
// Knot indices beyond the row are clamped: such knots only feed functions that do not exist, which the
// caller discards (a valid function depends on its own k+2 knots only).
template <typename T>
inline void piece_values(T x, const T* t, int64_t M, int64_t j, int k, int d, T* out) {
  auto kt = [&](int64_t idx) { return t[idx < 0 ? 0 : (idx >= M ? M - 1 : idx)]; };
  if (d > k) {
    for (int s = 0; s <= k; ++s) out[s] = T(0);
    return;
  }
  T n[kMaxOrder + 2];
  const int p = k - d;
  n[0] = T(1);
  for (int r = 1; r <= p; ++r) {
    T saved = T(0);
    for (int s = 0; s < r; ++s) {
      const T tr = kt(j + s + 1), tl = kt(j + s + 1 - r);
      const T den = tr - tl;
      const T temp = den > T(0) ? n[s] / den : T(0);
      n[s] = saved + (tr - x) * temp;
      saved = (x - tl) * temp;
    }
    n[r] = saved;
  }
  for (int q = p + 1; q <= k; ++q) {  // derivative rule, raising the order by one each time
    T dn[kMaxOrder + 2];
    for (int s = 0; s <= q; ++s) {
      const int64_t m = j - q + s;
      T left = T(0), right = T(0);
      if (s >= 1) {
        const T den = kt(m + q) - kt(m);
        left = den > T(0) ? n[s - 1] / den : T(0);
      }
      if (s <= q - 1) {
        const T den = kt(m + q + 1) - kt(m + 1);
        right = den > T(0) ? n[s] / den : T(0);
      }
      dn[s] = T(q) * (left - right);
    }
    for (int s = 0; s <= q; ++s) n[s] = dn[s];
  }
  for (int s = 0; s <= k; ++s) out[s] = n[s];
}

// The piece on interval j of a uniform row, in u = (x - t_j) / h: knot differences are multiples of h, so
// the triangle needs no division and h enters only through the derivative steps.
template <typename T>
inline void piece_values_uniform(T u, T inv_h, int k, int d, T* out) {
  if (d > k) {
    for (int s = 0; s <= k; ++s) out[s] = T(0);
    return;
  }
  T n[kMaxOrder + 2];
  const int p = k - d;
  n[0] = T(1);
  for (int r = 1; r <= p; ++r) {
    const T inv_r = T(1) / T(r);
    T saved = T(0);
    for (int s = 0; s < r; ++s) {
      const T temp = n[s] * inv_r;
      n[s] = saved + (T(s + 1) - u) * temp;
      saved = (u + T(r - s - 1)) * temp;
    }
    n[r] = saved;
  }
  for (int q = p + 1; q <= k; ++q) {  // B' = (B_{m,q-1} - B_{m+1,q-1}) / h on a uniform grid
    T prev = T(0);
    for (int s = 0; s < q; ++s) {
      const T cur = n[s];
      n[s] = (prev - cur) * inv_h;
      prev = cur;
    }
    n[q] = prev * inv_h;
  }
  for (int s = 0; s <= k; ++s) out[s] = n[s];
}

// Per-feature facts about a knot row: first knot, spacing, and whether the row is uniform.
template <typename T>
struct Row {
  const T* t;
  int64_t M;
  T inv_h;     // (M - 1) / (t[M-1] - t[0]), 0 for a degenerate row
  bool uniform;
};

template <typename T>
std::vector<Row<T>> describe_rows(const T* g, int64_t I, int64_t M) {
  std::vector<Row<T>> rows(I);
  const T rel = sizeof(T) == 4 ? T(1e-5) : T(1e-11);
  for (int64_t i = 0; i < I; ++i) {
    const T* t = g + i * M;
    const T span = t[M - 1] - t[0];
    const T h = span / T(M - 1);
    bool uniform = span > T(0);
    for (int64_t m = 1; uniform && m < M; ++m) {
      const T expect = t[0] + T(m) * h;
      uniform = std::abs(t[m] - expect) <= rel * h && t[m] > t[m - 1];
    }
    rows[i] = Row<T>{t, M, span > T(0) ? T(M - 1) / span : T(0), uniform};
  }
  return rows;
}

// Local window of one input: out[r] = B^{(d)}_{first + r}(x), first in [0, K-k-1]; returns first.
template <typename T>
inline int64_t local_window(T x, const Row<T>& row, int k, int d, T* out) {
  const T* t = row.t;
  const int64_t M = row.M;
  const int64_t K = M - k - 1;
  const int64_t j = find_interval(x, t, M, row.inv_h);
  if (j < 0) {
    for (int r = 0; r <= k; ++r) out[r] = T(0);
    return (x > t[M - 1]) ? K - k - 1 : 0;
  }
  T piece[kMaxOrder + 2];
  if (row.uniform)
    piece_values_uniform<T>((x - t[j]) * row.inv_h, row.inv_h, k, d, piece);
  else
    piece_values(x, t, M, j, k, d, piece);
  const int64_t f0 = j - k;
  const int64_t first = std::min<int64_t>(std::max<int64_t>(f0, 0), K - k - 1);
  if (first == f0) {
    for (int r = 0; r <= k; ++r) out[r] = piece[r];
  } else {
    for (int r = 0; r <= k; ++r) {
      const int64_t s = first + r - f0;
      out[r] = (s >= 0 && s <= k) ? piece[s] : T(0);
    }
  }
  return first;
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

// One row of inputs x[0..I) (one sample, every feature) on uniform rows, vectorised across features (every
// loop below runs over i innermost): interval by floor((x - t0) / h) corrected against the actual knots,
// then the piece in u-space.  `work` holds (order + 3) * I scalars and I ints.
template <typename T>
void eval_row_uniform(const T* __restrict x, const T* __restrict g, const T* __restrict t0,
                      const T* __restrict tl, const T* __restrict invh, int64_t I, int64_t M, int k, int d,
                      T* __restrict work, int32_t* __restrict jw, T* __restrict v, int64_t* __restrict first) {
  const int R = k + 1;
  const int p = d > k ? 0 : k - d;
  const int Mi = (int)M, Ki = (int)(M - k - 1);
  T* __restrict u = work;           // (I)
  T* __restrict keep = work + I;    // (I)
  T* __restrict n = work + 2 * I;   // (R, I)
#pragma omp simd
  for (int64_t i = 0; i < I; ++i) {
    const T xi = x[i];
    const bool valid = (xi >= t0[i]) & (xi <= tl[i]);
    const T xs = valid ? xi : t0[i];
    const T ih = invh[i];
    int j = (int)((xs - t0[i]) * ih);
    j = j < 0 ? 0 : (j > Mi - 2 ? Mi - 2 : j);
    const int64_t base = i * M;
    j -= ((xs < g[base + j]) & (j > 0)) ? 1 : 0;
    j += ((j < Mi - 2) & (xs >= g[base + j + 1])) ? 1 : 0;
    u[i] = (xs - g[base + j]) * ih;
    keep[i] = (valid & (d <= k)) ? T(1) : T(0);
    const int f0 = j - k;
    const int fst = f0 < 0 ? 0 : (f0 > Ki - R ? Ki - R : f0);
    jw[i] = fst - f0;  // window shift, non-zero only near the ends
    first[i] = valid ? fst : ((xi > tl[i]) ? Ki - R : 0);
  }
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
  for (int r = 0; r < R; ++r) {
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) v[i * R + r] = n[r * I + i] * keep[i];
  }
  for (int64_t i = 0; i < I; ++i) {  // the few windows clamped at the ends of the knot row
    const int sh = jw[i];
    if (sh == 0) continue;
    for (int r = 0; r < R; ++r) {
      const int src = r + sh;
      v[i * R + r] = (src >= 0 && src < R) ? n[src * I + i] * keep[i] : T(0);
    }
  }
}

// Evaluates one sample's row (every feature) with the fastest applicable method.
template <typename T>
struct RowEvaluator {
  const T* g;
  int64_t I, M;
  int order, deriv;
  std::vector<Row<T>> rows;
  std::vector<T> t0, tl, invh;
  bool all_uniform;

  RowEvaluator(const T* g_, int64_t I_, int64_t M_, int order_, int deriv_)
      : g(g_), I(I_), M(M_), order(order_), deriv(deriv_), rows(describe_rows(g_, I_, M_)), t0(I_), tl(I_),
        invh(I_) {
    all_uniform = true;
    for (int64_t i = 0; i < I; ++i) {
      t0[i] = g[i * M];
      tl[i] = g[i * M + M - 1];
      invh[i] = rows[i].inv_h;
      all_uniform = all_uniform && rows[i].uniform;
    }
  }

  // work buffers: (order + 3) * I scalars and I ints per calling thread
  void operator()(const T* x, T* v, int64_t* first, T* work, int32_t* jw) const {
    if (all_uniform) {
      eval_row_uniform<T>(x, g, t0.data(), tl.data(), invh.data(), I, M, order, deriv, work, jw, v, first);
      return;
    }
    const int64_t R = order + 1;
    for (int64_t i = 0; i < I; ++i) first[i] = local_window<T>(x[i], rows[i], order, deriv, v + i * R);
  }
};

std::tuple<at::Tensor, at::Tensor> bspline_local(const at::Tensor& x_, const at::Tensor& grid_, int64_t order,
                                                 int64_t deriv) {
  check_grid(x_, grid_, order);
  TORCH_CHECK(deriv >= 0, "deriv must be >= 0");
  const at::Tensor x = x_.contiguous(), grid = grid_.contiguous();
  const int64_t N = x.size(0), I = x.size(1), M = grid.size(1), R = order + 1;
  at::Tensor values = at::empty({N, I, R}, x.options());
  at::Tensor first = at::empty({N, I}, x.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bspline_local", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = grid.const_data_ptr<scalar_t>();
    scalar_t* vp = values.mutable_data_ptr<scalar_t>();
    int64_t* fp = first.mutable_data_ptr<int64_t>();
    const RowEvaluator<scalar_t> eval(gp, I, M, (int)order, (int)deriv);
    at::parallel_for(0, N, std::max<int64_t>(1, 4096 / I), [&](int64_t b, int64_t e) {
      std::vector<scalar_t> work((order + 3) * I);
      std::vector<int32_t> jw(I);
      for (int64_t n = b; n < e; ++n) eval(xp + n * I, vp + n * I * R, fp + n * I, work.data(), jw.data());
    });
  });
  return {values, first};
}

// Dense basis values with the base activation appended: A (N, I, K + 1); A[..., K] = act when act is given,
// else A is (N, I, K).  Only the k+1 local values are computed; the rest are written as zeros.
at::Tensor bspline_dense(const at::Tensor& x_, const std::optional<at::Tensor>& act_, const at::Tensor& grid_,
                         int64_t order) {
  check_grid(x_, grid_, order);
  const at::Tensor x = x_.contiguous(), grid = grid_.contiguous();
  const int64_t N = x.size(0), I = x.size(1), M = grid.size(1), K = M - order - 1;
  const bool has_act = act_.has_value();
  at::Tensor act;
  if (has_act) {
    act = act_->contiguous();
    TORCH_CHECK(act.sizes() == x.sizes() && act.scalar_type() == x.scalar_type(), "act must be like x");
  }
  const int64_t C = K + (has_act ? 1 : 0);
  at::Tensor out = at::empty({N, I, C}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bspline_dense", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = grid.const_data_ptr<scalar_t>();
    const scalar_t* ap = has_act ? act.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const RowEvaluator<scalar_t> eval(gp, I, M, (int)order, 0);
    const int64_t R = order + 1;
    at::parallel_for(0, N, std::max<int64_t>(1, 4096 / I), [&](int64_t b, int64_t e) {
      std::vector<scalar_t> loc(I * R);
      std::vector<int64_t> fst(I);
      std::vector<scalar_t> work((order + 3) * I);
      std::vector<int32_t> jw(I);
      for (int64_t n = b; n < e; ++n) {
        eval(xp + n * I, loc.data(), fst.data(), work.data(), jw.data());
        scalar_t* rows_out = op + n * I * C;
        std::memset(rows_out, 0, sizeof(scalar_t) * I * C);
        for (int64_t i = 0; i < I; ++i) {
          scalar_t* row = rows_out + i * C + fst[i];
          const scalar_t* l = loc.data() + i * R;
          for (int64_t r = 0; r < R; ++r) row[r] = l[r];
        }
        if (has_act)
          for (int64_t i = 0; i < I; ++i) rows_out[i * C + K] = ap[n * I + i];
      }
    });
  });
  return out;
}

// gx[n, i] = sum_r grad[n, i, first + r] * B'_{first + r}(x[n, i]) for grad (N, I, C) with C >= K.
at::Tensor bspline_dense_backward(const at::Tensor& grad_, const at::Tensor& x_, const at::Tensor& grid_,
                                  int64_t order) {
  check_grid(x_, grid_, order);
  const at::Tensor x = x_.contiguous(), grid = grid_.contiguous(), grad = grad_.contiguous();
  const int64_t N = x.size(0), I = x.size(1), M = grid.size(1), K = M - order - 1;
  TORCH_CHECK(grad.dim() == 3 && grad.size(0) == N && grad.size(1) == I && grad.size(2) >= K,
              "grad must be (N, in, >= K)");
  const int64_t C = grad.size(2);
  at::Tensor gx = at::empty({N, I}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bspline_dense_backward", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = grid.const_data_ptr<scalar_t>();
    const scalar_t* dp = grad.const_data_ptr<scalar_t>();
    scalar_t* op = gx.mutable_data_ptr<scalar_t>();
    const RowEvaluator<scalar_t> eval(gp, I, M, (int)order, 1);
    const int64_t R = order + 1;
    at::parallel_for(0, N, std::max<int64_t>(1, 4096 / I), [&](int64_t b, int64_t e) {
      std::vector<scalar_t> loc(I * R);
      std::vector<int64_t> fst(I);
      std::vector<scalar_t> work((order + 3) * I);
      std::vector<int32_t> jw(I);
      for (int64_t n = b; n < e; ++n) {
        eval(xp + n * I, loc.data(), fst.data(), work.data(), jw.data());
        for (int64_t i = 0; i < I; ++i) {
          const scalar_t* row = dp + (n * I + i) * C + fst[i];
          const scalar_t* l = loc.data() + i * R;
          scalar_t acc = 0;
          for (int64_t r = 0; r < R; ++r) acc += row[r] * l[r];
          op[n * I + i] = acc;
        }
      }
    });
  });
  return gx;
}

// ---- local contraction ------------------------------------------------------------------------------
//
// Forward: sample tiles x feature groups (outputs of a tile stay in L1, the group's transposed weight slabs in
// L2), threads split the samples.  Backward: threads split the features, so every coefficient-gradient row
// has one owner (no atomics, no global sort); each feature walks its samples in order of knot interval (a
// per-feature counting sort, O(N + K)), so consecutive samples touch the same k+1 rows of that feature's
// weight slab and gradient accumulator, which stay in L1 whatever the grid size.

// Per-feature lists of the samples in order of their first index, packed for sequential reading:
// sample[i * N + s], start[i * N + s] and values[(i * N + s) * R + r] (every sample is listed).
template <typename T>
struct FeatureLists {
  std::vector<int32_t> sample, start;
  std::vector<T> values;
};

template <typename T>
void feature_lists(const T* v, const int64_t* first, int64_t N, int64_t I, int64_t K, int64_t R,
                   FeatureLists<T>& out) {
  out.sample.resize(static_cast<size_t>(N * I));
  out.start.resize(static_cast<size_t>(N * I));
  out.values.resize(static_cast<size_t>(N * I * R));
  at::parallel_for(0, I, 16, [&](int64_t ib, int64_t ie) {
    const int64_t w = ie - ib;
    std::vector<int32_t> pos(static_cast<size_t>(w * (K + 1)), 0);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t* fr = first + n * I + ib;
      for (int64_t c = 0; c < w; ++c) ++pos[c * (K + 1) + fr[c] + 1];
    }
    for (int64_t c = 0; c < w; ++c) {
      int32_t* pc = pos.data() + c * (K + 1);
      for (int64_t f = 1; f <= K; ++f) pc[f] += pc[f - 1];
    }
    for (int64_t n = 0; n < N; ++n) {
      const int64_t* fr = first + n * I + ib;
      const T* vr = v + (n * I + ib) * R;
      for (int64_t c = 0; c < w; ++c) {
        const int64_t q = (ib + c) * N + pos[c * (K + 1) + fr[c]]++;
        out.sample[q] = (int32_t)n;
        out.start[q] = (int32_t)fr[c];
        for (int64_t r = 0; r < R; ++r) out.values[q * R + r] = vr[c * R + r];
      }
    }
  });
}

// dst[c * ds + r] = src[r * ss + c] * rs[r] * cs[c] (rs, cs optional): a scaled transpose, by 8 x 8 AVX tiles
// for float where available, scalar otherwise.
#if defined(__AVX__)
inline void transpose8(__m256* x) {
  const __m256 t0 = _mm256_unpacklo_ps(x[0], x[1]), t1 = _mm256_unpackhi_ps(x[0], x[1]);
  const __m256 t2 = _mm256_unpacklo_ps(x[2], x[3]), t3 = _mm256_unpackhi_ps(x[2], x[3]);
  const __m256 t4 = _mm256_unpacklo_ps(x[4], x[5]), t5 = _mm256_unpackhi_ps(x[4], x[5]);
  const __m256 t6 = _mm256_unpacklo_ps(x[6], x[7]), t7 = _mm256_unpackhi_ps(x[6], x[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  x[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  x[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  x[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  x[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  x[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  x[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  x[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  x[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
#endif

template <typename T>
void transpose_scaled(const T* src, int64_t ss, T* dst, int64_t ds, int64_t rows, int64_t cols, const T* rs,
                      const T* cs) {
  int64_t r0 = 0;
#if defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) {
    for (; r0 + 8 <= rows; r0 += 8) {
      int64_t c0 = 0;
      for (; c0 + 8 <= cols; c0 += 8) {
        __m256 x[8];
        for (int k = 0; k < 8; ++k) {
          x[k] = _mm256_loadu_ps(src + (r0 + k) * ss + c0);
          if (rs) x[k] = _mm256_mul_ps(x[k], _mm256_set1_ps(rs[r0 + k]));
        }
        transpose8(x);
        for (int k = 0; k < 8; ++k) {
          __m256 y = x[k];
          if (cs) y = _mm256_mul_ps(y, _mm256_set1_ps(cs[c0 + k]));
          _mm256_storeu_ps(dst + (c0 + k) * ds + r0, y);
        }
      }
      for (; c0 < cols; ++c0)
        for (int64_t r = r0; r < r0 + 8; ++r)
          dst[c0 * ds + r] = src[r * ss + c0] * (rs ? rs[r] : T(1)) * (cs ? cs[c0] : T(1));
    }
  }
#endif
  for (; r0 < rows; ++r0) {
    const T a = rs ? rs[r0] : T(1);
    for (int64_t c = 0; c < cols; ++c) dst[c * ds + r0] = src[r0 * ss + c] * a * (cs ? cs[c] : T(1));
  }
}

// slab[j * O + o] = srow[o] * coef[o, i, j]: feature i's transposed (K, O) weights (unscaled if srow is null).
template <typename T>
inline void build_slab(const T* coef, const T* srow, int64_t i, int64_t I, int64_t K, int64_t O, T* slab) {
  transpose_scaled<T>(coef + i * K, I * K, slab, O, O, K, srow, nullptr);
}

// The gradients from feature i's accumulator acc (K, O) and its unscaled slab wu (K, O):
// gscale[o, i] = sum_j wu[j, o] * acc[j, o];  gcoef[o, i, j] = srow[o] * acc[j, o].
template <typename T>
inline void finish_gradients(const T* acc, const T* wu, const T* srow, int64_t i, int64_t I, int64_t K,
                             int64_t O, T* gcoef, T* gscale, T* tmp) {
#pragma omp simd
  for (int64_t o = 0; o < O; ++o) tmp[o] = T(0);
  for (int64_t j = 0; j < K; ++j) {
    const T* a = acc + j * O;
    const T* w = wu + j * O;
#pragma omp simd
    for (int64_t o = 0; o < O; ++o) tmp[o] += w[o] * a[o];
  }
  for (int64_t o = 0; o < O; ++o) gscale[o * I + i] = tmp[o];
  transpose_scaled<T>(acc, O, gcoef + i * K, I * K, K, O, nullptr, srow);
}

// y[c] += sum_r v[r] * w[r * W + c]  (R fixed at compile time for orders 0..5, R = 0 means runtime Rd)
template <typename T, int R>
inline void axpy_rows(T* __restrict y, const T* __restrict w, const T* v, int64_t W, int Rd) {
  if constexpr (R > 0) {
    T c[R];
    for (int r = 0; r < R; ++r) c[r] = v[r];
#pragma omp simd
    for (int64_t o = 0; o < W; ++o) {
      T acc = y[o];
      for (int r = 0; r < R; ++r) acc += c[r] * w[r * W + o];
      y[o] = acc;
    }
  } else {
    for (int r = 0; r < Rd; ++r) {
      const T c = v[r];
      const T* wr = w + r * W;
#pragma omp simd
      for (int64_t o = 0; o < W; ++o) y[o] += c * wr[o];
    }
  }
}

// Forward: features in groups whose slabs fit in L2; samples in tiles of kTile rows whose outputs stay in
// L1 while every feature of the group is added (small grids: the feature's slab is reused by the whole tile).
template <typename T, int R>
void local_forward_impl(const T* v, const int64_t* first, const T* coef, const T* scale, T* y, int64_t N,
                        int64_t I, int64_t O, int64_t K, int Rd) {
  constexpr int64_t kTile = 8;
  const int64_t slab = K * O;
  const int64_t gi = std::max<int64_t>(1, std::min<int64_t>(I, kGroupBytes / (slab * (int64_t)sizeof(T))));
  std::vector<T> slabs(static_cast<size_t>(gi * slab));
  const int64_t n_tiles = (N + kTile - 1) / kTile;
  for (int64_t i0 = 0; i0 < I; i0 += gi) {
    const int64_t i1 = std::min(I, i0 + gi);
    at::parallel_for(i0, i1, 1, [&](int64_t b, int64_t e) {
      std::vector<T> srow(O);
      for (int64_t i = b; i < e; ++i) {
        for (int64_t o = 0; o < O; ++o) srow[o] = scale[o * I + i];
        build_slab<T>(coef, srow.data(), i, I, K, O, slabs.data() + (i - i0) * slab);
      }
    });
    at::parallel_for(0, n_tiles, 1, [&](int64_t tb, int64_t te) {
      for (int64_t t = tb; t < te; ++t) {
        const int64_t n0 = t * kTile, n1 = std::min(N, n0 + kTile);
        for (int64_t i = i0; i < i1; ++i) {
          const T* sl = slabs.data() + (i - i0) * slab;
          for (int64_t n = n0; n < n1; ++n) {
            const int64_t p = n * I + i;
            const T* vr = v + p * Rd;
            bool any = false;
            for (int r = 0; r < Rd; ++r) any |= (vr[r] != T(0));
            if (!any) continue;
            axpy_rows<T, R>(y + n * O, sl + first[p] * O, vr, O, Rd);
          }
        }
      }
    });
  }
}

void check_local(const at::Tensor& v, const at::Tensor& first, const at::Tensor& coef, const at::Tensor& scale) {
  TORCH_CHECK(v.dim() == 3, "v must be (N, in, k+1), got ", v.sizes());
  TORCH_CHECK(first.dim() == 2 && first.size(0) == v.size(0) && first.size(1) == v.size(1) &&
                  first.scalar_type() == at::kLong, "first must be int64 (N, in)");
  TORCH_CHECK(coef.dim() == 3 && coef.size(1) == v.size(1) && coef.size(2) >= v.size(2),
              "coef must be (out, in, K) with K >= k+1, got ", coef.sizes());
  TORCH_CHECK(scale.dim() == 2 && scale.size(0) == coef.size(0) && scale.size(1) == coef.size(1),
              "scale must be (out, in)");
  TORCH_CHECK(v.scalar_type() == coef.scalar_type() && scale.scalar_type() == coef.scalar_type(),
              "v, coef and scale must share a dtype");
  TORCH_CHECK(v.device().is_cpu() && coef.device().is_cpu(), "kanlab_cpp kernels run on CPU tensors");
  TORCH_CHECK(v.size(0) < (int64_t(1) << 31), "batch too large for the local kernel (>= 2^31 rows)");
}

// Calls fn(std::integral_constant<int, R>) with R = Rd for Rd in 1..6, else R = 0 (runtime loops).
template <typename Fn>
void with_order(int64_t Rd, Fn&& fn) {
  switch (Rd) {
    case 1: fn(std::integral_constant<int, 1>{}); break;
    case 2: fn(std::integral_constant<int, 2>{}); break;
    case 3: fn(std::integral_constant<int, 3>{}); break;
    case 4: fn(std::integral_constant<int, 4>{}); break;
    case 5: fn(std::integral_constant<int, 5>{}); break;
    case 6: fn(std::integral_constant<int, 6>{}); break;
    default: fn(std::integral_constant<int, 0>{});
  }
}

at::Tensor local_forward(const at::Tensor& v_, const at::Tensor& first_, const at::Tensor& coef_,
                         const at::Tensor& scale_) {
  check_local(v_, first_, coef_, scale_);
  const at::Tensor v = v_.contiguous(), first = first_.contiguous(), coef = coef_.contiguous(),
                   scale = scale_.contiguous();
  const int64_t N = v.size(0), I = v.size(1), R = v.size(2), O = coef.size(0), K = coef.size(2);
  at::Tensor y = at::zeros({N, O}, v.options());
  if (N == 0) return y;
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "local_forward", [&] {
    with_order(R, [&](auto tag) {
      constexpr int RR = decltype(tag)::value;
      local_forward_impl<scalar_t, RR>(v.const_data_ptr<scalar_t>(), first.const_data_ptr<int64_t>(),
                                       coef.const_data_ptr<scalar_t>(), scale.const_data_ptr<scalar_t>(),
                                       y.mutable_data_ptr<scalar_t>(), N, I, O, K, (int)R);
    });
  });
  return y;
}

// One input's share of the backward pass, with wu the unscaled slab rows and sc the feature's scales:
// d[r] = sum_o g[o] * sc[o] * wu[r, o] (need_v);  acc[r, o] += v[r] * g[o] (need_w).
template <typename T, int R>
inline void backward_rows(const T* __restrict g, const T* __restrict sc, const T* __restrict w,
                          T* __restrict acc, const T* v, T* d, int64_t O, int Rd, bool need_v, bool need_w) {
  if constexpr (R > 0) {
    T c[R];
    for (int r = 0; r < R; ++r) c[r] = v[r];
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0;
    if (need_v && need_w) {
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4, s5)
      for (int64_t o = 0; o < O; ++o) {
        const T go = g[o];
        const T gs = go * sc[o];
        s0 += gs * w[o];
        acc[o] += c[0] * go;
        if constexpr (R > 1) { s1 += gs * w[O + o]; acc[O + o] += c[1] * go; }
        if constexpr (R > 2) { s2 += gs * w[2 * O + o]; acc[2 * O + o] += c[2] * go; }
        if constexpr (R > 3) { s3 += gs * w[3 * O + o]; acc[3 * O + o] += c[3] * go; }
        if constexpr (R > 4) { s4 += gs * w[4 * O + o]; acc[4 * O + o] += c[4] * go; }
        if constexpr (R > 5) { s5 += gs * w[5 * O + o]; acc[5 * O + o] += c[5] * go; }
      }
    } else if (need_v) {
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4, s5)
      for (int64_t o = 0; o < O; ++o) {
        const T gs = g[o] * sc[o];
        s0 += gs * w[o];
        if constexpr (R > 1) s1 += gs * w[O + o];
        if constexpr (R > 2) s2 += gs * w[2 * O + o];
        if constexpr (R > 3) s3 += gs * w[3 * O + o];
        if constexpr (R > 4) s4 += gs * w[4 * O + o];
        if constexpr (R > 5) s5 += gs * w[5 * O + o];
      }
    } else {
#pragma omp simd
      for (int64_t o = 0; o < O; ++o) {
        const T go = g[o];
        acc[o] += c[0] * go;
        if constexpr (R > 1) acc[O + o] += c[1] * go;
        if constexpr (R > 2) acc[2 * O + o] += c[2] * go;
        if constexpr (R > 3) acc[3 * O + o] += c[3] * go;
        if constexpr (R > 4) acc[4 * O + o] += c[4] * go;
        if constexpr (R > 5) acc[5 * O + o] += c[5] * go;
      }
    }
    if (need_v) {
      const T sv[6] = {s0, s1, s2, s3, s4, s5};
      for (int r = 0; r < R; ++r) d[r] = sv[r];
    }
  } else {
    for (int r = 0; r < Rd; ++r) {
      const T c = v[r];
      const T* wr = w + r * O;
      T* ar = acc + r * O;
      if (need_v) {
        T s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t o = 0; o < O; ++o) s += g[o] * sc[o] * wr[o];
        d[r] = s;
      }
      if (need_w) {
#pragma omp simd
        for (int64_t o = 0; o < O; ++o) ar[o] += c * g[o];
      }
    }
  }
}

template <typename T, int R>
void local_backward_impl(const T* g, const T* v, const int64_t* first, const T* coef, const T* scale, T* gv,
                         T* gcoef, T* gscale, int64_t N, int64_t I, int64_t O, int64_t K, int Rd, bool need_v,
                         bool need_w) {
  FeatureLists<T> lists;
  feature_lists<T>(v, first, N, I, K, Rd, lists);
  at::parallel_for(0, I, 1, [&](int64_t ib, int64_t ie) {
    std::vector<T> w_buf(K * O), acc_buf(need_w ? K * O : 0), srow(O), tmp(O);
    T d[kMaxOrder + 2];
    for (int64_t i = ib; i < ie; ++i) {
      build_slab<T>(coef, nullptr, i, I, K, O, w_buf.data());
      for (int64_t o = 0; o < O; ++o) srow[o] = scale[o * I + i];
      if (need_w) std::fill(acc_buf.begin(), acc_buf.end(), T(0));
      const int32_t* smp = lists.sample.data() + i * N;
      const int32_t* st = lists.start.data() + i * N;
      const T* vals = lists.values.data() + i * N * Rd;
      for (int64_t s = 0; s < N; ++s) {
        const int64_t n = smp[s];
        if (s + 2 < N) __builtin_prefetch(g + (int64_t)smp[s + 2] * O);
        const T* vr = vals + s * Rd;
        if (!need_v) {
          bool any = false;
          for (int r = 0; r < Rd; ++r) any |= (vr[r] != T(0));
          if (!any) continue;
        }
        const int64_t off = (int64_t)st[s] * O;
        backward_rows<T, R>(g + n * O, srow.data(), w_buf.data() + off, need_w ? acc_buf.data() + off : nullptr,
                            vr, d, O, Rd, need_v, need_w);
        if (need_v) {
          T* out = gv + (n * I + i) * Rd;
          for (int r = 0; r < Rd; ++r) out[r] = d[r];
        }
      }
      if (need_w)
        finish_gradients(acc_buf.data(), w_buf.data(), srow.data(), i, I, K, O, gcoef, gscale, tmp.data());
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> local_backward(const at::Tensor& g_, const at::Tensor& v_,
                                                              const at::Tensor& first_, const at::Tensor& coef_,
                                                              const at::Tensor& scale_, bool need_v, bool need_w) {
  check_local(v_, first_, coef_, scale_);
  TORCH_CHECK(g_.dim() == 2 && g_.size(0) == v_.size(0) && g_.size(1) == coef_.size(0), "grad must be (N, out)");
  TORCH_CHECK(g_.scalar_type() == v_.scalar_type(), "grad must have the dtype of v");
  const at::Tensor g = g_.contiguous(), v = v_.contiguous(), first = first_.contiguous(),
                   coef = coef_.contiguous(), scale = scale_.contiguous();
  const int64_t N = v.size(0), I = v.size(1), R = v.size(2), O = coef.size(0), K = coef.size(2);
  at::Tensor gv = at::zeros({N, I, R}, v.options());
  at::Tensor gcoef = (need_w && N > 0) ? at::empty({O, I, K}, v.options()) : at::zeros({O, I, K}, v.options());
  at::Tensor gscale = (need_w && N > 0) ? at::empty({O, I}, v.options()) : at::zeros({O, I}, v.options());
  if ((!need_v && !need_w) || N == 0) return {gv, gcoef, gscale};
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "local_backward", [&] {
    with_order(R, [&](auto tag) {
      constexpr int RR = decltype(tag)::value;
      local_backward_impl<scalar_t, RR>(g.const_data_ptr<scalar_t>(), v.const_data_ptr<scalar_t>(),
                                        first.const_data_ptr<int64_t>(), coef.const_data_ptr<scalar_t>(),
                                        scale.const_data_ptr<scalar_t>(), gv.mutable_data_ptr<scalar_t>(),
                                        gcoef.mutable_data_ptr<scalar_t>(), gscale.mutable_data_ptr<scalar_t>(),
                                        N, I, O, K, (int)R, need_v, need_w);
    });
  });
  return {gv, gcoef, gscale};
}

}  // namespace

TORCH_LIBRARY(kanlab_cpp, m) {
  m.def("bspline_local(Tensor x, Tensor grid, int order, int deriv) -> (Tensor, Tensor)");
  m.def("bspline_dense(Tensor x, Tensor? act, Tensor grid, int order) -> Tensor");
  m.def("bspline_dense_backward(Tensor grad, Tensor x, Tensor grid, int order) -> Tensor");
  m.def("local_forward(Tensor v, Tensor first, Tensor coef, Tensor scale) -> Tensor");
  m.def("local_backward(Tensor grad, Tensor v, Tensor first, Tensor coef, Tensor scale, bool need_v, "
        "bool need_w) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(kanlab_cpp, CPU, m) {
  m.impl("bspline_local", &bspline_local);
  m.impl("bspline_dense", &bspline_dense);
  m.impl("bspline_dense_backward", &bspline_dense_backward);
  m.impl("local_forward", &local_forward);
  m.impl("local_backward", &local_backward);
}
