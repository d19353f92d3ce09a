// Roofline probes for benchmarks/selective_scan.py: the single-core rate of the fused selective scan's two
// operations, its vector exp and a multiply-add, with the data in L1 (no memory traffic). A program of its own, not
// part of the extension: it includes the kernel's vector math (src/mlreads/mamba/csrc/simd.h) and is built with the
// kernel's flags, so it times the same code the kernel runs. Prints one JSON line:
//   {"exp_per_s": ..., "fma_per_s": ..., "float_lanes": FW}   (best of three runs each)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "simd.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double probe_exp(int64_t reps) {  // vectorised exps per second (the kernel's own exp)
  using P = Pack<float, FW>;
  std::vector<float> x(1024);
  for (int i = 0; i < 1024; ++i) x[i] = -0.001f * i;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t r = 0; r < reps; ++r)
    for (int i = 0; i < 1024; i += FW) P::store(x.data() + i, P::splat(-0.5f) * P::exp(P::load(x.data() + i)));
  const double s = seconds_since(t0);
  volatile float sink = x[7];
  (void)sink;
  return 1024.0 * reps / s;
}

double probe_fma(int64_t reps) {  // fused multiply-adds per second: 16 independent chains of FW floats
  using V = Pack<float, FW>::V;
  V acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = Pack<float, FW>::splat(0.001f * j);
  const V m = Pack<float, FW>::splat(0.999f), c = Pack<float, FW>::splat(1e-4f);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t r = 0; r < reps; ++r)
    for (int j = 0; j < 16; ++j) acc[j] = acc[j] * m + c;
  const double s = seconds_since(t0);
  float total = 0;
  for (int j = 0; j < 16; ++j) total += Pack<float, FW>::sum(acc[j]);
  volatile float sink = total;
  (void)sink;
  return 16.0 * FW * reps / s;
}

}  // namespace

int main() {
  double exp_rate = 0, fma_rate = 0;
  for (int i = 0; i < 3; ++i) {
    exp_rate = std::max(exp_rate, probe_exp(20000));
    fma_rate = std::max(fma_rate, probe_fma(20000000));
  }
  std::printf("{\"exp_per_s\": %.6g, \"fma_per_s\": %.6g, \"float_lanes\": %d}\n", exp_rate, fma_rate, FW);
  return 0;
}
