// Max pooling (NHWC, kernel k, stride s, no padding, floor mode: PyTorch's max_pool2d defaults with
// kernel_size = k, stride = s). Baseline ISA; memory-bound, parallel over output rows.
//
// Pooling packed bits. In a BNN the pool sits between the convolution and its batch norm + sign,
// which the exporter turns into a per-channel threshold on the pre-activation x:
//   γ > 0:  out = +1 ⇔ x ≥ τ (increasing in x)       γ < 0:  out = +1 ⇔ x ≤ τ (decreasing in x)
// For an increasing threshold, max_i(x_i) ≥ τ ⇔ ∃i: x_i ≥ τ ⇔ some thresholded input is +1, so
// the thresholded max is +1 iff ANY input bit is 0, i.e. its bit (1 = −1) is the AND of the bits.
// For a decreasing one, max_i(x_i) ≤ τ ⇔ ∀i: x_i ≤ τ ⇔ every input is +1, so its bit is 1 iff
// some input bit is 1: the OR of the bits. (A constant channel, γ = 0, gives the same bit either
// way.) So threshold-then-pool with AND (and_mask bit 1) or OR (bit 0) per channel equals
// pool-then-threshold, on one word per 64 channels:
//     out = (AND_i x_i & and_mask) | (OR_i x_i & ~and_mask).
// Zero padding bits stay zero (the AND and the OR of zeros are zero).
#pragma once

#include <cstddef>
#include <cstdint>

#include "threadpool.h"

namespace binarynet {

struct PoolGeom {
  std::size_t B, H, W, C, k, s, Ho, Wo;
};

inline void maxpool2d_int32(const PoolGeom& g, const std::int32_t* x, std::int32_t* out,
                            int threads) {
  parallel_for(g.B * g.Ho, threads, [&](std::size_t row) {
    const std::size_t b = row / g.Ho, oh = row % g.Ho;
    for (std::size_t ow = 0; ow < g.Wo; ++ow) {
      std::int32_t* o = out + (row * g.Wo + ow) * g.C;
      const std::int32_t* first = x + ((b * g.H + oh * g.s) * g.W + ow * g.s) * g.C;
      for (std::size_t ch = 0; ch < g.C; ++ch) o[ch] = first[ch];
      for (std::size_t ky = 0; ky < g.k; ++ky)
        for (std::size_t kx = 0; kx < g.k; ++kx) {
          const std::int32_t* in = x + ((b * g.H + oh * g.s + ky) * g.W + ow * g.s + kx) * g.C;
          for (std::size_t ch = 0; ch < g.C; ++ch) o[ch] = in[ch] > o[ch] ? in[ch] : o[ch];
        }
    }
  });
}

inline void maxpool2d_bits(const PoolGeom& g, const std::uint64_t* x,
                           const std::uint64_t* and_mask, std::uint64_t* out, int threads) {
  parallel_for(g.B * g.Ho, threads, [&](std::size_t row) {
    const std::size_t b = row / g.Ho, oh = row % g.Ho;
    for (std::size_t ow = 0; ow < g.Wo; ++ow) {
      std::uint64_t* o = out + (row * g.Wo + ow) * g.C;
      for (std::size_t cw = 0; cw < g.C; ++cw) {
        std::uint64_t all = ~std::uint64_t{0}, any = 0;
        for (std::size_t ky = 0; ky < g.k; ++ky)
          for (std::size_t kx = 0; kx < g.k; ++kx) {
            const std::uint64_t v = x[((b * g.H + oh * g.s + ky) * g.W + ow * g.s + kx) * g.C + cw];
            all &= v;
            any |= v;
          }
        o[cw] = (all & and_mask[cw]) | (any & ~and_mask[cw]);
      }
    }
  });
}

}  // namespace binarynet
