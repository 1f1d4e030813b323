// The update of shift-based AdaMax (Algorithm 4 of Courbariaux et al. 2016) fused into one pass
// over a parameter tensor, for binarynet.training.optim.ShiftAdaMax on the CPU.
//
// For every element, with w = 1 − β₁ and the step s = AP2(α / (1 − β₁ᵗ)) computed by the caller:
//     g ← −g if maximize
//     m ← m + w·(g − m)      (torch.lerp: fma(w, g − m, m); for w ≥ ½ fma(w − 1, g − m, g))
//     u ← max(β₂·u, |g|)     (NaN propagates, as torch.maximum)
//     d ← AP2(max(u, ε))     (bit-exact: the carry trick of binarynet.training.quantize.ap2)
//     p ← p + (−s)·(m / d)   (torch.addcdiv_)
// The torch implementation makes about a dozen passes over memory for this (one per operation);
// the update is memory-bound, so one pass is several times faster. Each line rounds exactly as
// the torch operation it replaces, so the two implementations agree bit for bit (tested); with
// the default w = 2⁻³ and a power-of-two s, every product and quotient above is exact anyway.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "threadpool.h"

namespace binarynet {

struct ShiftAdaMaxStep {
  float one_minus_beta1;  // w
  float beta2;
  float eps;
  float neg_step;  // −s
  bool maximize;
};

// AP2 of a non-negative float32 (or NaN / inf) on its bit pattern: add 2²³ − f(√2) to the
// magnitude bits and keep the exponent field; unsigned arithmetic wraps as torch's int32 add does.
inline float ap2_positive_bits(float x) {
  constexpr std::uint32_t kSqrt2Fraction = 3474676u;
  constexpr std::uint32_t kCarry = (1u << 23) - kSqrt2Fraction;
  constexpr std::uint32_t kExponent = 0x7F800000u;
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits = (bits + kCarry) & kExponent;
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// kExactProduct: w·(g − m) is exact (w a power of two), so a multiply and an add round exactly
// as torch's fma does, and the loop vectorises on the baseline ISA (std::fma is a libm call there).
template <bool kExactProduct>
void shift_adamax_range(const ShiftAdaMaxStep& st, float* p, const float* grad, float* m, float* u,
                        std::size_t begin, std::size_t end) {
  const float w = st.one_minus_beta1;
  const bool low = std::fabs(w) < 0.5f;
  const float coeff = low ? w : w - 1.0f;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t i = begin; i < end; ++i) {
    const float g = st.maximize ? -grad[i] : grad[i];
    const float base = low ? m[i] : g;
    const float mi = kExactProduct ? base + coeff * (g - m[i]) : std::fma(coeff, g - m[i], base);
    m[i] = mi;
    const float scaled = u[i] * st.beta2;
    const float ag = std::fabs(g);
    const float ui = (std::isnan(scaled) || std::isnan(ag)) ? nan : (scaled < ag ? ag : scaled);
    u[i] = ui;
    const float d = ap2_positive_bits(ui < st.eps ? st.eps : ui);
    p[i] = p[i] + st.neg_step * (mi / d);
  }
}

// True when x is ±2^k (a normal float32), i.e. multiplying by it is exact barring over/underflow.
inline bool is_power_of_two(float x) {
  int exponent;
  return std::isnormal(x) && std::fabs(std::frexp(x, &exponent)) == 0.5f;
}

inline void shift_adamax_update(const ShiftAdaMaxStep& st, float* p, const float* grad, float* m,
                                float* u, std::size_t n, int threads) {
  constexpr std::size_t kChunk = std::size_t{1} << 16;
  const std::size_t chunks = (n + kChunk - 1) / kChunk;
  const float coeff =
      std::fabs(st.one_minus_beta1) < 0.5f ? st.one_minus_beta1 : st.one_minus_beta1 - 1.0f;
  const bool exact = is_power_of_two(coeff);
  parallel_for(chunks, threads, [&](std::size_t c) {
    const std::size_t begin = c * kChunk;
    const std::size_t end = begin + kChunk < n ? begin + kChunk : n;
    if (exact)
      shift_adamax_range<true>(st, p, grad, m, u, begin, end);
    else
      shift_adamax_range<false>(st, p, grad, m, u, begin, end);
  });
}

// sign(x) as float32 ±1 with sign(±0) = +1, for the training side's binarization of latent
// weights (binarynet.training.quantize): out = copysign(1, x + 0.0), as its torch fallback computes
// it (adding +0.0 turns −0.0 into +0.0; a NaN keeps its sign bit). One pass, parallel over chunks.
inline void sign_values(const float* x, float* out, std::size_t n, int threads) {
  constexpr std::size_t kChunk = std::size_t{1} << 16;
  parallel_for((n + kChunk - 1) / kChunk, threads, [&](std::size_t c) {
    const std::size_t begin = c * kChunk;
    const std::size_t end = begin + kChunk < n ? begin + kChunk : n;
    for (std::size_t i = begin; i < end; ++i) out[i] = std::copysign(1.0f, x[i] + 0.0f);
  });
}

}  // namespace binarynet
