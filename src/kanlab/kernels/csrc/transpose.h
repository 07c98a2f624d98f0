// kanlab CPU kernels: blocked 8 x 8 transposes (AVX registers for float) used by the local contraction to move
// coefficients between their (O, I, K) layout and per-feature K x O slabs.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace {

// 8 x 8 float transpose in AVX registers: x[b][a] <- x[a][b].
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
inline void tile8(const T* s, int64_t ss, T* d, int64_t ds) {
#if defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) {
    __m256 x[8];
    for (int a = 0; a < 8; ++a) x[a] = _mm256_loadu_ps(s + a * ss);
    transpose8(x);
    for (int b = 0; b < 8; ++b) _mm256_storeu_ps(d + b * ds, x[b]);
    return;
  }
#endif
  for (int b = 0; b < 8; ++b)
    for (int a = 0; a < 8; ++a) d[b * ds + a] = s[a * ss + b];
}

// dst[c * ds + r] = src[r * ss + c] for r < rows, c < cols, by 8 x 8 tiles, walking blocks of 8 source rows
// (each read as contiguous runs, the next block prefetched): a source in memory, a destination in cache.
template <typename T>
void transpose(const T* src, int64_t ss, T* dst, int64_t ds, int64_t rows, int64_t cols) {
  constexpr int64_t kLine = 64 / sizeof(T);
  const int64_t R8 = rows & ~int64_t(7), C8 = cols & ~int64_t(7);
  for (int64_t r0 = 0; r0 < R8; r0 += 8) {
    const bool ahead = r0 + 8 < R8;
    for (int64_t c0 = 0; c0 < C8; c0 += 8) {
      if (ahead && c0 % kLine == 0)
        for (int a = 0; a < 8; ++a) __builtin_prefetch(src + (r0 + 8 + a) * ss + c0);
      tile8<T>(src + r0 * ss + c0, ss, dst + c0 * ds + r0, ds);
    }
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = C8; c < cols; ++c) dst[c * ds + r] = src[r * ss + c];
  for (int64_t r = R8; r < rows; ++r)
    for (int64_t c = 0; c < C8; ++c) dst[c * ds + r] = src[r * ss + c];
}

// Feature group [i0, i1) of coef (O, I, K) transposed into slabs (one K x O slab per feature, stacked), the
// source rows split between threads when parallel.
template <typename T>
void load_group(const T* coef, int64_t i0, int64_t i1, int64_t I, int64_t K, int64_t O, T* slabs, bool parallel) {
  const int64_t cols = (i1 - i0) * K;
  if (!parallel) {
    transpose<T>(coef + i0 * K, I * K, slabs, O, O, cols);
    return;
  }
  at::parallel_for(0, (O + 7) / 8, 1, [&](int64_t b, int64_t e) {
    const int64_t o0 = b * 8, o1 = std::min(O, e * 8);
    transpose<T>(coef + o0 * I * K + i0 * K, I * K, slabs + o0, O, o1 - o0, cols);
  });
}

}  // namespace
