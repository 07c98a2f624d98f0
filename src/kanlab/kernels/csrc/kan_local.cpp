// kanlab CPU kernels: the local-support KAN contraction and its backward (registered as torch.ops.kanlab_cpp.*
// next to the B-spline evaluation kernels of kan_cpu.cpp; wrapped with autograd in kanlab/kernels/ops.py).
//
// y[n, o] = sum_i sum_r v[n, i, r] * scale[o, i] * coef[o, i, first[n, i] + r]
//
// Notation: v (N, I, R) the R = k + 1 local basis values per input, first (N, I) int64 the index of the first,
// coef (O, I, K), scale (O, I) per-edge factor (spline_scaler * mask), y (N, O).
//
// Forward: feature groups whose weight slabs (feature i's coefficients transposed to K x O, scaled) fit in L2
// x sample tiles whose outputs stay in L1; threads split the samples.  Backward: threads split the feature
// groups, so every coefficient-gradient row has one owner (no atomics, no global sort); each feature walks its
// samples in order of knot interval (per-feature lists from a counting sort, O(N + K), feature_lists.h), so
// consecutive samples touch the same k+1 rows of the feature's weight slab and gradient accumulator (float with
// AVX-512: those rows stay in registers while the window slides, window_sweeps.h).  The coefficients enter and
// the gradient leaves through one blocked transpose per feature group (rows of whole groups are contiguous in
// coef (O, I, K), so these passes stream through memory); the gradient buffer comes from a small cache (see
// buffer_pool.h).  So time and memory beyond one read of the coefficients and one write of their gradient do
// not grow with the grid size.
//
// Training steps call local_forward_lists / local_backward_lists instead: the forward sorts, sweeps the sorted
// lists (float, AVX-512) and hands them to the backward, which then need not sort again.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "bspline_eval.h"
#include "buffer_pool.h"
#include "feature_lists.h"
#include "transpose.h"
#include "window_sweeps.h"

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

constexpr int kMaxR = 16;                    // order <= 15
constexpr int64_t kGroupBytes = 1 << 19;      // forward: scaled weight slabs of one feature group, in L2
constexpr int64_t kBackGroupBytes = 1 << 19;  // backward: slabs and gradient accumulators of one group, in L2

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

// The forward for the outputs [o0, o1): feature groups whose scaled slabs (K x W, W = o1 - o0) fit in L2, each
// swept by tiles of kTile samples whose output rows stay in L1.  vi/fi give sample n's values and first index
// of feature i at vi(i) + n * vs, fi(i)[n * fs].  `inner`: split the transposes and the tiles between threads
// (else the caller runs this per thread on its own outputs).
template <typename T, int R, typename VI, typename FI>
void forward_columns(VI vi, FI fi, int64_t vs, int64_t fs, const T* coef, const T* scale, T* y, int64_t N,
                     int64_t I, int64_t O, int64_t K, int Rd, int64_t o0, int64_t o1, bool inner) {
  constexpr int64_t kTile = 8;
  const int64_t W = o1 - o0, slab = K * W;
  const int64_t gi = std::max<int64_t>(1, std::min<int64_t>(I, kGroupBytes / (slab * (int64_t)sizeof(T))));
  std::vector<T> slabs(static_cast<size_t>(gi * slab)), srow(W);
  const int64_t n_tiles = (N + kTile - 1) / kTile;
  auto tiles = [&](int64_t i0, int64_t i1, int64_t tb, int64_t te) {
    for (int64_t t = tb; t < te; ++t) {
      const int64_t n0 = t * kTile, n1 = std::min(N, n0 + kTile);
      for (int64_t i = i0; i < i1; ++i) {
        const T* sl = slabs.data() + (i - i0) * slab;
        const T* vf = vi(i);
        const int64_t* ff = fi(i);
        for (int64_t n = n0; n < n1; ++n) {
          const T* vr = vf + n * vs;
          bool any = false;
          for (int r = 0; r < Rd; ++r) any |= (vr[r] != T(0));
          if (!any) continue;
          axpy_rows<T, R>(y + n * O + o0, sl + ff[n * fs] * W, vr, W, Rd);
        }
      }
    }
  };
  for (int64_t i0 = 0; i0 < I; i0 += gi) {
    const int64_t i1 = std::min(I, i0 + gi);
    if (inner) {
      load_group<T>(coef, i0, i1, I, K, O, slabs.data(), true);
    } else {
      transpose<T>(coef + o0 * I * K + i0 * K, I * K, slabs.data(), W, W, (i1 - i0) * K);
    }
    for (int64_t i = i0; i < i1; ++i) {  // scale the slabs (in cache)
      for (int64_t o = 0; o < W; ++o) srow[o] = scale[(o0 + o) * I + i];
      T* sl = slabs.data() + (i - i0) * slab;
      for (int64_t j = 0; j < K; ++j) {
#pragma omp simd
        for (int64_t o = 0; o < W; ++o) sl[j * W + o] *= srow[o];
      }
    }
    if (inner)
      at::parallel_for(0, n_tiles, 1, [&](int64_t tb, int64_t te) { tiles(i0, i1, tb, te); });
    else
      tiles(i0, i1, 0, n_tiles);
  }
}

