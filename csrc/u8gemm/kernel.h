// The first layer on uint8 inputs as a byte GEMM: the interface between its driver (u8gemm.cc,
// baseline ISA) and the ISA kernels (portable.cc, avx2.cc, avx512.cc, amx.cc in this folder).
//
// The maths. The first layer's inputs are uint8 pixels p and its weights ±1, so
//     s[m][n] = Σ_i p[m][i]·w[n][i]
// is an integer dot product of unsigned bytes with signed bytes — exactly what VPDPBUSD
// (AVX-512 VNNI: four u8·s8 products summed into an int32 lane) and VPMADDUBSW + VPMADDWD
// (AVX2: two products into an int16, two int16 into an int32) compute. With |w| = 1 the products
// are ≤ 255, a pair ≤ 510: nothing saturates, and every sum is exact in int32 for K < 2²³. This is
// the integer arithmetic of the paper's Algorithm 5 (Σᵢ pᵢwᵢ with no float multiply) without its
// 8 bit planes: bgemm's bit-plane GEMM spends 8 AND-popcounts per pixel, and at the ConvNet's
// K = 27 uses 27 of each 64-bit word; here one VPDPBUSD does 64 pixel·weight products.
//
// Prepared weights (U8Weights in bindings/engine_ops.cc, built once per model): int8 blocks of
// 16 outputs,
//     wp[((b·kg + g)·16 + j)·4 + i] = w[16b + j][4g + i]   (±1; 0 for 16b + j ≥ N or 4g + i ≥ K)
// with kg = ceil(K/4): one 64-byte line holds 4 consecutive k of 16 outputs, the operand of one
// VPDPBUSD whose other operand is 4 bytes of one A row broadcast to the 16 lanes. Zero weights
// past K make the A bytes there irrelevant (they only need to be readable).
//
// Batch 1 to 3 are bound by the weights' traffic (4 MiB of int8 per 1024×4096 layer), so they
// read a bit copy instead, 8× smaller: mask word wm[b·kg + g] has bit 4j + i set iff
// w[16b + j][4g + i] = −1 (same order as the bytes of one line). The AVX-512 kernel expands a
// mask to bytes 0 / −1 (VPMOVM2B), VPDPBUSD then gives t = −Σ_{w=−1} p, and s = Σ p + 2t.
//
// Epilogue: int32 s, or the threshold bit (bit 0 = +1 iff lo[n] ≤ s ≤ hi[n]) packed like every
// activation (bit n of row m at bit n % 64 of word n / 64; bits past N zero).
#pragma once

#include <cstddef>
#include <cstdint>

namespace binarynet {

constexpr std::size_t kU8Block = 16;  // outputs per prepared weight block
// Zero bytes kept past the prepared blocks: the AMX kernel loads weight tiles of 16 lines, whose
// last ones may lie past the last block (multiplied by zero activations; amx.cc).
constexpr std::size_t kU8TileSlack = 1024;

inline std::size_t u8_groups(std::size_t k) { return (k + 3) / 4; }
inline std::size_t u8_blocks(std::size_t n) { return (n + kU8Block - 1) / kU8Block; }

struct U8Epilogue {
  // Sinks (exactly one is set).
  std::int32_t* out = nullptr;  // int32 [M, ldo]
  std::size_t ldo = 0;
  std::uint8_t* bits = nullptr;  // threshold bits [M, ldb bytes]; bits of block b at bytes 2b, 2b+1
  std::size_t ldb = 0;
  const std::int32_t* lo = nullptr;  // [N]
  const std::int32_t* hi = nullptr;  // [N]
};

// Output rows [m0, m0 + rows) × weight blocks [b0, b1) (columns [16·b0, min(N, 16·b1))).
// Row r of A (output row m0 + r) is at a + r·lda and has 4·kg readable bytes, zero past K.
// `w` is the kernel's weight layout: int8 blocks (wp), or masks (wm) for a mask kernel.
using U8Fn = void (*)(const std::uint8_t* a, std::size_t lda, std::size_t m0, std::size_t rows,
                      const void* w, std::size_t kg, std::size_t b0, std::size_t b1, std::size_t N,
                      const U8Epilogue& ep);

// Defined in the kernels' own translation units (u8gemm/*.cc).
U8Fn u8_portable_kernel();
U8Fn u8_avx2_kernel();          // only call after the CPU check (kernel_choice.cc: AVX2)
U8Fn u8_avx512_kernel();        // only after the CPU check (kernel_choice.cc: AVX-512 BW + VNNI)
U8Fn u8_avx512_mask_kernel();   // the same, on the masks wm; at most 3 rows per call
U8Fn u8_amx_kernel();           // only after cpu_has_amx() (kernel_choice.cc); wp + kU8TileSlack
U8Fn u8_neon_kernel();          // aarch64 only (kernel_choice.cc: cpu_has_neon)
U8Fn u8_neon_dotprod_kernel();  // aarch64 only, after the check cpu_has_neon_dotprod

}  // namespace binarynet
