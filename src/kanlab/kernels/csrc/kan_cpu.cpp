// kanlab CPU kernels: local-support B-spline evaluation and the dense path's weight packing (the local KAN
// contraction is in kan_local.cpp).
//
// Built on first use by kanlab/kernels/extension.py with torch.utils.cpp_extension (JIT, cached outside the
// source tree) and registered as torch.ops.kanlab_cpp.*; kanlab/kernels/ops.py wraps these in
// torch.library.custom_op ops with autograd and fake (meta) implementations.  Pure-PyTorch equivalents live in
// kanlab/kernels/torch_impl.py and define the semantics tested here.
//
// Notation: x (N, I) inputs; grid (I, M) one knot row per feature, M = G + 2k + 1; K = M - k - 1 basis
// functions; R = k + 1 local values per input; v (N, I, R) local values; first (N, I) int64 index of the first.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "bspline_eval.h"
#include "buffer_pool.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <type_traits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

std::tuple<at::Tensor, at::Tensor> bspline_local(const at::Tensor& x_, const at::Tensor& grid_, int64_t order,
                                                 int64_t deriv) {
  check_grid(x_, grid_, order);
  TORCH_CHECK(deriv >= 0, "deriv must be >= 0");
  return evaluate_local(x_.contiguous(), grid_.contiguous(), order, deriv);
}

// Rows of the dense operand: row q (C = K + [act] entries) is zero except loc[q, 0..R) at fst[q] and, when
// `act` is given, act[q] in column K.
template <typename T>
void write_dense_rows(const T* __restrict loc, const int64_t* __restrict fst, const T* __restrict act, int64_t Q,
                      int64_t R, int64_t K, T* __restrict out) {
  const int64_t C = K + (act != nullptr ? 1 : 0);
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (C <= 16) {  // one masked 16-lane permute and store per row
      const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
      const __mmask16 window = (__mmask16)((1u << R) - 1u), row_mask = (__mmask16)((1u << C) - 1u);
      const __mmask16 act_lane = act != nullptr ? (__mmask16)(1u << K) : (__mmask16)0;
      const __m512i act_index = _mm512_set1_epi32((int)R);
      for (int64_t q = 0; q < Q; ++q) {
        __m512 src = _mm512_maskz_loadu_ps(window, loc + q * R);
        if (act != nullptr) src = _mm512_mask_broadcastss_ps(src, (__mmask16)(1u << R), _mm_set_ss(act[q]));
        const int f = (int)fst[q];
        __m512i idx = _mm512_sub_epi32(iota, _mm512_set1_epi32(f));
        idx = _mm512_mask_mov_epi32(idx, act_lane, act_index);
        const __mmask16 keep = (__mmask16)(((1u << R) - 1u) << f) | act_lane;
        _mm512_mask_storeu_ps(out + q * C, row_mask, _mm512_maskz_permutexvar_ps(keep, idx, src));
      }
      return;
    }
  }
#endif
  std::memset(out, 0, sizeof(T) * Q * C);
  for (int64_t q = 0; q < Q; ++q) {
    T* row = out + q * C + fst[q];
    const T* l = loc + q * R;
    for (int64_t r = 0; r < R; ++r) row[r] = l[r];
  }
  if (act != nullptr)
    for (int64_t q = 0; q < Q; ++q) out[q * C + K] = act[q];
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
  at::Tensor out = pooled_empty({N, I, C}, x.options());  // every entry is written below
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bspline_dense", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = grid.const_data_ptr<scalar_t>();
    const scalar_t* ap = has_act ? act.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const RowEvaluator<scalar_t> eval(gp, I, M, (int)order, 0, N);
    const int64_t R = order + 1;
    at::parallel_for(0, N, std::max<int64_t>(1, 4096 / I), [&](int64_t b, int64_t e) {
      std::vector<scalar_t> loc(eval.I * R);
      std::vector<int64_t> fst(eval.I);
      std::vector<scalar_t> work((order + 3) * eval.I);
      std::vector<int32_t> jw(2 * eval.I);
      for (int64_t n0 = b; n0 < e; n0 += eval.block) {
        const int64_t cnt = std::min(eval.block, e - n0);
        eval(xp + n0 * I, loc.data(), fst.data(), work.data(), jw.data(), cnt);
        write_dense_rows<scalar_t>(loc.data(), fst.data(), has_act ? ap + n0 * I : nullptr, cnt * I, R, K,
                                   op + n0 * I * C);
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
    const RowEvaluator<scalar_t> eval(gp, I, M, (int)order, 1, N);
    const int64_t R = order + 1;
    at::parallel_for(0, N, std::max<int64_t>(1, 4096 / I), [&](int64_t b, int64_t e) {
      std::vector<scalar_t> loc(eval.I * R);
      std::vector<int64_t> fst(eval.I);
      std::vector<scalar_t> work((order + 3) * eval.I);
      std::vector<int32_t> jw(2 * eval.I);
      for (int64_t n0 = b; n0 < e; n0 += eval.block) {
        const int64_t cnt = std::min(eval.block, e - n0);
        eval(xp + n0 * I, loc.data(), fst.data(), work.data(), jw.data(), cnt);
        for (int64_t q = 0; q < cnt * I; ++q) {
          const scalar_t* row = dp + (n0 * I + q) * C + fst[q];
          const scalar_t* l = loc.data() + q * R;
          scalar_t acc = 0;
          for (int64_t r = 0; r < R; ++r) acc += row[r] * l[r];
          op[n0 * I + q] = acc;
        }
      }
    });
  });
  return gx;
}