#if defined(KANLAB_WINDOW_SWEEPS)
// The forward of features [ib, ie) from their sorted lists into y (N, O): feature groups whose scaled slabs fit
// in L2, each feature's list swept once per chunk of 64 outputs with its window rows in registers (the outputs'
// rows come from L2 instead of the slab rows: half the traffic of forward_columns' tiles on large grids).
template <int R>
void forward_features_sorted(const FeatureLists<float>& L, const float* coef, const float* scale, float* y,
                             int64_t N, int64_t I, int64_t O, int64_t K, int64_t ib, int64_t ie) {
  const int64_t slab = K * O;
  const int64_t gi = std::max<int64_t>(1, std::min<int64_t>(ie - ib, kGroupBytes / (slab * (int64_t)sizeof(float))));
  std::vector<float> slabs(static_cast<size_t>(gi * slab)), srow(O);
  for (int64_t i0 = ib; i0 < ie; i0 += gi) {
    const int64_t i1 = std::min(ie, i0 + gi);
    transpose<float>(coef + i0 * K, I * K, slabs.data(), O, O, (i1 - i0) * K);
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t o = 0; o < O; ++o) srow[o] = scale[o * I + i];
      float* sl = slabs.data() + (i - i0) * slab;
      for (int64_t j = 0; j < K; ++j) {
#pragma omp simd
        for (int64_t o = 0; o < O; ++o) sl[j * O + o] *= srow[o];
      }
      for (int64_t o0 = 0; o0 < O; o0 += 64)
        forward_window<R>(sl, O, o0, L.sample + i * N, L.start + i * N, L.values + i * N * R, N, y, O, o0,
                          ChunkMask(o0, O));
    }
  }
}

// The forward from sorted lists: each thread takes its share of the features into its own output buffer (the
// first into y), summed into y in thread order afterwards.  (Splitting the outputs instead, as forward_columns
// does, ran slower on two threads than on one.)  Each part's sums run over its features in order, so results
// can differ in the last bits between thread counts.
template <int R>
void forward_sorted(const FeatureLists<float>& L, const float* coef, const float* scale, float* y, int64_t N,
                    int64_t I, int64_t O, int64_t K) {
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), I));
  std::vector<float> own(static_cast<size_t>((parts - 1) * N * O), 0.f);
  at::parallel_for(0, parts, 1, [&](int64_t pb, int64_t pe) {
    for (int64_t p = pb; p < pe; ++p)
      forward_features_sorted<R>(L, coef, scale, p == 0 ? y : own.data() + (p - 1) * N * O, N, I, O, K,
                                 p * I / parts, (p + 1) * I / parts);
  });
  if (parts > 1)
    at::parallel_for(0, N, 64, [&](int64_t nb, int64_t ne) {
      for (int64_t p = 1; p < parts; ++p) {
        const float* src = own.data() + (p - 1) * N * O;
#pragma omp simd
        for (int64_t e = nb * O; e < ne * O; ++e) y[e] += src[e];
      }
    });
}
#endif

