// kanlab CPU kernels: per-feature lists of the samples in order of their knot interval, for the local contraction.
//
// For every feature i the N samples sorted by first[n, i] (a counting sort, O(N + K) per feature, stable), packed
// for sequential reading: sample[i * N + s], start[i * N + s] and values[(i * N + s) * R + r].  Consecutive
// entries then touch the same k + 1 rows of the feature's weight slab or gradient accumulator (see
// window_sweeps.h and kan_local.cpp).  feature_lists sorts given v and first; on uniform knot rows
// feature_lists_from_inputs builds the same lists straight from the inputs, evaluating each feature's basis
// values in list order.  The three arrays share one uninitialised byte buffer (pooled when large,
// see buffer_pool.h) that can be handed to Python and back: local_forward_lists sorts once per training step and
// local_backward_lists reuses the lists.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "bspline_eval.h"
#include "buffer_pool.h"
#include "transpose.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

template <typename T>
struct FeatureLists {
  at::Tensor buf;  // the bytes: values (N * I * R of T), then sample and start (N * I int32 each)
  int32_t* sample = nullptr;
  int32_t* start = nullptr;
  T* values = nullptr;
};

inline int64_t feature_lists_bytes(int64_t N, int64_t I, int64_t R, int64_t itemsize) {
  return N * I * (R * itemsize + 2 * (int64_t)sizeof(int32_t));
}

// The three arrays inside buf (a 1-D contiguous byte tensor of feature_lists_bytes).
template <typename T>
FeatureLists<T> view_lists(const at::Tensor& buf, int64_t N, int64_t I, int64_t R) {
  TORCH_CHECK(buf.scalar_type() == at::kByte && buf.dim() == 1 && buf.is_contiguous() && buf.device().is_cpu() &&
                  buf.numel() == feature_lists_bytes(N, I, R, sizeof(T)),
              "lists must be the byte buffer local_forward_lists returned for these shapes and dtype");
  FeatureLists<T> out;
  out.buf = buf;
  uint8_t* base = static_cast<uint8_t*>(buf.data_ptr());
  const int64_t vbytes = N * I * R * (int64_t)sizeof(T), ibytes = N * I * (int64_t)sizeof(int32_t);
  out.values = reinterpret_cast<T*>(base);
  out.sample = reinterpret_cast<int32_t*>(base + vbytes);
  out.start = reinterpret_cast<int32_t*>(base + vbytes + ibytes);
  return out;
}

// Sorts v (N, I, R) / first (N, I) into lists.  Features are sorted 16 at a time (threads take whole blocks), so
// the write fronts of the block's lists stay in cache; one block per thread of 256 features was 2x slower.
template <typename T>
FeatureLists<T> feature_lists(const T* v, const int64_t* first, int64_t N, int64_t I, int64_t K, int64_t R) {
  FeatureLists<T> out = view_lists<T>(
      pooled_empty({feature_lists_bytes(N, I, R, sizeof(T))}, at::TensorOptions().dtype(at::kByte)), N, I, R);
  constexpr int64_t kBlock = 16;
  at::parallel_for(0, (I + kBlock - 1) / kBlock, 1, [&](int64_t bb, int64_t be) {
    std::vector<int32_t> pos(static_cast<size_t>(kBlock * (K + 1)));
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t ib = blk * kBlock, w = std::min(I, ib + kBlock) - ib;
      std::fill(pos.begin(), pos.end(), 0);
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
    }
  });
  return out;
}

// The lists of feature_lists(bspline_local(x)) (the same bytes) straight from x (N, I) on uniform knot rows g
// (I, M) (every row uniform, see describe_rows; inv_h[i] its reciprocal spacing), order k.  Per block of 16
// features x's columns are copied out; per feature the knot intervals, a stable counting sort by first index,
// then the basis values evaluated in list order, so neither v nor first is materialised.
template <typename T>
FeatureLists<T> feature_lists_from_inputs(const T* x, const T* g, const T* inv_h, int64_t N, int64_t I, int64_t M,
                                          int k) {
  const int64_t R = k + 1, K = M - k - 1, S = K - R + 1;  // S: the possible first indices
  FeatureLists<T> out = view_lists<T>(
      pooled_empty({feature_lists_bytes(N, I, R, sizeof(T))}, at::TensorOptions().dtype(at::kByte)), N, I, R);
  constexpr int64_t kBlock = 16;
  at::parallel_for(0, (I + kBlock - 1) / kBlock, 1, [&](int64_t bb, int64_t be) {
    std::vector<T> xt(static_cast<size_t>(kBlock * N)), u(N), keep(N), su(N), skeep(N), work(R * N);
    std::vector<int32_t> jw(N), sjw(N), key(N), pos(S + 1);
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t ib = blk * kBlock, w = std::min(I, ib + kBlock) - ib;
      transpose<T>(x + ib, I, xt.data(), N, N, w);  // xt[c * N + n] = x[n, ib + c]
      for (int64_t c = 0; c < w; ++c) {
        const int64_t i = ib + c;
        const T* t = g + i * M;
        const T lo = t[0], hi = t[M - 1], ih = inv_h[i];
        uniform_intervals<T, true>(xt.data() + c * N, t, &lo, &hi, &ih, N, M, k, 0, u.data(), keep.data(),
                                   jw.data(), key.data());
        std::fill(pos.begin(), pos.end(), 0);
        for (int64_t n = 0; n < N; ++n) ++pos[key[n] + 1];
        for (int64_t f = 1; f <= S; ++f) pos[f] += pos[f - 1];
        int32_t* smp = out.sample + i * N;
        int32_t* st = out.start + i * N;
        for (int64_t n = 0; n < N; ++n) {
          const int32_t q = pos[key[n]]++;
          smp[q] = (int32_t)n;
          st[q] = key[n];
          su[q] = u[n];
          skeep[q] = keep[n];
          sjw[q] = jw[n];
        }
        uniform_pieces<T>(su.data(), skeep.data(), sjw.data(), nullptr, N, k, 0, work.data(), out.values + i * N * R);
      }
    }
  });
  return out;
}

}  // namespace