// The dense path's packed weight W (O, I, K + 1): W[o, i, j] = coef[o, i, j] * scale[o, i] for j < K and
// W[o, i, K] = base[o, i], in one pass (instead of a product and a concatenation).
at::Tensor pack_weight(const at::Tensor& coef_, const at::Tensor& scale_, const at::Tensor& base_) {
  TORCH_CHECK(coef_.dim() == 3 && scale_.sizes() == coef_.sizes().slice(0, 2) &&
                  base_.sizes() == coef_.sizes().slice(0, 2), "pack_weight: coef (O, I, K), scale and base (O, I)");
  TORCH_CHECK(scale_.scalar_type() == coef_.scalar_type() && base_.scalar_type() == coef_.scalar_type(),
              "pack_weight: coef, scale and base must share a dtype");
  const at::Tensor coef = coef_.contiguous(), scale = scale_.contiguous(), base = base_.contiguous();
  const int64_t P = coef.size(0) * coef.size(1), K = coef.size(2);
  at::Tensor w = pooled_empty({coef.size(0), coef.size(1), K + 1}, coef.options());  // every entry written
  AT_DISPATCH_FLOATING_TYPES(coef.scalar_type(), "pack_weight", [&] {
    const scalar_t* c = coef.const_data_ptr<scalar_t>();
    const scalar_t* s = scale.const_data_ptr<scalar_t>();
    const scalar_t* b = base.const_data_ptr<scalar_t>();
    scalar_t* out = w.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, P, std::max<int64_t>(1, 32768 / (K + 1)), [&](int64_t pb, int64_t pe) {
      for (int64_t p = pb; p < pe; ++p) {
        const scalar_t sp = s[p];
        for (int64_t j = 0; j < K; ++j) out[p * (K + 1) + j] = c[p * K + j] * sp;
        out[p * (K + 1) + K] = b[p];
      }
    });
  });
  return w;
}

// Gradients of pack_weight for gw (O, I, K + 1): g_coef = gw[..., :K] * scale, g_scale = sum_j gw * coef,
// g_base = gw[..., K].
std::tuple<at::Tensor, at::Tensor, at::Tensor> pack_weight_backward(const at::Tensor& gw_, const at::Tensor& coef_,
                                                                    const at::Tensor& scale_) {
  const at::Tensor gw = gw_.contiguous(), coef = coef_.contiguous(), scale = scale_.contiguous();
  const int64_t P = coef.size(0) * coef.size(1), K = coef.size(2);
  TORCH_CHECK(gw.numel() == P * (K + 1) && gw.scalar_type() == coef.scalar_type(), "pack_weight_backward: gw");
  at::Tensor gc = pooled_empty(coef.sizes(), coef.options()), gs = at::empty_like(scale),
             gb = at::empty_like(scale);  // every entry written
  AT_DISPATCH_FLOATING_TYPES(coef.scalar_type(), "pack_weight_backward", [&] {
    const scalar_t* g = gw.const_data_ptr<scalar_t>();
    const scalar_t* c = coef.const_data_ptr<scalar_t>();
    const scalar_t* s = scale.const_data_ptr<scalar_t>();
    scalar_t* oc = gc.mutable_data_ptr<scalar_t>();
    scalar_t* os = gs.mutable_data_ptr<scalar_t>();
    scalar_t* ob = gb.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, P, std::max<int64_t>(1, 32768 / (K + 1)), [&](int64_t pb, int64_t pe) {
      for (int64_t p = pb; p < pe; ++p) {
        const scalar_t sp = s[p];
        const scalar_t* gp = g + p * (K + 1);
        scalar_t dot = 0;
        for (int64_t j = 0; j < K; ++j) {
          oc[p * K + j] = gp[j] * sp;
          dot += gp[j] * c[p * K + j];
        }
        os[p] = dot;
        ob[p] = gp[K];
      }
    });
  });
  return {gc, gs, gb};
}

}  // namespace

TORCH_LIBRARY(kanlab_cpp, m) {
  m.def("bspline_local(Tensor x, Tensor grid, int order, int deriv) -> (Tensor, Tensor)");
  m.def("bspline_dense(Tensor x, Tensor? act, Tensor grid, int order) -> Tensor");
  m.def("bspline_dense_backward(Tensor grad, Tensor x, Tensor grid, int order) -> Tensor");
  m.def("pack_weight(Tensor coef, Tensor scale, Tensor base) -> Tensor");
  m.def("pack_weight_backward(Tensor gw, Tensor coef, Tensor scale) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(kanlab_cpp, CPU, m) {
  m.impl("bspline_local", &bspline_local);
  m.impl("bspline_dense", &bspline_dense);
  m.impl("bspline_dense_backward", &bspline_dense_backward);
  m.impl("pack_weight", &pack_weight);
  m.impl("pack_weight_backward", &pack_weight_backward);
}
