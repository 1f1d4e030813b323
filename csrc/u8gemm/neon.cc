// NEON byte GEMM without the dot-product extension (every aarch64 CPU; Cortex-A53/A72: Raspberry
// Pi 3/4). Widening multiply-accumulate in 16 bits:
//   * a weight line (4 k × 16 outputs, output-major) is de-interleaved by LD4 into 4 registers,
//     one per k (16 outputs each), and sign-extended to 16 bits (SXTL / SXTL2);
//   * 8 pixels of a row are zero-extended to 16 bits (UXTL) once per 2 groups;
//   * MLA (by element) adds p_k·w_k to 8 int16 lanes: 2 instructions per row, k and 16 outputs.
// |p·w| ≤ 255, so the int16 accumulators are widened into int32 (SADDW / SADDW2) every 128 k
// (≤ 32 640, no overflow).
//
// Micro-kernel: 4 rows × 1 block of 16 outputs (8 int16 accumulators, 16 int32 ones).
#include <arm_neon.h>

#include <cstring>

#define BN_U8_NS u8_neon_impl
#include "u8gemm/kernel_loops.h"
#include "u8gemm/neon_store.h"

namespace binarynet {
namespace u8_neon_impl {
namespace {

constexpr std::size_t kChunkGroups = 32;  // 128 k per int16 accumulation

struct Micro {
  static constexpr int kRows = 4, kCols = 1;

  static std::size_t block_bytes(std::size_t kg) { return int8_block_bytes(kg); }

  // One group (4 k) of the weight line at w, pixels p16[r] lanes L .. L + 3 (L = 0 or 4).
  template <int R, int L>
  __attribute__((always_inline)) static void step(const int16x8_t p16[R], const std::int8_t* w,
                                                  int16x8_t acc[R][2]) {
    const int8x16x4_t wl = vld4q_s8(w);  // wl.val[i][j] = w[output j][k = i]
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const int16x8_t w0 = vmovl_s8(vget_low_s8(wl.val[i]));
      const int16x8_t w1 = vmovl_high_s8(wl.val[i]);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        acc[r][0] = vmlaq_laneq_s16(acc[r][0], w0, p16[r], L + i);
        acc[r][1] = vmlaq_laneq_s16(acc[r][1], w1, p16[r], L + i);
      }
    }
  }

  template <bool kBits, int R, int C>
  static void tile(const std::uint8_t* a, std::size_t lda, std::size_t m, const std::uint8_t* wb,
                   std::size_t kg, std::size_t n, std::size_t N, const U8Epilogue& ep) {
    static_assert(C == 1, "one block per tile");
    const auto* wp = reinterpret_cast<const std::int8_t*>(wb);
    int32x4_t tot[R][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) tot[r][q] = vdupq_n_s32(0);
    for (std::size_t g0 = 0; g0 < kg; g0 += kChunkGroups) {
      const std::size_t g1 = kg - g0 < kChunkGroups ? kg : g0 + kChunkGroups;
      int16x8_t acc[R][2];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = vdupq_n_s16(0);
      std::size_t g = g0;
      for (; g + 2 <= g1; g += 2) {
        int16x8_t p16[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r)
          p16[r] = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(a + r * lda + 4 * g)));
        step<R, 0>(p16, wp + g * 64, acc);
        step<R, 4>(p16, wp + (g + 1) * 64, acc);
      }
      if (g < g1) {  // an odd last group: 4 bytes per row
        int16x8_t p16[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          std::uint32_t four;
          std::memcpy(&four, a + r * lda + 4 * g, 4);
          p16[r] = vreinterpretq_s16_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(four))));
        }
        step<R, 0>(p16, wp + g * 64, acc);
      }
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        tot[r][0] = vaddw_s16(tot[r][0], vget_low_s16(acc[r][0]));
        tot[r][1] = vaddw_high_s16(tot[r][1], acc[r][0]);
        tot[r][2] = vaddw_s16(tot[r][2], vget_low_s16(acc[r][1]));
        tot[r][3] = vaddw_high_s16(tot[r][3], acc[r][1]);
      }
    }
    const std::size_t real = N - n < 16 ? N - n : 16;  // n < N
    NeonThresholds th;
    if constexpr (kBits) th.load(ep, n, real);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) store_row<kBits>(tot[r], m + r, n, real, ep, &th);
  }
};

}  // namespace
}  // namespace u8_neon_impl

U8Fn u8_neon_kernel() { return &u8_neon_impl::u8_entry<u8_neon_impl::Micro>; }

}  // namespace binarynet
