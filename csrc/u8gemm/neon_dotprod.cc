// NEON byte GEMM with the Armv8.2 dot-product extension (SDOT): compiled with
// -march=armv8.2-a+dotprod, only called after the run-time check of kernel_choice.cc
// (getauxval(AT_HWCAP) & HWCAP_ASIMDDP).
//
// SDOT multiplies signed bytes by signed bytes; the pixels p are unsigned (0..255). So the A
// bytes are flipped to p − 128 (EOR 0x80: one instruction per 16 bytes of a row), and
//     s = Σ_i p_i·w_i = Σ_i (p_i − 128)·w_i + 128·Σ_i w_i,
// where Σ_i w_i (per output; weights past K are 0) is accumulated alongside by SDOT with a vector
// of ones. |(p − 128)·w| ≤ 128: every sum is exact in int32 for K < 2²⁴.
//
// Micro-kernel: 4 rows × 1 block of 16 outputs (16 int32x4 accumulators). A row's 16 bytes
// (4 groups of 4 k) are loaded and flipped once; SDOT (by element) takes group g of the row from
// lane g, the weight line (64 bytes: 4 k of 16 outputs) is 4 registers: per 4 k of a block,
// 1 load (LD1, 4 registers) and 16 SDOT for 4 rows × 16 outputs × 4 k = 256 products. Σw takes
// a pass of its own over the block's lines (4 SDOT per line), before the rows.
#include <arm_neon.h>

#include <cstring>

#define BN_U8_NS u8_neon_dotprod_impl
#include "u8gemm/kernel_loops.h"
#include "u8gemm/neon_store.h"

namespace binarynet {
namespace u8_neon_dotprod_impl {
namespace {

struct Micro {
  static constexpr int kRows = 4, kCols = 1;

  static std::size_t block_bytes(std::size_t kg) { return int8_block_bytes(kg); }

  template <int R, int G>
  __attribute__((always_inline)) static void step(const int8x16_t av[R], const std::int8_t* w,
                                                  int32x4_t acc[R][4]) {
    const int8x16x4_t wv = vld1q_s8_x4(w);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) acc[r][q] = vdotq_laneq_s32(acc[r][q], wv.val[q], av[r], G);
  }

  template <bool kBits, int R, int C>
  static void tile(const std::uint8_t* a, std::size_t lda, std::size_t m, const std::uint8_t* wb,
                   std::size_t kg, std::size_t n, std::size_t N, const U8Epilogue& ep) {
    static_assert(C == 1, "one block per tile");
    const auto* wp = reinterpret_cast<const std::int8_t*>(wb);
    const uint8x16_t flip = vdupq_n_u8(0x80);
    const int8x16_t ones = vdupq_n_s8(1);
    int32x4_t acc[R][4], wsum[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) wsum[q] = vdupq_n_s32(0);
    // Σw per output, in a pass of its own (in the main loop its 4 accumulators would push the
    // 16 of the tile, the 4 rows and the weight line out of the 32 registers).
    for (std::size_t g = 0; g < kg; ++g) {
      const int8x16x4_t wv = vld1q_s8_x4(wp + g * 64);
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) wsum[q] = vdotq_s32(wsum[q], wv.val[q], ones);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) acc[r][q] = vdupq_n_s32(0);
    std::size_t g = 0;
    for (; g + 4 <= kg; g += 4) {
      int8x16_t av[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
        av[r] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a + r * lda + 4 * g), flip));
      const std::int8_t* w = wp + g * 64;
      step<R, 0>(av, w, acc);
      step<R, 1>(av, w + 64, acc);
      step<R, 2>(av, w + 128, acc);
      step<R, 3>(av, w + 192, acc);
    }
    for (; g < kg; ++g) {  // the last 1–3 groups: 4 bytes per row (a row has 4·kg bytes)
      int8x16_t av[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        std::uint32_t four;
        std::memcpy(&four, a + r * lda + 4 * g, 4);
        av[r] = vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(four)), flip));
      }
      step<R, 0>(av, wp + g * 64, acc);
    }
    const std::size_t real = N - n < 16 ? N - n : 16;  // n < N
    int32x4_t bias[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) bias[q] = vshlq_n_s32(wsum[q], 7);  // 128·Σw
    NeonThresholds th;
    if constexpr (kBits) th.load(ep, n, real);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      int32x4_t s[4];
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) s[q] = vaddq_s32(acc[r][q], bias[q]);
      store_row<kBits>(s, m + r, n, real, ep, &th);
    }
  }
};

}  // namespace
}  // namespace u8_neon_dotprod_impl

U8Fn u8_neon_dotprod_kernel() {
  return &u8_neon_dotprod_impl::u8_entry<u8_neon_dotprod_impl::Micro>;
}

}  // namespace binarynet
