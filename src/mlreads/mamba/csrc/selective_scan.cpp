// Fused CPU selective scan of Mamba (Gu & Dao 2023, arXiv 2312.00752, Section 3.3.2, Algorithm 2): forward and
// backward, each one pass over the (B, D) rows, the state axis N vectorised, states recomputed instead of stored.
//
//   h_t = exp(Δ_t A) h_{t-1} + Δ_t u_t B_t,  y_t = C_t h_t + D u_t,  out_t = y_t * silu(z_t),
//   Δ_t = softplus(delta_t + delta_bias) (or without softplus).
//
// The CPU analogue of the paper's hardware-aware scan: a row's state (N values) lives in registers and L1 for the
// whole sequence; only u, Δ, B, C, z, out (and their gradients) touch memory. Forward keeps the state entering every
// `chunk` steps (B, D, L/chunk, N); backward walks the chunks in reverse, recomputes a chunk's states (chunk x N, in
// L1) from its checkpoint, and runs the adjoint recurrence g_t = C_t dy_t + exp(Δ_{t+1} A) g_{t+1} through it.
//
// Layouts (the Python side prepares them): u, delta, z, out: (B, D, L) contiguous, scalar_t. B, C: time-varying
// (B, G, L, N) contiguous (channel d reads group d / (D / G)) or constant (D, N), scalar_t. A (D, N), D, delta_bias
// (D,), h0 (B, D, N): acc_t (float for float/half/bfloat16 inputs, double for double). An empty tensor is "absent".
// Gradients of A, B, C, D and delta_bias sum over rows: each worker accumulates into its own buffer, summed at the
// end, so the result does not depend on scheduling.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/OpMathType.h>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

// exp for float, vectorisable (Cephes expf: range reduction by ln 2, degree-6 polynomial; ~1 ulp on [-87, 88]).
static inline float fexp(float x) {
  x = std::fmin(std::fmax(x, -87.0f), 88.0f);
  float k = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float e = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return e * scale;
}
static inline double fexp(double x) { return std::exp(x); }

template <typename acc_t>
static inline acc_t softplus(acc_t x) { return x > acc_t(20) ? x : std::log1p(std::exp(x)); }
template <typename acc_t>
static inline acc_t sigmoid(acc_t x) { return acc_t(1) / (acc_t(1) + std::exp(-x)); }

// Where row (b, d) reads B or C: base offset and stride along t (0 for a constant (D, N) one).
struct BCView {
  bool constant;
  int64_t groups, len, n;
  int64_t base(int64_t b, int64_t d, int64_t dim) const {
    if (constant) return d * n;
    return ((b * groups) + d / (dim / groups)) * len * n;
  }
  int64_t tstride() const { return constant ? 0 : n; }
};

BCView view_of(const at::Tensor& X, int64_t len, int64_t n) {
  if (X.dim() == 2) return BCView{true, X.size(0), len, n};
  return BCView{false, X.size(1), len, n};
}

template <typename T>
const T* opt_ptr(const at::Tensor& t) { return t.numel() ? t.data_ptr<T>() : nullptr; }

// Split `rows` into `parts` contiguous ranges and run f(part, begin, end) on torch's thread pool.
template <typename F>
void for_parts(int64_t rows, int64_t parts, const F& f) {
  at::parallel_for(0, parts, 1, [&](int64_t pb, int64_t pe) {
    for (int64_t p = pb; p < pe; ++p) f(p, rows * p / parts, rows * (p + 1) / parts);
  });
}

int64_t n_parts(int64_t rows) { return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows)); }