template <typename T, int R>
void local_forward_impl(const T* v, const int64_t* first, const T* coef, const T* scale, T* y, int64_t N,
                        int64_t I, int64_t O, int64_t K, int Rd, const FeatureLists<T>* lists) {
#if defined(KANLAB_WINDOW_SWEEPS)
  if constexpr (std::is_same_v<T, float> && R > 0) {
    if (lists) {  // sorted already (training step): on every grid size faster than the tiles below
      forward_sorted<R>(*lists, coef, scale, y, N, I, O, K);
      return;
    }
  }
#endif
  const int64_t threads = at::get_num_threads();
  // Large slabs and enough outputs: each thread takes its own block of outputs (16-aligned) through every
  // feature group, in one parallel region; otherwise the groups' transposes and sample tiles are split between
  // the threads.  (Each thread then sweeps every sample, which pays only when the slabs are large: 256 x 256
  // layer, batch 1024, float32, 2 threads, forward ms split / not: G = 5 6.4 / 4.0, 20 8.1 / 5.6,
  // 100 12.8 / 11.5, 200 16.2 / 17.4.)
  const bool split_outputs = threads > 1 && O >= 64 * threads && K * O * (int64_t)sizeof(T) > (int64_t(160) << 10);
  const int64_t W = split_outputs ? (O + threads - 1) / threads : O;
  const int64_t gi = std::max<int64_t>(1, std::min<int64_t>(I, kGroupBytes / (K * W * (int64_t)sizeof(T))));
  // Small groups (large grids): feature-major copies of v and first, so that the tiles read them sequentially;
  // large groups read v's rows directly.
  const bool major = gi < 16;
  std::vector<T> vt(major ? static_cast<size_t>(N * I * Rd) : 0);
  std::vector<int64_t> ft(major ? static_cast<size_t>(N * I) : 0);
  if (major)
    at::parallel_for(0, I, 16, [&](int64_t ib, int64_t ie) {
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = ib; i < ie; ++i) {
          ft[i * N + n] = first[n * I + i];
          for (int r = 0; r < Rd; ++r) vt[(i * N + n) * Rd + r] = v[(n * I + i) * Rd + r];
        }
    });
  const int64_t vs = major ? Rd : I * Rd, fs = major ? 1 : I;  // strides from one sample to the next
  auto vi = [&](int64_t i) { return major ? vt.data() + i * N * Rd : v + i * Rd; };
  auto fi = [&](int64_t i) { return major ? ft.data() + i * N : first + i; };
  if (!split_outputs) {
    forward_columns<T, R>(vi, fi, vs, fs, coef, scale, y, N, I, O, K, Rd, 0, O, true);
    return;
  }
  const int64_t step = (W + 15) / 16 * 16;
  at::parallel_for(0, (O + step - 1) / step, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c)
      forward_columns<T, R>(vi, fi, vs, fs, coef, scale, y, N, I, O, K, Rd, c * step, std::min(O, (c + 1) * step),
                            false);
  });
}

// One input's share of the backward pass, with w the feature's unscaled slab rows and sc its scales:
// d[r] = sum_o g[o] * sc[o] * w[r, o] (need_v);  acc[r, o] += v[r] * g[o] (need_w).
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

// The weight-gradient share of samples q = 0..cnt-1 that all start at the same knot interval (a run of the
// feature's sorted list): acc[r, o] += v_q[r] * g[n_q, o], in sample order, with the k + 1 accumulator rows
// held in registers across the run, a chunk of outputs at a time (the per-sample version stores every row
// after every sample: a store-bound loop).  Samples whose values are all zero are skipped, as there.
// One chunk of W outputs from o0 (W = CH for whole chunks: a compile-time width keeps `a` in registers).
template <typename T, int R, int64_t CH, bool kWhole>
inline void accumulate_chunk(const T* __restrict g, const int32_t* __restrict smp, const T* __restrict vals,
                             int64_t cnt, T* __restrict acc, int64_t O, int64_t o0, int64_t w_tail) {
  const int64_t W = kWhole ? CH : w_tail;
  T a[R][CH];
  for (int r = 0; r < R; ++r)
#pragma omp simd
    for (int64_t o = 0; o < W; ++o) a[r][o] = acc[r * O + o0 + o];
  for (int64_t q = 0; q < cnt; ++q) {
    const T* vq = vals + q * R;
    bool any = false;
    for (int r = 0; r < R; ++r) any |= (vq[r] != T(0));
    if (!any) continue;
    const T* __restrict gr = g + (int64_t)smp[q] * O + o0;
    for (int r = 0; r < R; ++r) {
      const T c = vq[r];
#pragma omp simd
      for (int64_t o = 0; o < W; ++o) a[r][o] += c * gr[o];
    }
  }
  for (int r = 0; r < R; ++r)
#pragma omp simd
    for (int64_t o = 0; o < W; ++o) acc[r * O + o0 + o] = a[r][o];
}

