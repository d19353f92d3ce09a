// The causal depthwise conv1d + SiLU of the Mamba block (Figure 3: the conv before the SSM), forward and backward,
// fused: out_t = silu(bias + Σ_k w_k x_{t-K+1+k}), with x_{-K+1..-1} from `prev` (the conv state of a continued
// sequence; zeros without). Included by selective_scan.cpp (one translation unit, one build).
//
// Why it exists: torch runs this as a zero-pad concatenation, an mkldnn depthwise conv and a separate SiLU, and the
// conv's backward (mkldnn's depthwise weight gradient) was 8-10% of a quick recipe's training step on its own, more
// than the conv's arithmetic (4 multiply-adds per element) justifies. Here each (b, e) row is one pass over L,
// vectorised along time; the backward recomputes the pre-activation instead of storing it.
//
// Layouts: x (B, E, L) with any strides (read a tile of channels at a time); w (E, K) contiguous; bias (E,) or empty;
// prev (B, E, K - 1) contiguous or empty; dout, and the results out and dx, (B, E, L) contiguous. Accumulation in
// float (double for double); the weight's gradient sums over rows with one buffer per worker, summed at the end, so
// the result does not depend on scheduling (as the scan's).
#pragma once

#include <torch/extension.h>

#include <vector>

#include "simd.h"

namespace {

// A view (B, E, L) with any strides, read a tile of up to kTile channels of one batch row at a time, in the order of
// its memory: step-major when channels are adjacent (a (B, L, E) tensor seen transposed: each step's kTile values
// are one 64-byte line, where a row-by-row gather would touch a new line for every value), else row by row.
constexpr int64_t kTile = 16;
template <typename T>
struct View3 {
  T* p;
  int64_t sb, se, sl;
  explicit View3(const at::Tensor& t)  // an empty tensor is "absent": a null view
      : p(t.numel() ? const_cast<T*>(t.data_ptr<T>()) : nullptr), sb(p ? t.stride(0) : 0), se(p ? t.stride(1) : 0),
        sl(p ? t.stride(2) : 0) {}
  T& at(int64_t b, int64_t e, int64_t l) const { return p[b * sb + e * se + l * sl]; }
};

template <typename scalar_t>
struct ConvIO {
  int64_t batch, dim, len, K, tiles;
  View3<scalar_t> x;
  const scalar_t *wp, *bp, *prevp;
  ConvIO(const at::Tensor& xv, const at::Tensor& w, const at::Tensor& bias, const at::Tensor& prev)
      : batch(xv.size(0)), dim(xv.size(1)), len(xv.size(2)), K(w.size(1)), tiles((dim + kTile - 1) / kTile), x(xv),
        wp(w.data_ptr<scalar_t>()), bp(opt_ptr<scalar_t>(bias)), prevp(opt_ptr<scalar_t>(prev)) {}
  // tile i: batch row b, channels e0 .. e0 + n - 1
  void tile(int64_t i, int64_t& b, int64_t& e0, int64_t& n) const {
    b = i / tiles;
    e0 = (i % tiles) * kTile;
    n = std::min(kTile, dim - e0);
  }
  // the tile's inputs with their left context, [x_{-K+1}, ..., x_{L-1}] of channel e0 + j at xe + j * (L + K - 1)
  template <typename acc_t>
  void load_tile(int64_t b, int64_t e0, int64_t n, acc_t* xe) const {
    const int64_t ext = len + K - 1;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < K - 1; ++k)
        xe[j * ext + k] = prevp ? static_cast<acc_t>(prevp[((b * dim) + e0 + j) * (K - 1) + k]) : acc_t(0);
    if (x.se == 1 || x.sl != 1)
      for (int64_t t = 0; t < len; ++t)
        for (int64_t j = 0; j < n; ++j) xe[j * ext + K - 1 + t] = static_cast<acc_t>(x.at(b, e0 + j, t));
    else
      for (int64_t j = 0; j < n; ++j)
        for (int64_t t = 0; t < len; ++t) xe[j * ext + K - 1 + t] = static_cast<acc_t>(x.at(b, e0 + j, t));
  }
  // channel e's weights into wk; returns its bias
  template <typename acc_t>
  acc_t load_weights(int64_t e, acc_t* wk) const {
    for (int64_t k = 0; k < K; ++k) wk[k] = static_cast<acc_t>(wp[e * K + k]);
    return bp ? static_cast<acc_t>(bp[e]) : acc_t(0);
  }
};