template <typename scalar_t, typename acc_t>
void fwd_impl(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& Bm,
              const at::Tensor& Cm, const at::Tensor& Dv, const at::Tensor& z, const at::Tensor& bias,
              const at::Tensor& h0, bool softplus_on, int64_t chunk, at::Tensor& out, at::Tensor& last,
              at::Tensor& ckpt) {
  const int64_t batch = u.size(0), dim = u.size(1), len = u.size(2), N = A.size(1);
  const int64_t n_chunks = ckpt.numel() ? ckpt.size(2) : 0;
  const BCView bv = view_of(Bm, len, N), cv = view_of(Cm, len, N);
  const scalar_t *up = u.data_ptr<scalar_t>(), *dp = delta.data_ptr<scalar_t>(), *zp = opt_ptr<scalar_t>(z);
  const scalar_t *Bp = Bm.data_ptr<scalar_t>(), *Cp = Cm.data_ptr<scalar_t>();
  const acc_t *Ap = A.data_ptr<acc_t>(), *Dp = opt_ptr<acc_t>(Dv), *biasp = opt_ptr<acc_t>(bias);
  const acc_t* h0p = opt_ptr<acc_t>(h0);
  scalar_t* op = out.data_ptr<scalar_t>();
  acc_t *lastp = last.data_ptr<acc_t>(), *ckp = n_chunks ? ckpt.data_ptr<acc_t>() : nullptr;
  const int64_t rows = batch * dim;
  for_parts(rows, n_parts(rows), [&](int64_t, int64_t rb, int64_t re) {
    std::vector<acc_t> h(N), a_row(N);
    for (int64_t row = rb; row < re; ++row) {
      const int64_t b = row / dim, d = row % dim;
      const scalar_t *ur = up + row * len, *dr = dp + row * len, *zr = zp ? zp + row * len : nullptr;
      const scalar_t *Br = Bp + bv.base(b, d, dim), *Cr = Cp + cv.base(b, d, dim);
      const int64_t bs = bv.tstride(), cs = cv.tstride();
      const acc_t Dd = Dp ? Dp[d] : acc_t(0), bd = biasp ? biasp[d] : acc_t(0);
      scalar_t* orow = op + row * len;
      for (int64_t n = 0; n < N; ++n) {
        h[n] = h0p ? h0p[row * N + n] : acc_t(0);
        a_row[n] = Ap[d * N + n];
      }
      acc_t* hp = h.data();
      const acc_t* ap = a_row.data();
      for (int64_t t = 0; t < len; ++t) {
        if (ckp && t % chunk == 0) std::memcpy(ckp + (row * n_chunks + t / chunk) * N, hp, N * sizeof(acc_t));
        const acc_t raw = static_cast<acc_t>(dr[t]) + bd;
        const acc_t dt = softplus_on ? softplus(raw) : raw;
        const acc_t uu = static_cast<acc_t>(ur[t]), dtu = dt * uu;
        const scalar_t *Bt = Br + t * bs, *Ct = Cr + t * cs;
        acc_t y = 0;
#pragma omp simd reduction(+ : y)
        for (int64_t n = 0; n < N; ++n) {
          const acc_t hn = fexp(dt * ap[n]) * hp[n] + dtu * static_cast<acc_t>(Bt[n]);
          hp[n] = hn;
          y += hn * static_cast<acc_t>(Ct[n]);
        }
        y += Dd * uu;
        if (zr) {
          const acc_t zz = static_cast<acc_t>(zr[t]);
          y *= zz * sigmoid(zz);
        }
        orow[t] = static_cast<scalar_t>(y);
      }
      std::memcpy(lastp + row * N, hp, N * sizeof(acc_t));
    }
  });
}