template <typename T, int R>
inline void accumulate_run(const T* __restrict g, const int32_t* __restrict smp, const T* __restrict vals,
                           int64_t cnt, T* __restrict acc, int64_t O) {
  constexpr int64_t CH = 256 / sizeof(T);  // 4 vector registers per row (AVX-512)
  int64_t o0 = 0;
  for (; o0 + CH <= O; o0 += CH) accumulate_chunk<T, R, CH, true>(g, smp, vals, cnt, acc, O, o0, CH);
  if (o0 < O) accumulate_chunk<T, R, CH, false>(g, smp, vals, cnt, acc, O, o0, O - o0);
}

// Group [i0, i1)'s gradient accumulators acc (rows (i - i0) * K + j, O columns; sum_n v * g) written out:
//   gcoef[o, i, j] = scale[o, i] * acc[(i - i0) * K + j, o],  gscale[o, i] = sum_j coef[o, i, j] * acc[.., o].
// Blocks of 8 destination rows o are written as contiguous runs (8 x 8 register transposes for float) while
// the coefficients are read at the same positions, so neither needs a transposed copy.  With coef null the
// scale gradient is left alone (the caller has it from the transposed slabs, see slab_dots).
template <typename T>
void store_gradients(const T* acc, const T* coef, const T* scale, T* gcoef, T* gscale, int64_t i0, int64_t i1,
                     int64_t I, int64_t K, int64_t O) {
  const int64_t gi = i1 - i0, W = gi * K, IK = I * K;
  std::vector<T> dot(static_cast<size_t>(8 * gi));
  for (int64_t o0 = 0; o0 < O; o0 += 8) {
    const int64_t rows = std::min<int64_t>(8, O - o0);
    std::fill(dot.begin(), dot.end(), T(0));
    auto scalar = [&](int64_t b, int64_t c) {
      const int64_t o = o0 + b, f = c / K, at = o * IK + i0 * K + c;
      const T val = acc[c * O + o];
      if (coef) dot[b * gi + f] += val * coef[at];
      gcoef[at] = val * scale[o * I + i0 + f];
    };
    int64_t c0 = 0;
#if defined(__AVX__)
    if constexpr (std::is_same_v<T, float>) {
      if (rows == 8) {
        __m256 part[8];
        int64_t cur = -1;
        auto flush = [&]() {
          if (cur < 0) return;
          for (int b = 0; b < 8; ++b) {
            alignas(32) float lanes[8];
            _mm256_store_ps(lanes, part[b]);
            float sum = 0;
            for (int l = 0; l < 8; ++l) sum += lanes[l];
            dot[b * gi + cur] += sum;
          }
        };
        const bool ahead = o0 + 16 <= O;
        for (; c0 + 8 <= W; c0 += 8) {
          if (ahead && c0 % 16 == 0)  // the next row block's lines of coef and gcoef, one block ahead
            for (int a = 0; a < 8; ++a) {
              if (coef) __builtin_prefetch(coef + (o0 + 8 + a) * IK + i0 * K + c0);
              __builtin_prefetch(gcoef + (o0 + 8 + a) * IK + i0 * K + c0, 1);
            }
          const int64_t f = c0 / K;
          if ((c0 + 7) / K != f) {  // the tile straddles two features
            for (int b = 0; b < 8; ++b)
              for (int64_t c = c0; c < c0 + 8; ++c) scalar(b, c);
            continue;
          }
          if (f != cur) {
            flush();
            cur = f;
            for (int b = 0; b < 8; ++b) part[b] = _mm256_setzero_ps();
          }
          __m256 x[8];
          for (int a = 0; a < 8; ++a) x[a] = _mm256_loadu_ps(acc + (c0 + a) * O + o0);
          transpose8(x);
          for (int b = 0; b < 8; ++b) {
            const int64_t at = (o0 + b) * IK + i0 * K + c0;
            if (coef) part[b] = _mm256_fmadd_ps(x[b], _mm256_loadu_ps(coef + at), part[b]);
            _mm256_storeu_ps(gcoef + at, _mm256_mul_ps(x[b], _mm256_set1_ps(scale[(o0 + b) * I + i0 + f])));
          }
        }
        flush();
      }
    }
#endif
    for (int64_t b = 0; b < rows; ++b)
      for (int64_t c = c0; c < W; ++c) scalar(b, c);
    if (coef)
      for (int64_t b = 0; b < rows; ++b)
        for (int64_t f = 0; f < gi; ++f) gscale[(o0 + b) * I + i0 + f] = dot[b * gi + f];
  }
}

