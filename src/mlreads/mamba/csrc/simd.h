// Vector math of the fused selective scan (selective_scan.cpp): a float exp, softplus, sigmoid and horizontal sums
// over blocks of W state entries, as GCC/Clang vector types, with x86 intrinsics where the CPU has them (which ones,
// and the portable fallback, are listed in selective_scan.cpp's header). Kept apart from the kernel, which reads as
// the scan itself; needs no torch (the kernel instantiates Pack for its own element types), so that
// benchmarks/roofline_probe.cpp times this exp on its own without a probe compiled into the extension.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#ifdef __AVX__  // x86 intrinsics only where the build targets them: no such header on other CPUs
#include <immintrin.h>
#endif

namespace {  // the kernel's own unnamed namespace: the one translation unit that includes this

// exp for float, vectorisable (Cephes expf: range reduction by ln 2, degree-6 polynomial; ~1 ulp on [-87, 88]).
static inline float fexp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
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


// A block of W state entries as one value: a GCC vector of FW floats (one register, written explicitly so
// the compiler cannot fall back to scalar code), or a plain scalar (W = 1, the generic path for any N and double).
// With AVX-512 (built with -march=native on such a CPU) the block is 16 floats, one 512-bit register.
#ifdef __AVX512F__
constexpr int FW = 16;
#else
constexpr int FW = 8;
#endif
typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));
typedef float vf16 __attribute__((vector_size(64)));
typedef int32_t vi16 __attribute__((vector_size(64)));
typedef float vf4 __attribute__((vector_size(16)));
// Horizontal sums as trees of half-width adds (a lane-by-lane loop would be a chain of W dependent scalar adds).
static inline float hsum(vf8 v) {
  const vf4 a = __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
  return (a[0] + a[2]) + (a[1] + a[3]);
}
static inline float hsum(vf16 v) {
  return hsum(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
              __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
}
// Single instructions where the CPU has them (each is exact, so results do not change): max / min with the NaN
// behaviour of `x < c ? c : x` (the second operand is returned when either is NaN), e * 2^k for an integral k,
// and an approximate reciprocal (14 bits, refined by one Newton step to ~1 ulp) instead of a division.
#ifdef __AVX512F__
static inline vf16 vmax(vf16 c, vf16 x) { return (vf16)_mm512_max_ps((__m512)c, (__m512)x); }
static inline vf16 vmin(vf16 c, vf16 x) { return (vf16)_mm512_min_ps((__m512)c, (__m512)x); }
static inline vf16 vscale(vf16 e, vf16 k, vi16) { return (vf16)_mm512_scalef_ps((__m512)e, (__m512)k); }
static inline vf16 vrecip(vf16 y) {
  const vf16 r = (vf16)_mm512_rcp14_ps((__m512)y);
  return r * (2.0f - y * r);
}
#endif
#ifdef __AVX__
static inline vf8 vmax(vf8 c, vf8 x) { return (vf8)_mm256_max_ps((__m256)c, (__m256)x); }
static inline vf8 vmin(vf8 c, vf8 x) { return (vf8)_mm256_min_ps((__m256)c, (__m256)x); }
#else  // without AVX: the same operand order as maxps/minps (x when the comparison is false, so NaN passes through)
static inline vf8 vmax(vf8 c, vf8 x) { return c > x ? c : x; }
static inline vf8 vmin(vf8 c, vf8 x) { return c < x ? c : x; }
#endif
#if defined(__AVX512F__) && defined(__AVX512VL__)
static inline vf8 vscale(vf8 e, vf8 k, vi8) { return (vf8)_mm256_scalef_ps((__m256)e, (__m256)k); }
static inline vf8 vrecip(vf8 y) {
  const vf8 r = (vf8)_mm256_rcp14_ps((__m256)y);
  return r * (2.0f - y * r);
}
#else
static inline vf8 vscale(vf8 e, vf8, vi8 k) {  // 2^k built in the exponent bits
  const vi8 bits = (k + 127) << 23;
  return e * reinterpret_cast<const vf8&>(bits);
}
static inline vf8 vrecip(vf8 y) { return 1.0f / y; }
#endif
template <int W>
struct VecTypes;
template <>
struct VecTypes<8> {
  using F = vf8;
  using I = vi8;
};
template <>
struct VecTypes<16> {
  using F = vf16;
  using I = vi16;
};

template <typename acc_t, int W>
struct Pack;

template <typename acc_t>
struct Pack<acc_t, 1> {  // the scalar path
  using V = acc_t;
  static V splat(acc_t x) { return x; }
  template <typename T>
  static V load(const T* p) { return static_cast<acc_t>(*p); }
  static void store(acc_t* p, V v) { *p = v; }
  template <typename T>
  static void store_as(T* p, V v) { *p = static_cast<T>(v); }
  static V exp(V x) { return fexp(x); }
  static V softplus(V x) { return x > acc_t(20) ? x : std::log1p(std::exp(x)); }  // torch's, threshold 20
  static V sigmoid(V x) { return acc_t(1) / (acc_t(1) + std::exp(-x)); }
  static V dsoftplus(V x) { return x > acc_t(20) ? acc_t(1) : sigmoid(x); }
  static V softplus2(V x, V* sig) {
    if (sig) *sig = dsoftplus(x);
    return softplus(x);
  }
  static acc_t sum(V v) { return v; }
};

template <int W>
struct PackF {  // W = 8 or 16 lanes
  using V = typename VecTypes<W>::F;
  using vi = typename VecTypes<W>::I;
  static V splat(float x) { return V{} + x; }
  static V load(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  template <typename T>
  static V load(const T* p) {  // half, bfloat16: widen to float
    V v;
    for (int j = 0; j < W; ++j) v[j] = static_cast<float>(p[j]);
    return v;
  }
  static void store(float* p, V v) { std::memcpy(p, &v, sizeof(v)); }
  template <typename T>
  static void store_as(T* p, V v) {
    for (int j = 0; j < W; ++j) p[j] = static_cast<T>(v[j]);
  }
  static void store_as(float* p, V v) { store(p, v); }
  static V log(V x) {  // Cephes logf for normal positive x: x = m 2^e, m in [sqrt(1/2), sqrt(2)), polynomial in m - 1
    vi bits = reinterpret_cast<vi&>(x);
    V e = __builtin_convertvector(((bits >> 23) & 0xff) - 126, V);
    vi mbits = (bits & 0x807fffff) | 0x3f000000;  // mantissa in [0.5, 1)
    V m = reinterpret_cast<V&>(mbits);
    const auto small = m < splat(0.707106781186547524f);
    e = small ? e - splat(1.0f) : e;
    m = small ? m + m - splat(1.0f) : m - splat(1.0f);
    const V z = m * m;
    V y = splat(7.0376836292e-2f);
    y = y * m + splat(-1.1514610310e-1f);
    y = y * m + splat(1.1676998740e-1f);
    y = y * m + splat(-1.2420140846e-1f);
    y = y * m + splat(1.4249322787e-1f);
    y = y * m + splat(-1.6668057665e-1f);
    y = y * m + splat(2.0000714765e-1f);
    y = y * m + splat(-2.4999993993e-1f);
    y = y * m + splat(3.3333331174e-1f);
    y = y * m * z + e * splat(-2.12194440e-4f) - splat(0.5f) * z;
    return m + y + e * splat(0.693359375f);
  }
  // softplus(x) = x > 20 ? x : log1p(exp(x)), log1p accurate for tiny exp(x) (Goldberg's trick); with `sig`, also
  // its derivative x > 20 ? 1 : sigmoid(x) = exp(x) / (1 + exp(x)) from the same exp
  static V softplus2(V x, V* sig) {
    const V ex = exp(x > splat(20.0f) ? splat(20.0f) : x);
    const V u1 = splat(1.0f) + ex;
    const V den = u1 - splat(1.0f);
    const V l1p = den == splat(0.0f) ? ex : log(u1) * (ex * vrecip(den == splat(0.0f) ? splat(1.0f) : den));
    if (sig) *sig = x > splat(20.0f) ? splat(1.0f) : ex * vrecip(u1);
    return x > splat(20.0f) ? x : l1p;
  }
  static V softplus(V x) { return softplus2(x, nullptr); }
  static V sigmoid(V x) { return splat(1.0f) / (splat(1.0f) + exp(-x)); }
  static V dsoftplus(V x) { return x > splat(20.0f) ? splat(1.0f) : sigmoid(x); }
  // c0 x^n + c1 x^(n-1) + ... + cn by Horner's rule, one multiply-add per coefficient
  template <typename... Cs>
  static V horner(V x, float c0, Cs... cs) {
    V p = splat(c0);
    ((p = p * x + splat(cs)), ...);
    return p;
  }
  static V exp(V x) {  // fexp, lane by lane
    x = vmax(splat(-87.0f), x);
    x = vmin(splat(88.0f), x);
    const V magic = splat(12582912.0f);  // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer
    V k = (x * splat(1.44269504088896341f) + magic) - magic;
    V r = x - k * splat(0.693359375f) + k * splat(2.12194440e-4f);
    const V p = horner(r, 1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                       5.0000001201e-1f);
    V e = p * r * r + r + splat(1.0f);
    return vscale(e, k, __builtin_convertvector(k, vi));  // e 2^k, k in [-126, 127]
  }
  // 2^x (Cephes exp2f: x = k + f, k an integer, f in [-1/2, 1/2], 2^f by a degree-6 polynomial, ~1 ulp). The scan's
  // exp(Δ A) is exp2(Δ (A log2 e)) with A scaled once per row: the range reduction then needs neither exp's multiply
  // by log2 e nor its two-part subtraction of k ln 2, 3 of exp's 15 vector operations.
  static V exp2(V x) {
    x = vmax(splat(-126.0f), x);
    x = vmin(splat(126.0f), x);
    const V magic = splat(12582912.0f);  // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer
    const V k = (x + magic) - magic;
    const V f = x - k;
    const V p = horner(f, 1.535336188319500e-4f, 1.339887440266574e-3f, 9.618437357674640e-3f, 5.550332471162809e-2f,
                       2.402264791363012e-1f, 6.931472028550421e-1f);
    return vscale(p * f + splat(1.0f), k, __builtin_convertvector(k, vi));  // 2^f 2^k
  }
  static float sum(V v) { return hsum(v); }
};
constexpr float kLog2e = 1.44269504088896341f;
template <>
struct Pack<float, 8> : PackF<8> {};
template <>
struct Pack<float, 16> : PackF<16> {};

// Elementwise passes over a row's steps [0, n), W at a time (then one by one): the transcendental work per step
// (softplus, sigmoid) runs vectorised over time instead of once per step inside the sequential scan.
template <typename acc_t, int W, typename F>
void over_steps(int64_t n, const F& f) {
  int64_t t = 0;
  for (; t + W <= n; t += W) f(Pack<acc_t, W>(), t);
  for (; t < n; ++t) f(Pack<acc_t, 1>(), t);
}

}  // namespace