template <typename scalar_t, typename acc_t>
void bwd_impl(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& Bm,
              const at::Tensor& Cm, const at::Tensor& Dv, const at::Tensor& z, const at::Tensor& bias,
              const at::Tensor& ckpt, const at::Tensor& dout, const at::Tensor& dlast, bool softplus_on,
              int64_t chunk, at::Tensor& du, at::Tensor& ddelta, at::Tensor& dz, at::Tensor& dh0,
              at::Tensor& dA_parts, at::Tensor& dB_parts, at::Tensor& dC_parts, at::Tensor& dD_parts,
              at::Tensor& dbias_parts) {
  const int64_t batch = u.size(0), dim = u.size(1), len = u.size(2), N = A.size(1);
  const int64_t n_chunks = ckpt.size(2);
  const BCView bv = view_of(Bm, len, N), cv = view_of(Cm, len, N);
  const scalar_t *up = u.data_ptr<scalar_t>(), *dp = delta.data_ptr<scalar_t>(), *zp = opt_ptr<scalar_t>(z);
  const scalar_t *Bp = Bm.data_ptr<scalar_t>(), *Cp = Cm.data_ptr<scalar_t>(), *gop = dout.data_ptr<scalar_t>();
  const acc_t *Ap = A.data_ptr<acc_t>(), *Dp = opt_ptr<acc_t>(Dv), *biasp = opt_ptr<acc_t>(bias);
  const acc_t *ckp = ckpt.data_ptr<acc_t>(), *dlp = opt_ptr<acc_t>(dlast);
  scalar_t *dup = du.data_ptr<scalar_t>(), *ddp = ddelta.data_ptr<scalar_t>();
  scalar_t* dzp = dz.numel() ? dz.data_ptr<scalar_t>() : nullptr;
  acc_t* dh0p = dh0.numel() ? dh0.data_ptr<acc_t>() : nullptr;
  const int64_t rows = batch * dim, parts = dA_parts.size(0);
  const int64_t sB = dB_parts.numel() / parts, sC = dC_parts.numel() / parts;
  for_parts(rows, parts, [&](int64_t part, int64_t rb, int64_t re) {
    acc_t* dA_buf = dA_parts.data_ptr<acc_t>() + part * dim * N;
    acc_t* dB_buf = dB_parts.data_ptr<acc_t>() + part * sB;
    acc_t* dC_buf = dC_parts.data_ptr<acc_t>() + part * sC;
    acc_t* dD_buf = dD_parts.data_ptr<acc_t>() + part * dim;
    acc_t* dbias_buf = dbias_parts.data_ptr<acc_t>() + part * dim;
    std::vector<acc_t> hbuf((chunk + 1) * N), abuf(chunk * N), dtbuf(chunk), ybuf(chunk), gc(N), a_row(N);
    for (int64_t row = rb; row < re; ++row) {
      const int64_t b = row / dim, d = row % dim;
      const scalar_t *ur = up + row * len, *dr = dp + row * len, *zr = zp ? zp + row * len : nullptr;
      const scalar_t* gor = gop + row * len;
      const int64_t bo = bv.base(b, d, dim), co = cv.base(b, d, dim), bs = bv.tstride(), cs = cv.tstride();
      const scalar_t *Br = Bp + bo, *Cr = Cp + co;
      acc_t *dBr = dB_buf + bo, *dCr = dC_buf + co, *dAr = dA_buf + d * N;
      const acc_t Dd = Dp ? Dp[d] : acc_t(0), bd = biasp ? biasp[d] : acc_t(0);
      acc_t dD_acc = 0, dbias_acc = 0;
      for (int64_t n = 0; n < N; ++n) {
        gc[n] = dlp ? dlp[row * N + n] : acc_t(0);
        a_row[n] = Ap[d * N + n];
      }
      acc_t *g = gc.data(), *hb = hbuf.data(), *ab = abuf.data();
      const acc_t* ap = a_row.data();
      for (int64_t c = n_chunks - 1; c >= 0; --c) {
        const int64_t s = c * chunk, e = std::min(s + chunk, len);
        // recompute the chunk: Δ, exp(ΔA), the states and y = C h
        std::memcpy(hb, ckp + (row * n_chunks + c) * N, N * sizeof(acc_t));
        for (int64_t t = s; t < e; ++t) {
          const int64_t k = t - s;
          const acc_t raw = static_cast<acc_t>(dr[t]) + bd;
          const acc_t dt = softplus_on ? softplus(raw) : raw;
          const acc_t dtu = dt * static_cast<acc_t>(ur[t]);
          const scalar_t *Bt = Br + t * bs, *Ct = Cr + t * cs;
          const acc_t* hprev = hb + k * N;
          acc_t *hcur = hb + (k + 1) * N, *ak = ab + k * N;
          acc_t y = 0;
#pragma omp simd reduction(+ : y)
          for (int64_t n = 0; n < N; ++n) {
            const acc_t a = fexp(dt * ap[n]);
            const acc_t hn = a * hprev[n] + dtu * static_cast<acc_t>(Bt[n]);
            ak[n] = a;
            hcur[n] = hn;
            y += hn * static_cast<acc_t>(Ct[n]);
          }
          dtbuf[k] = dt;
          ybuf[k] = y;
        }
        // the adjoint pass through the chunk, last step first
        for (int64_t t = e - 1; t >= s; --t) {
          const int64_t k = t - s;
          const acc_t dt = dtbuf[k], uu = static_cast<acc_t>(ur[t]), dtu = dt * uu;
          const acc_t go = static_cast<acc_t>(gor[t]);
          acc_t dy = go;
          if (zr) {
            const acc_t zz = static_cast<acc_t>(zr[t]), sz = sigmoid(zz);
            const acc_t pre = ybuf[k] + Dd * uu;  // the output before the gate
            dzp[row * len + t] = static_cast<scalar_t>(go * pre * sz * (acc_t(1) + zz * (acc_t(1) - sz)));
            dy = go * zz * sz;
          }
          dD_acc += dy * uu;
          const scalar_t *Bt = Br + t * bs, *Ct = Cr + t * cs;
          acc_t *dBt = dBr + t * bs, *dCt = dCr + t * cs;
          const acc_t *hprev = hb + k * N, *hcur = hb + (k + 1) * N, *ak = ab + k * N;
          acc_t sum_b = 0, sum_a = 0;
#pragma omp simd reduction(+ : sum_b, sum_a)
          for (int64_t n = 0; n < N; ++n) {
            const acc_t gn = dy * static_cast<acc_t>(Ct[n]) + g[n];  // dL/dh_t
            dCt[n] += dy * hcur[n];
            dBt[n] += gn * dtu;
            sum_b += gn * static_cast<acc_t>(Bt[n]);
            const acc_t x = gn * hprev[n] * ak[n];  // dL/d(Δ_t A_n)
            dAr[n] += x * dt;
            sum_a += x * ap[n];
            g[n] = ak[n] * gn;  // carried to step t - 1
          }
          const acc_t ddt = sum_a + sum_b * uu;
          dup[row * len + t] = static_cast<scalar_t>(dy * Dd + sum_b * dt);
          const acc_t raw = static_cast<acc_t>(dr[t]) + bd;
          const acc_t draw = softplus_on && raw <= acc_t(20) ? ddt * sigmoid(raw) : ddt;
          ddp[row * len + t] = static_cast<scalar_t>(draw);
          dbias_acc += draw;
        }
      }
      dD_buf[d] += dD_acc;
      dbias_buf[d] += dbias_acc;
      if (dh0p) std::memcpy(dh0p + row * N, g, N * sizeof(acc_t));
    }
  });
}