// gscale[o, i] = sum_j w[j, o] * acc[j, o] from feature i's transposed weight slab w and accumulator acc (K, O).
template <typename T>
void slab_dots(const T* __restrict acc, const T* __restrict w, int64_t i, int64_t I, int64_t K, int64_t O,
               T* gscale, T* __restrict tmp) {
#pragma omp simd
  for (int64_t o = 0; o < O; ++o) tmp[o] = T(0);
  for (int64_t j = 0; j < K; ++j) {
#pragma omp simd
    for (int64_t o = 0; o < O; ++o) tmp[o] += w[j * O + o] * acc[j * O + o];
  }
  for (int64_t o = 0; o < O; ++o) gscale[o * I + i] = tmp[o];
}

template <typename T, int R>
void local_backward_impl(const T* g, const T* v, const int64_t* first, const T* coef, const T* scale, T* gv,
                         T* gcoef, T* gscale, int64_t N, int64_t I, int64_t O, int64_t K, int Rd, bool need_v,
                         bool need_w, const FeatureLists<T>* given) {
  const FeatureLists<T> lists = given ? *given : feature_lists<T>(v, first, N, I, K, Rd);
  // weight gradients only, float with AVX-512: accumulate_window writes every accumulator row itself
  bool windows = false;
#if defined(KANLAB_WINDOW_SWEEPS)
  windows = std::is_same_v<T, float> && R > 0 && !need_v;
#endif
  const int64_t slab = K * O;
  const int64_t gi = std::max<int64_t>(1, std::min<int64_t>(I, kBackGroupBytes / (slab * (int64_t)sizeof(T))));
  const int64_t n_groups = (I + gi - 1) / gi;
  at::parallel_for(0, n_groups, 1, [&](int64_t gb, int64_t ge) {
    std::vector<T> w_buf(need_v ? gi * slab : 0), acc_buf(need_w ? gi * slab : 0), srow(O), tmp(O);
    T d[kMaxR];
    for (int64_t grp = gb; grp < ge; ++grp) {
      const int64_t i0 = grp * gi, i1 = std::min(I, i0 + gi);
      if (need_v) load_group<T>(coef, i0, i1, I, K, O, w_buf.data(), false);  // only g_v reads the slabs
      if (need_w && !windows) std::fill(acc_buf.begin(), acc_buf.end(), T(0));
      for (int64_t i = i0; i < i1; ++i) {
        const T* wi = need_v ? w_buf.data() + (i - i0) * slab : nullptr;
        T* acc = need_w ? acc_buf.data() + (i - i0) * slab : nullptr;
        for (int64_t o = 0; o < O; ++o) srow[o] = scale[o * I + i];
        const int32_t* smp = lists.sample + i * N;
        const int32_t* st = lists.start + i * N;
        const T* vals = lists.values + i * N * Rd;
#if defined(KANLAB_WINDOW_SWEEPS)
        if constexpr (std::is_same_v<T, float> && R > 0) {
          if (windows) {
            for (int64_t o0 = 0; o0 < O; o0 += 64)
              accumulate_window<R>(g, smp, st, vals, N, acc, O, K, o0, ChunkMask(o0, O));
            continue;
          }
        }
#endif
        if constexpr (R > 0) {
          if (!need_v) {  // weight gradients only: runs of samples sharing a window, rows kept in registers
            for (int64_t s = 0; s < N;) {
              int64_t e = s + 1;
              while (e < N && st[e] == st[s]) ++e;
              accumulate_run<T, R>(g, smp + s, vals + s * R, e - s, acc + (int64_t)st[s] * O, O);
              s = e;
            }
            continue;
          }
        }
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
          backward_rows<T, R>(g + n * O, srow.data(), need_v ? wi + off : nullptr, need_w ? acc + off : nullptr,
                              vr, d, O, Rd, need_v, need_w);
          if (need_v) {
            T* out = gv + (n * I + i) * Rd;
            for (int r = 0; r < Rd; ++r) out[r] = d[r];
          }
        }
        if (need_w && need_v) slab_dots<T>(acc, wi, i, I, K, O, gscale, tmp.data());
      }
      // with the slabs at hand (need_v) the scale gradient came from them; else from coef, read in place
      if (need_w) store_gradients<T>(acc_buf.data(), need_v ? nullptr : coef, scale, gcoef, gscale, i0, i1, I, K, O);
    }
  });
}

