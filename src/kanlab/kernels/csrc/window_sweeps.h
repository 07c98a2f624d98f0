// kanlab CPU kernels: sweeps of one feature's sorted sample list (feature_lists.h) with the k + 1 rows of its
// window held in registers (float, AVX-512), for the local contraction of kan_local.cpp.
//
// In list order consecutive samples share their window or move it up by a row or a few, so the rows stay in
// registers while the window slides: a slab row is loaded, or an accumulator row stored, once per position
// instead of once per sample.  Each sweep covers a chunk of up to 64 outputs (4 vector registers per row);
// `mask[c]` selects the valid lanes of its c-th 16 (a partial last chunk).  Samples whose values are all zero
// are skipped, as in the other kernels.
#pragma once

#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#define KANLAB_WINDOW_SWEEPS 1

namespace {

struct ChunkMask {
  __mmask16 m[4];
  // the lanes of outputs [o0, o0 + 64) that lie below O
  ChunkMask(int64_t o0, int64_t O) {
    for (int c = 0; c < 4; ++c) {
      const int64_t left = O - o0 - 16 * c;
      m[c] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1u);
    }
  }
};

inline bool any_nonzero(const float* v, int R) {
  bool any = false;
  for (int r = 0; r < R; ++r) any |= (v[r] != 0.f);
  return any;
}

// The list visits samples in knot-interval order, so the rows it reads or updates (y in the forward, g in the
// weight gradient) come in random order: the chunk of the sample kAhead entries ahead is prefetched.  (Measured
// at 256 -> 256, batch 1024: forward -7% at G = 5 and -11% at G = 200 on one thread, -12 to -17% on two; 8 ahead
// beat 16.)
constexpr int64_t kAhead = 8;

inline void prefetch_chunk(const float* row) {
  const char* p = reinterpret_cast<const char*>(row);
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) _mm_prefetch(p + 64 * c, _MM_HINT_T0);  // 64 floats: four cache lines
}

// Forward of one feature: y[smp[q], o0 + o] += sum_r vals[q, r] * sl[(st[q] + r) * W + c0 + o] for the chunk's
// outputs, in list order; y rows are O wide, the slab's W (its columns c0.. map to outputs o0..).  The sum for
// each (sample, output) is accumulated in the order of axpy_rows (kan_local.cpp): y + v0 w0 + v1 w1 + ...
template <int R>
inline void forward_window(const float* __restrict sl, int64_t W, int64_t c0, const int32_t* __restrict smp,
                           const int32_t* __restrict st, const float* __restrict vals, int64_t N, float* __restrict y,
                           int64_t O, int64_t o0, const ChunkMask& mk) {
  __m512 w[R][4];
  int64_t b = -1;  // the window holds slab rows [b, b + R) (none yet)
  for (int64_t q = 0; q < N; ++q) {
    const float* vq = vals + q * R;
    if (!any_nonzero(vq, R)) continue;
    const int64_t f = st[q];
    if (f != b) {
      if (b >= 0 && f > b && f - b < R) {
        for (int64_t s = b; s < f; ++s) {  // slide up by one row
#pragma GCC unroll 8
          for (int r = 0; r + 1 < R; ++r)
#pragma GCC unroll 4
            for (int c = 0; c < 4; ++c) w[r][c] = w[r + 1][c];
#pragma GCC unroll 4
          for (int c = 0; c < 4; ++c) w[R - 1][c] = _mm512_maskz_loadu_ps(mk.m[c], sl + (s + R) * W + c0 + 16 * c);
        }
      } else {
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
          for (int c = 0; c < 4; ++c) w[r][c] = _mm512_maskz_loadu_ps(mk.m[c], sl + (f + r) * W + c0 + 16 * c);
      }
      b = f;
    }
    if (q + kAhead < N) prefetch_chunk(y + (int64_t)smp[q + kAhead] * O + o0);
    float* __restrict yr = y + (int64_t)smp[q] * O + o0;
    __m512 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) acc[c] = _mm512_maskz_loadu_ps(mk.m[c], yr + 16 * c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 cr = _mm512_set1_ps(vq[r]);
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) acc[c] = _mm512_fmadd_ps(cr, w[r][c], acc[c]);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) _mm512_mask_storeu_ps(yr + 16 * c, mk.m[c], acc[c]);
  }
}

// Weight-gradient accumulators of one feature for the chunk's outputs, every row of acc (K rows, O wide) written:
//   acc[j, o0 + o] = sum over list entries q with st[q] <= j < st[q] + R of vals[q, j - st[q]] * g[smp[q], o0 + o],
// in list order (the same sums, in the same order, as accumulating into zeroed rows sample by sample).  A row
// is stored when it leaves the window; rows no sample reaches are stored as zeros, so acc needs no zero fill.
template <int R>
inline void accumulate_window(const float* __restrict g, const int32_t* __restrict smp, const int32_t* __restrict st,
                              const float* __restrict vals, int64_t N, float* __restrict acc, int64_t O, int64_t K,
                              int64_t o0, const ChunkMask& mk) {
  __m512 a[R][4];
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) a[r][c] = zero;
  int64_t b = 0;  // the window holds rows [b, b + R); rows below b are written
  for (int64_t q = 0; q < N; ++q) {
    const float* vq = vals + q * R;
    if (!any_nonzero(vq, R)) continue;
    const int64_t f = st[q];
    if (f != b) {
      if (f - b >= R) {
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
          for (int c = 0; c < 4; ++c) {
            _mm512_mask_storeu_ps(acc + (b + r) * O + o0 + 16 * c, mk.m[c], a[r][c]);
            a[r][c] = zero;
          }
        for (int64_t j = b + R; j < f; ++j)
#pragma GCC unroll 4
          for (int c = 0; c < 4; ++c) _mm512_mask_storeu_ps(acc + j * O + o0 + 16 * c, mk.m[c], zero);
      } else {
        for (int64_t s = b; s < f; ++s) {  // slide up by one row
#pragma GCC unroll 4
          for (int c = 0; c < 4; ++c) _mm512_mask_storeu_ps(acc + s * O + o0 + 16 * c, mk.m[c], a[0][c]);
#pragma GCC unroll 8
          for (int r = 0; r + 1 < R; ++r)
#pragma GCC unroll 4
            for (int c = 0; c < 4; ++c) a[r][c] = a[r + 1][c];
#pragma GCC unroll 4
          for (int c = 0; c < 4; ++c) a[R - 1][c] = zero;
        }
      }
      b = f;
    }
    if (q + kAhead < N) prefetch_chunk(g + (int64_t)smp[q + kAhead] * O + o0);
    const float* __restrict gr = g + (int64_t)smp[q] * O + o0;
    __m512 gv[4];
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) gv[c] = _mm512_maskz_loadu_ps(mk.m[c], gr + 16 * c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 cr = _mm512_set1_ps(vq[r]);
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) a[r][c] = _mm512_fmadd_ps(cr, gv[c], a[r][c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) _mm512_mask_storeu_ps(acc + (b + r) * O + o0 + 16 * c, mk.m[c], a[r][c]);
  for (int64_t j = b + R; j < K; ++j)
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) _mm512_mask_storeu_ps(acc + j * O + o0 + 16 * c, mk.m[c], zero);
}

}  // namespace
#endif