std::vector<at::Tensor> fwd(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B,
                            const at::Tensor& C, const at::Tensor& D, const at::Tensor& z, const at::Tensor& bias,
                            const at::Tensor& h0, bool softplus_on, int64_t chunk, bool save) {
  TORCH_CHECK(u.is_contiguous() && delta.is_contiguous() && B.is_contiguous() && C.is_contiguous() &&
                  (!z.numel() || z.is_contiguous()), "selective_scan fused: inputs must be contiguous");
  const int64_t batch = u.size(0), dim = u.size(1), len = u.size(2), N = A.size(1);
  auto acc_opts = u.options().dtype(at::toOpMathType(u.scalar_type()));
  at::Tensor out = at::empty_like(u), last = at::empty({batch, dim, N}, acc_opts);
  at::Tensor ckpt = save ? at::empty({batch, dim, (len + chunk - 1) / chunk, N}, acc_opts) : at::empty({0}, acc_opts);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, u.scalar_type(), "selective_scan_fwd", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    fwd_impl<scalar_t, acc_t>(u, delta, A, B, C, D, z, bias, h0, softplus_on, chunk, out, last, ckpt);
  });
  return {out, last, ckpt};
}

std::vector<at::Tensor> bwd(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B,
                            const at::Tensor& C, const at::Tensor& D, const at::Tensor& z, const at::Tensor& bias,
                            const at::Tensor& ckpt, const at::Tensor& dout, const at::Tensor& dlast, bool softplus_on,
                            int64_t chunk, bool want_dh0) {
  TORCH_CHECK(dout.is_contiguous(), "selective_scan fused: dout must be contiguous");
  const int64_t batch = u.size(0), dim = u.size(1), N = A.size(1);
  auto acc_opts = u.options().dtype(at::toOpMathType(u.scalar_type()));
  const int64_t parts = n_parts(batch * dim);
  at::Tensor du = at::empty_like(u), ddelta = at::empty_like(delta);
  at::Tensor dz = z.numel() ? at::empty_like(z) : at::empty({0}, u.options());
  at::Tensor dh0 = want_dh0 ? at::empty({batch, dim, N}, acc_opts) : at::empty({0}, acc_opts);
  std::vector<int64_t> b_shape{parts}, c_shape{parts};
  for (auto s : B.sizes()) b_shape.push_back(s);
  for (auto s : C.sizes()) c_shape.push_back(s);
  at::Tensor dA = at::zeros({parts, dim, N}, acc_opts), dB = at::zeros(b_shape, acc_opts);
  at::Tensor dC = at::zeros(c_shape, acc_opts), dD = at::zeros({parts, dim}, acc_opts);
  at::Tensor dbias = at::zeros({parts, dim}, acc_opts);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, u.scalar_type(), "selective_scan_bwd", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    bwd_impl<scalar_t, acc_t>(u, delta, A, B, C, D, z, bias, ckpt, dout, dlast, softplus_on, chunk, du, ddelta, dz,
                              dh0, dA, dB, dC, dD, dbias);
  });
  return {du, ddelta, dA.sum(0), dB.sum(0).to(B.scalar_type()), dC.sum(0).to(C.scalar_type()), dD.sum(0),
          dbias.sum(0), dz, dh0};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("fwd", &fwd, "fused selective scan, forward");
  m.def("bwd", &bwd, "fused selective scan, backward");
}