// coef (out, in, K) and scale (out, in) for the inputs `x` (v or x: (N, in, ...), named `name`): shapes, one
// dtype, CPU tensors, a batch the kernels' int32 sample indices can hold.
void check_weights(const at::Tensor& coef, const at::Tensor& scale, const at::Tensor& x, const char* name) {
  TORCH_CHECK(coef.dim() == 3 && coef.size(1) == x.size(1), "coef must be (out, in, K) with in = ", x.size(1),
              ", got ", coef.sizes());
  TORCH_CHECK(scale.dim() == 2 && scale.size(0) == coef.size(0) && scale.size(1) == coef.size(1),
              "scale must be (out, in)");
  TORCH_CHECK(x.scalar_type() == coef.scalar_type() && scale.scalar_type() == coef.scalar_type(), name,
              ", coef and scale must share a dtype");
  TORCH_CHECK(x.device().is_cpu() && coef.device().is_cpu() && scale.device().is_cpu(),
              "kanlab_cpp kernels run on CPU tensors");
  TORCH_CHECK(x.size(0) < (int64_t(1) << 31), "batch too large for the local kernel (>= 2^31 rows)");
}

void check_local(const at::Tensor& v, const at::Tensor& first, const at::Tensor& coef, const at::Tensor& scale) {
  TORCH_CHECK(v.dim() == 3, "v must be (N, in, k+1), got ", v.sizes());
  TORCH_CHECK(v.size(2) >= 1 && v.size(2) <= kMaxR, "v's last dimension (k+1) must lie in [1, ", kMaxR, "]");
  TORCH_CHECK(first.dim() == 2 && first.size(0) == v.size(0) && first.size(1) == v.size(1) &&
                  first.scalar_type() == at::kLong, "first must be int64 (N, in)");
  TORCH_CHECK(coef.dim() == 3 && coef.size(2) >= v.size(2), "coef must be (out, in, K) with K >= k+1, got ",
              coef.sizes());
  check_weights(coef, scale, v, "v");
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

// local_forward, and with keep_lists also the per-feature sorted lists (a byte tensor) for local_backward_lists.
std::tuple<at::Tensor, at::Tensor> forward_op(const at::Tensor& v_, const at::Tensor& first_, const at::Tensor& coef_,
                                              const at::Tensor& scale_, bool keep_lists) {
  check_local(v_, first_, coef_, scale_);
  const at::Tensor v = v_.contiguous(), first = first_.contiguous(), coef = coef_.contiguous(),
                   scale = scale_.contiguous();
  const int64_t N = v.size(0), I = v.size(1), R = v.size(2), O = coef.size(0), K = coef.size(2);
  at::Tensor y = at::zeros({N, O}, v.options());
  at::Tensor lists_buf = at::empty({0}, v.options().dtype(at::kByte));  // N = 0: the empty lists
  if (N == 0) return {y, lists_buf};
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "local_forward", [&] {
    FeatureLists<scalar_t> lists;
    if (keep_lists) {
      lists = feature_lists<scalar_t>(v.const_data_ptr<scalar_t>(), first.const_data_ptr<int64_t>(), N, I, K, R);
      lists_buf = lists.buf;
    }
    with_order(R, [&](auto tag) {
      constexpr int RR = decltype(tag)::value;
      local_forward_impl<scalar_t, RR>(v.const_data_ptr<scalar_t>(), first.const_data_ptr<int64_t>(),
                                       coef.const_data_ptr<scalar_t>(), scale.const_data_ptr<scalar_t>(),
                                       y.mutable_data_ptr<scalar_t>(), N, I, O, K, (int)R,
                                       keep_lists ? &lists : nullptr);
    });
  });
  return {y, lists_buf};
}

at::Tensor local_forward(const at::Tensor& v, const at::Tensor& first, const at::Tensor& coef,
                         const at::Tensor& scale) {
  return std::get<0>(forward_op(v, first, coef, scale, false));
}

// The forward of a training step: also returns the per-feature sorted lists, so that local_backward_lists need
// not sort again (and the forward sweeps them, faster than its tiles once sorted).
std::tuple<at::Tensor, at::Tensor> local_forward_lists(const at::Tensor& v, const at::Tensor& first,
                                                       const at::Tensor& coef, const at::Tensor& scale) {
  return forward_op(v, first, coef, scale, true);
}