// bias + Σ_k w_k xe_{t+k}, the pre-activation at steps t..t+width (width of the pack Q)
template <typename Q, typename acc_t>
SS_INLINE typename Q::V conv_pre(const acc_t* xe, const acc_t* wk, int64_t K, acc_t bias, int64_t t) {
  auto s = Q::splat(bias);
  for (int64_t k = 0; k < K; ++k) s += Q::splat(wk[k]) * Q::load(xe + t + k);
  return s;
}

// Σ_t a_t b_t over n values, W lanes at a time
template <typename acc_t, int W>
acc_t row_dot(const acc_t* a, const acc_t* b, int64_t n) {
  typename Pack<acc_t, W>::V acc = Pack<acc_t, W>::splat(0);
  acc_t tail = 0;
  over_steps<acc_t, W>(n, [&](auto p, int64_t t) {
    using Q = decltype(p);
    if constexpr (std::is_same<Q, Pack<acc_t, W>>::value)
      acc += Q::load(a + t) * Q::load(b + t);
    else
      tail += Q::sum(Q::load(a + t) * Q::load(b + t));
  });
  return Pack<acc_t, W>::sum(acc) + tail;
}

// out = silu(conv(x)) (B, E, L) contiguous
template <typename scalar_t, typename acc_t, int W>
void conv_fwd_impl(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, const at::Tensor& prev,
                   at::Tensor& out) {
  const ConvIO<scalar_t> io(x, w, bias, prev);
  const int64_t K = io.K, ext = io.len + K - 1, n_tiles = io.batch * io.tiles;
  scalar_t* op = out.data_ptr<scalar_t>();
  for_parts(n_tiles, n_parts(n_tiles), [&](int64_t, int64_t ib, int64_t ie) {
    std::vector<acc_t> xe(kTile * ext), wk(K);
    for (int64_t i = ib; i < ie; ++i) {
      int64_t b, e0, n;
      io.tile(i, b, e0, n);
      io.load_tile(b, e0, n, xe.data());
      for (int64_t j = 0; j < n; ++j) {
        const acc_t be = io.load_weights(e0 + j, wk.data());
        const acc_t* xr = xe.data() + j * ext;
        scalar_t* o = op + (b * io.dim + e0 + j) * io.len;
        over_steps<acc_t, W>(io.len, [&](auto p, int64_t t) {
          using Q = decltype(p);
          const auto s = conv_pre<Q>(xr, wk.data(), K, be, t);
          Q::store_as(o + t, s * Q::sigmoid(s));
        });
      }
    }
  });
}

// dpre = dout silu'(pre); dx_t = Σ_k w_k dpre_{t+K-1-k} (and the same for the left context, dprev); dw_k = Σ_t dpre_t
// xe_{t+k}; dbias = Σ_t dpre_t.
template <typename scalar_t, typename acc_t, int W>
void conv_bwd_impl(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, const at::Tensor& prev,
                   const at::Tensor& dout, at::Tensor& dx, at::Tensor& dprev, at::Tensor& dw_parts,
                   at::Tensor& db_parts) {
  const ConvIO<scalar_t> io(x, w, bias, prev);
  const int64_t K = io.K, len = io.len, ext = len + K - 1, n_tiles = io.batch * io.tiles;
  const scalar_t* gp = dout.data_ptr<scalar_t>();
  scalar_t* dxp = dx.data_ptr<scalar_t>();
  scalar_t* dprevp = dprev.numel() ? dprev.data_ptr<scalar_t>() : nullptr;
  acc_t *dw0 = dw_parts.data_ptr<acc_t>(), *db0 = db_parts.data_ptr<acc_t>();
  for_parts(n_tiles, dw_parts.size(0), [&](int64_t part, int64_t ib, int64_t ie) {
    acc_t *dw = dw0 + part * io.dim * K, *db = db0 + part * io.dim;
    // dp: dpre with K - 1 zeros on each side, so that every tap of the transposed conv reads inside it
    std::vector<acc_t> xe(kTile * ext), wk(K), dp(len + 2 * (K - 1), acc_t(0)), ones(len, acc_t(1));
    for (int64_t i = ib; i < ie; ++i) {
      int64_t b, e0, n;
      io.tile(i, b, e0, n);
      io.load_tile(b, e0, n, xe.data());
      for (int64_t j = 0; j < n; ++j) {
        const int64_t e = e0 + j, row = b * io.dim + e;
        const acc_t be = io.load_weights(e, wk.data());
        const acc_t* xr = xe.data() + j * ext;
        const scalar_t* g = gp + row * len;
        acc_t* dpre = dp.data() + K - 1;
        over_steps<acc_t, W>(len, [&](auto p, int64_t t) {
          using Q = decltype(p);
          const auto s = conv_pre<Q>(xr, wk.data(), K, be, t);
          const auto sg = Q::sigmoid(s);
          Q::store(dpre + t, Q::load(g + t) * sg * (Q::splat(1) + s * (Q::splat(1) - sg)));
        });
        for (int64_t k = 0; k < K; ++k) dw[e * K + k] += row_dot<acc_t, W>(dpre, xr + k, len);
        db[e] += row_dot<acc_t, W>(dpre, ones.data(), len);
        // dxe_s = Σ_k w_k dpre_{s-k} over the extended input s in [0, L + K - 1): dprev is its first K - 1 values
        const auto dxe = [&](auto p, int64_t s) {
          using Q = decltype(p);
          auto v = Q::splat(0);
          for (int64_t k = 0; k < K; ++k) v += Q::splat(wk[k]) * Q::load(dp.data() + s + K - 1 - k);
          return v;
        };
        scalar_t* dxr = dxp + row * len;
        over_steps<acc_t, W>(len, [&](auto p, int64_t t) { decltype(p)::store_as(dxr + t, dxe(p, t + K - 1)); });
        if (dprevp)
          for (int64_t k = 0; k < K - 1; ++k)
            dprevp[row * (K - 1) + k] = static_cast<scalar_t>(dxe(Pack<acc_t, 1>(), k));
      }
    }
  });
}

