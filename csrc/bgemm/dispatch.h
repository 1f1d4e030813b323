// Kernel choice and the operation drivers (baseline ISA). Callers (bindings.cc) validate shapes;
// these functions assume valid arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bconv/geometry.h"

namespace binarynet {

enum class Kernel { Reference, Portable, Avx2, Avx512 };

// Kernels this CPU can run, best last.
std::vector<std::string> available_kernels();
// Best available kernel, or the one named by the environment variable BINARYNET_KERNEL.
// Throws std::invalid_argument if that variable names an unknown or unavailable kernel.
std::string default_kernel();
// "auto" or a kernel name → Kernel. Throws std::invalid_argument (unknown / not on this CPU).
Kernel resolve_kernel(const std::string& name);

// W rows [N, nw] prepacked in the panel layout (kernel.h) for the batch-1 path:
// panel_words(N, nw) words.
std::size_t panel_words(std::size_t N, std::size_t nw);
void pack_weight_panels(const std::uint64_t* w, std::size_t N, std::size_t nw,
                        std::uint64_t* panels);

// out [M, N] = k − 2·popcount(a[m] ⊕ w[n]); a [M, nw], w [N, nw]. w_panels (optional): the same
// W prepacked by pack_weight_panels, used by the batch-1 path.
void bgemm(Kernel kern, const std::uint64_t* a, std::size_t M, const std::uint64_t* w,
           std::size_t N, std::size_t nw, std::size_t k, int threads, std::int32_t* out,
           const std::uint64_t* w_panels = nullptr);
// out [M, ceil(N/64)] words: bit n = 0 iff lo[n] ≤ bgemm value ≤ hi[n]. `out` must be zeroed.
void bgemm_threshold(Kernel kern, const std::uint64_t* a, std::size_t M, const std::uint64_t* w,
                     std::size_t N, std::size_t nw, std::size_t k, const std::int32_t* lo,
                     const std::int32_t* hi, int threads, std::uint64_t* out,
                     const std::uint64_t* w_panels = nullptr);
// out [M, N] = Σ_i x[m, i]·w[n, i] (w as ±1); x [M, K] uint8, w [N, nw]. With lo/hi: packed
// threshold bits out_bits [M, ceil(N/64)] instead (zeroed by the caller), out unused.
void bitplane_gemm(Kernel kern, const std::uint8_t* x, std::size_t M, std::size_t K,
                   const std::uint64_t* w, std::size_t N, std::size_t nw, const std::int32_t* lo,
                   const std::int32_t* hi, int threads, std::int32_t* out,
                   std::uint64_t* out_bits);

// First-layer weights for the byte GEMM (u8gemm/kernel.h): the packed ±1 rows w [N, nw] of K
// real bits (kept for the reference kernel) and their int8 blocks wp.
struct U8Prepared {
  const std::uint64_t* bits = nullptr;  // [N, nw]
  const std::int8_t* wp = nullptr;      // [ceil(N/16), ceil(K/4), 16, 4]
  const std::uint64_t* wm = nullptr;    // [ceil(N/16), ceil(K/4)] masks (batch 1–3), optional
  std::size_t N = 0, K = 0, nw = 0;
};
std::size_t u8_prepared_bytes(std::size_t N, std::size_t K);
std::size_t u8_mask_words(std::size_t N, std::size_t K);
// Fills wp (u8_prepared_bytes(N, K) bytes) and wm (u8_mask_words(N, K) words) from the packed
// rows w [N, nw].
void u8_prepare(const std::uint64_t* w, std::size_t N, std::size_t nw, std::size_t K,
                std::int8_t* wp, std::uint64_t* wm);
// s [M, N] = Σ_i x[m, i]·w[n, i] for x uint8 [M, K]: int32 out, or (lo/hi given) threshold bits
// out_bits [M, ceil(N/64)] (zeroed by the caller).
void u8gemm(Kernel kern, const std::uint8_t* x, std::size_t M, const U8Prepared& w,
            const std::int32_t* lo, const std::int32_t* hi, int threads, std::int32_t* out,
            std::uint64_t* out_bits);
// The first convolution on uint8 NHWC x (g.c = g.cw = channels, g.O = w.N, w.K = kh·kw·c), padded
// taps reading pad_value: s = im2col(x) · wᵀ, computed on rows built per task (no im2col matrix);
// int32 out [B, Ho, Wo, O] or threshold bits out_bits [B, Ho, Wo, ceil(O/64)] (zeroed).
void u8conv2d(Kernel kern, const ConvGeom& g, const std::uint8_t* x, std::uint8_t pad_value,
              const U8Prepared& w, const std::int32_t* lo, const std::int32_t* hi, int threads,
              std::int32_t* out, std::uint64_t* out_bits);
// Packs the threshold of int32 y [M, N]: out [M, ceil(N/64)], bit 0 iff lo[n] ≤ y ≤ hi[n].
void threshold_bits(const std::int32_t* y, std::size_t M, std::size_t N, const std::int32_t* lo,
                    const std::int32_t* hi, int threads, std::uint64_t* out);
// Binary convolution (g.compute_output() done); out int32 [B, Ho, Wo, O], or, when lo/hi are
// given, packed threshold bits [B, Ho, Wo, ceil(O/64)] (zeroed by the caller).
void bconv2d(Kernel kern, const ConvGeom& g, const std::uint64_t* x, const std::uint64_t* w,
             const std::int32_t* lo, const std::int32_t* hi, int threads, std::int32_t* out,
             std::uint64_t* out_bits);

}  // namespace binarynet