// The forward of a training step straight from the inputs x (N, I) on knot rows grid (I, M): on uniform rows with
// the sorted sweep the lists are built without v and first (feature_lists_from_inputs), otherwise from
// bspline_local's values (which the tiles read too); then
// as local_forward_lists (which returns the same y and lists for bspline_local(x, grid, order, 0)).
std::tuple<at::Tensor, at::Tensor> local_forward_inputs(const at::Tensor& x_, const at::Tensor& grid_, int64_t order,
                                                        const at::Tensor& coef_, const at::Tensor& scale_) {
  check_grid(x_, grid_, order);
  const int64_t M = grid_.size(1), K = M - order - 1, R = order + 1;
  TORCH_CHECK(coef_.dim() == 3 && coef_.size(2) == K, "coef must be (out, in, K) with K = ", K,
              " for these knot rows, got ", coef_.sizes());
  check_weights(coef_, scale_, x_, "x");
  const at::Tensor x = x_.contiguous(), grid = grid_.contiguous(), coef = coef_.contiguous(),
                   scale = scale_.contiguous();
  const int64_t N = x.size(0), I = x.size(1), O = coef.size(0);
  at::Tensor y = at::zeros({N, O}, x.options());
  at::Tensor lists_buf = at::empty({0}, x.options().dtype(at::kByte));
  if (N == 0) return {y, lists_buf};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "local_forward_inputs", [&] {
    const scalar_t* gp = grid.const_data_ptr<scalar_t>();
    std::vector<int32_t> no_tables;
    const std::vector<Row<scalar_t>> rows = describe_rows(gp, I, M, no_tables, false, I);
    bool uniform = true;
    std::vector<scalar_t> inv_h(I);
    for (int64_t i = 0; i < I; ++i) {
      uniform = uniform && rows[i].uniform;
      inv_h[i] = rows[i].inv_h;
    }
    // the sorted sweep reads only the lists; the tiles (double, no AVX-512, long windows) also need v and first
    bool sweeps = false;
#if defined(KANLAB_WINDOW_SWEEPS)
    sweeps = std::is_same_v<scalar_t, float> && R <= 6;
#endif
    at::Tensor v, first;
    FeatureLists<scalar_t> lists;
    if (uniform && sweeps) {
      lists = feature_lists_from_inputs<scalar_t>(x.const_data_ptr<scalar_t>(), gp, inv_h.data(), N, I, M,
                                                  (int)order);
    } else {  // v and first are needed anyway: sort them
      std::tie(v, first) = evaluate_local(x, grid, order, 0);
      lists = feature_lists<scalar_t>(v.const_data_ptr<scalar_t>(), first.const_data_ptr<int64_t>(), N, I, K, R);
    }
    lists_buf = lists.buf;
    with_order(R, [&](auto tag) {
      constexpr int RR = decltype(tag)::value;
      local_forward_impl<scalar_t, RR>(v.defined() ? v.const_data_ptr<scalar_t>() : nullptr,
                                       first.defined() ? first.const_data_ptr<int64_t>() : nullptr,
                                       coef.const_data_ptr<scalar_t>(), scale.const_data_ptr<scalar_t>(),
                                       y.mutable_data_ptr<scalar_t>(), N, I, O, K, (int)R, &lists);
    });
  });
  return {y, lists_buf};
}

