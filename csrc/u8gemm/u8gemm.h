// The byte-GEMM ops of the first layer (baseline ISA): u8gemm on uint8 rows and u8conv2d on uint8
// NHWC images, both on weights prepared once (u8gemm/kernel.h), int32 values or threshold bits
// (gemm::Output). Callers (bindings/) validate shapes; these functions assume valid arguments.
//
// u8conv2d lives here rather than in bconv/: it is this folder's GEMM driver with another row
// source (im2col rows of the image, built per task from bconv/im2col.h), on this folder's
// prepared weights and kernels; bconv/ holds the binary convolution, whose GEMM is the popcount
// one (bgemm/) and whose zero padding needs the correction table of bconv/padding.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bconv/geometry.h"
#include "gemm/driver.h"
#include "kernel_choice.h"

namespace binarynet {

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
// [M, N] = Σ_i x[m, i]·w[n, i] for x uint8 [M, K].
void u8gemm(Kernel kern, const std::uint8_t* x, std::size_t M, const U8Prepared& w, int threads,
            const gemm::Output& out);
// The first convolution on uint8 NHWC x (g.c = g.cw = channels, g.O = w.N, w.K = kh·kw·c), padded
// taps reading pad_value: s = im2col(x) · wᵀ, computed on rows built per task (no im2col matrix);
// [B, Ho, Wo, O] values or bits.
void u8conv2d(Kernel kern, const ConvGeom& g, const std::uint8_t* x, std::uint8_t pad_value,
              const U8Prepared& w, int threads, const gemm::Output& out);

}  // namespace binarynet