// float32, float16, bfloat16 vectorised over time in float32 (FW lanes), float64 the scalar path
template <typename F>
void conv_dispatch(at::ScalarType dtype, const F& run) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "causal_conv1d_silu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    if constexpr (std::is_same<acc_t, float>::value)
      run(scalar_t(), acc_t(), std::integral_constant<int, FW>());
    else
      run(scalar_t(), acc_t(), std::integral_constant<int, 1>());
  });
}

void conv_check(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, const at::Tensor& prev) {
  TORCH_CHECK(x.dim() == 3, "causal_conv1d_silu: x must be (B, E, L)");
  TORCH_CHECK(w.dim() == 2 && w.is_contiguous() && w.size(0) == x.size(1) && w.scalar_type() == x.scalar_type(),
              "causal_conv1d_silu: w must be (E, K) contiguous, in x's dtype");
  TORCH_CHECK(!bias.numel() || (bias.is_contiguous() && bias.numel() == x.size(1) &&
                                bias.scalar_type() == x.scalar_type()), "causal_conv1d_silu: bias must be (E,)");
  TORCH_CHECK(!prev.numel() || (prev.is_contiguous() && prev.scalar_type() == x.scalar_type() &&
                                prev.size(0) == x.size(0) && prev.size(1) == x.size(1) &&
                                prev.size(2) == w.size(1) - 1), "causal_conv1d_silu: prev must be (B, E, K - 1)");
}

at::Tensor conv_fwd(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, const at::Tensor& prev) {
  conv_check(x, w, bias, prev);
  at::Tensor out = at::empty(x.sizes(), x.options());
  conv_dispatch(x.scalar_type(), [&](auto s, auto a, auto width) {
    conv_fwd_impl<decltype(s), decltype(a), decltype(width)::value>(x, w, bias, prev, out);
  });
  return out;
}

// [dx (B, E, L), dw (E, K), dbias (E,) (empty without a bias), dprev (B, E, K - 1) (empty without prev)]
std::vector<at::Tensor> conv_bwd(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias,
                                 const at::Tensor& prev, const at::Tensor& dout) {
  conv_check(x, w, bias, prev);
  TORCH_CHECK(dout.is_contiguous() && dout.sizes() == x.sizes(), "causal_conv1d_silu: dout must be x's shape");
  const int64_t parts = n_parts(x.size(0) * ((x.size(1) + kTile - 1) / kTile));
  auto acc_opts = x.options().dtype(at::toOpMathType(x.scalar_type()));
  at::Tensor dx = at::empty(x.sizes(), x.options()), dprev = at::empty_like(prev);
  at::Tensor dw = at::zeros({parts, w.size(0), w.size(1)}, acc_opts), db = at::zeros({parts, w.size(0)}, acc_opts);
  conv_dispatch(x.scalar_type(), [&](auto s, auto a, auto width) {
    conv_bwd_impl<decltype(s), decltype(a), decltype(width)::value>(x, w, bias, prev, dout, dx, dprev, dw, db);
  });
  at::Tensor dbias = bias.numel() ? db.sum(0).to(x.scalar_type()) : at::empty({0}, x.options());
  return {dx, dw.sum(0).to(x.scalar_type()), dbias, dprev};
}

}  // namespace