// The backward from v and first, or (v null) from lists; R = k + 1.
std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_op(const at::Tensor& g_, const at::Tensor* v_,
                                                           const at::Tensor* first_, const at::Tensor* lists,
                                                           const at::Tensor& coef_, const at::Tensor& scale_, int64_t R,
                                                           bool need_v, bool need_w) {
  const at::Tensor g = g_.contiguous(), coef = coef_.contiguous(), scale = scale_.contiguous();
  const at::Tensor v = v_ ? v_->contiguous() : at::Tensor(), first = v_ ? first_->contiguous() : at::Tensor();
  const int64_t N = g.size(0), I = coef.size(1), O = coef.size(0), K = coef.size(2);
  const auto opts = g.options();
  const bool work_w = need_w && N > 0;
  // outputs that are not needed are empty (0,) tensors
  at::Tensor gv = need_v ? at::zeros({N, I, R}, opts) : at::empty({0}, opts);
  at::Tensor gcoef = !need_w ? at::empty({0}, opts) : work_w ? pooled_empty({O, I, K}, opts) : at::zeros({O, I, K}, opts);
  at::Tensor gscale = !need_w ? at::empty({0}, opts) : work_w ? at::empty({O, I}, opts) : at::zeros({O, I}, opts);
  if ((need_v || need_w) && N > 0) {
    AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "local_backward", [&] {
      FeatureLists<scalar_t> given;
      if (lists) given = view_lists<scalar_t>(*lists, N, I, R);
      with_order(R, [&](auto tag) {
        constexpr int RR = decltype(tag)::value;
        local_backward_impl<scalar_t, RR>(
            g.const_data_ptr<scalar_t>(), v_ ? v.const_data_ptr<scalar_t>() : nullptr,
            v_ ? first.const_data_ptr<int64_t>() : nullptr, coef.const_data_ptr<scalar_t>(),
            scale.const_data_ptr<scalar_t>(), gv.mutable_data_ptr<scalar_t>(), gcoef.mutable_data_ptr<scalar_t>(),
            gscale.mutable_data_ptr<scalar_t>(), N, I, O, K, (int)R, need_v, need_w, lists ? &given : nullptr);
      });
    });
  }
  return {gv, gcoef, gscale};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> local_backward(const at::Tensor& g, const at::Tensor& v,
                                                              const at::Tensor& first, const at::Tensor& coef,
                                                              const at::Tensor& scale, bool need_v, bool need_w) {
  check_local(v, first, coef, scale);
  TORCH_CHECK(g.dim() == 2 && g.size(0) == v.size(0) && g.size(1) == coef.size(0), "grad must be (N, out)");
  TORCH_CHECK(g.scalar_type() == v.scalar_type(), "grad must have the dtype of v");
  return backward_op(g, &v, &first, nullptr, coef, scale, v.size(2), need_v, need_w);
}

// local_backward from the lists local_forward_lists returned (v and first are not needed); R = k + 1.
std::tuple<at::Tensor, at::Tensor, at::Tensor> local_backward_lists(const at::Tensor& g, const at::Tensor& lists,
                                                                    const at::Tensor& coef, const at::Tensor& scale,
                                                                    int64_t R, bool need_v, bool need_w) {
  TORCH_CHECK(R >= 1 && R <= kMaxR, "R (k+1) must lie in [1, ", kMaxR, "]");
  TORCH_CHECK(coef.dim() == 3 && coef.size(2) >= R, "coef must be (out, in, K) with K >= k+1, got ", coef.sizes());
  TORCH_CHECK(scale.dim() == 2 && scale.size(0) == coef.size(0) && scale.size(1) == coef.size(1) &&
                  scale.scalar_type() == coef.scalar_type(), "scale must be (out, in) with coef's dtype");
  TORCH_CHECK(g.dim() == 2 && g.size(1) == coef.size(0) && g.scalar_type() == coef.scalar_type(),
              "grad must be (N, out) with coef's dtype");
  TORCH_CHECK(g.device().is_cpu() && coef.device().is_cpu(), "kanlab_cpp kernels run on CPU tensors");
  return backward_op(g, nullptr, nullptr, &lists, coef, scale, R, need_v, need_w);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(kanlab_cpp, m) {
  m.def("local_forward(Tensor v, Tensor first, Tensor coef, Tensor scale) -> Tensor");
  m.def("local_backward(Tensor grad, Tensor v, Tensor first, Tensor coef, Tensor scale, bool need_v, "
        "bool need_w) -> (Tensor, Tensor, Tensor)");
  m.def("local_forward_lists(Tensor v, Tensor first, Tensor coef, Tensor scale) -> (Tensor, Tensor)");
  m.def("local_forward_inputs(Tensor x, Tensor grid, int order, Tensor coef, Tensor scale) -> (Tensor, Tensor)");
  m.def("local_backward_lists(Tensor grad, Tensor lists, Tensor coef, Tensor scale, int R, bool need_v, "
        "bool need_w) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(kanlab_cpp, CPU, m) {
  m.impl("local_forward", &local_forward);
  m.impl("local_backward", &local_backward);
  m.impl("local_forward_lists", &local_forward_lists);
  m.impl("local_forward_inputs", &local_forward_inputs);
  m.impl("local_backward_lists", &local_backward_lists);
}
