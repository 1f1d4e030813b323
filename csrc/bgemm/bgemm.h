// The binary GEMM ops (baseline ISA): bgemm and its threshold epilogue, the bit-plane GEMM of the
// first layer, the stand-alone threshold. Callers (bindings/) validate shapes; these functions
// assume valid arguments. Every op takes the variant (kernel_choice.h; Reference runs the plain
// loops of bgemm/reference.h) and a thread count, and writes a gemm::Output: int32 values, or
// packed threshold bits (zeroed by the caller) when lo/hi are given.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gemm/driver.h"
#include "kernel_choice.h"

namespace binarynet {

// W rows [N, nw] prepacked in the panel layout (kernel.h) for the batch-1 path:
// panel_words(N, nw) words.
std::size_t panel_words(std::size_t N, std::size_t nw);
void pack_weight_panels(const std::uint64_t* w, std::size_t N, std::size_t nw,
                        std::uint64_t* panels);

// [M, N] = k − 2·popcount(a[m] ⊕ w[n]); a [M, nw], w [N, nw]. w_panels (optional): the same W
// prepacked by pack_weight_panels, used by the batch-1 path.
void bgemm(Kernel kern, const std::uint64_t* a, std::size_t M, const std::uint64_t* w,
           std::size_t N, std::size_t nw, std::size_t k, int threads, const gemm::Output& out,
           const std::uint64_t* w_panels = nullptr);
// [M, N] = Σ_i x[m, i]·w[n, i] (w as ±1); x [M, K] uint8, w [N, nw] (the paper's Algorithm 5).
void bitplane_gemm(Kernel kern, const std::uint8_t* x, std::size_t M, std::size_t K,
                   const std::uint64_t* w, std::size_t N, std::size_t nw, int threads,
                   const gemm::Output& out);
// Packs the threshold of int32 y [M, N]: out [M, ceil(N/64)], bit 0 iff lo[n] ≤ y ≤ hi[n]. One
// variant (the reference loop, run in parallel blocks of rows unless kern is Reference).
void threshold_bits(Kernel kern, const std::int32_t* y, std::size_t M, std::size_t N,
                    const std::int32_t* lo, const std::int32_t* hi, int threads,
                    std::uint64_t* out);

}  // namespace binarynet
