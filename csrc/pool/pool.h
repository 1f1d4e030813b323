// Max pooling (NHWC, kernel k, stride s, no padding, floor mode: PyTorch's max_pool2d defaults with
// kernel_size = k, stride = s). Baseline ISA; memory-bound. Two variants: the reference loops
// (pool/reference.h, kernel="reference") and one optimised baseline loop, parallel over output
// rows (pool/pool.cc), which every other kernel name selects (there is no ISA-specific pool:
// the compiler vectorises the channel loop, and the op is bound by memory).
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

#include "kernel_choice.h"

namespace binarynet {

struct PoolGeom {
  std::size_t B, H, W, C, k, s, Ho, Wo;
};

// out [B, Ho, Wo, C] = the window maxima of int32 x [B, H, W, C].
void maxpool2d_int32(Kernel kern, const PoolGeom& g, const std::int32_t* x, std::int32_t* out,
                     int threads);
// out [B, Ho, Wo, C words] = (AND of the window & and_mask) | (OR of the window & ~and_mask).
void maxpool2d_bits(Kernel kern, const PoolGeom& g, const std::uint64_t* x,
                    const std::uint64_t* and_mask, std::uint64_t* out, int threads);

}  // namespace binarynet
