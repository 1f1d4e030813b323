// The byte GEMM's NEON epilogue (u8gemm/kernel.h), shared by neon.cc and neon_dotprod.cc: each
// includes it after u8gemm/kernel_loops.h, inside its own namespace (BN_U8_NS), so each gets its
// own copy compiled with its own ISA flags (never share an inline symbol across translation units
// with different ISA flags).
#ifndef BN_U8_NS
#error "define BN_U8_NS before including u8gemm/neon_store.h"
#endif

#include <arm_neon.h>

#include <cstring>

namespace binarynet {
namespace BN_U8_NS {

// The lo / hi thresholds of one block's 16 columns (n .. n + real), zero past `real`, so that no
// load reads past N.
struct NeonThresholds {
  int32x4_t lo[4], hi[4];
  void load(const U8Epilogue& ep, std::size_t n, std::size_t real) {
    std::int32_t l[16] = {}, h[16] = {};
    std::memcpy(l, ep.lo + n, real * sizeof(std::int32_t));
    std::memcpy(h, ep.hi + n, real * sizeof(std::int32_t));
    for (int q = 0; q < 4; ++q) {
      lo[q] = vld1q_s32(l + 4 * q);
      hi[q] = vld1q_s32(h + 4 * q);
    }
  }
};

// Row m, columns n .. n + real (real ≤ 16) of the result s[16] (4 vectors of 4 outputs): int32
// values, or the threshold bits (bit j = 1 (−1) iff s[j] < lo or s[j] > hi; bits past real 0).
template <bool kBits>
__attribute__((always_inline)) inline void store_row(const int32x4_t s[4], std::size_t m,
                                                     std::size_t n, std::size_t real,
                                                     const U8Epilogue& ep,
                                                     const NeonThresholds* th) {
  if constexpr (kBits) {
    uint32x4_t neg[4];
    for (int q = 0; q < 4; ++q)
      neg[q] = vorrq_u32(vcltq_s32(s[q], th->lo[q]), vcgtq_s32(s[q], th->hi[q]));
    const uint16x8_t n01 = vcombine_u16(vmovn_u32(neg[0]), vmovn_u32(neg[1]));
    const uint16x8_t n23 = vcombine_u16(vmovn_u32(neg[2]), vmovn_u32(neg[3]));
    const uint8x16_t bytes = vcombine_u8(vmovn_u16(n01), vmovn_u16(n23));  // 0 / 0xff
    const uint8x16_t weights = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t w = vandq_u8(bytes, weights);
    const unsigned bits = static_cast<unsigned>(vaddv_u8(vget_low_u8(w))) |
                          static_cast<unsigned>(vaddv_u8(vget_high_u8(w))) << 8;
    const std::uint16_t b = static_cast<std::uint16_t>(bits & ((1u << real) - 1));
    std::memcpy(ep.bits + m * ep.ldb + n / 8, &b, 2);
  } else {
    std::int32_t* o = ep.out + m * ep.ldo + n;
    if (real == 16) {
      for (int q = 0; q < 4; ++q) vst1q_s32(o + 4 * q, s[q]);
    } else {
      std::int32_t t[16];
      for (int q = 0; q < 4; ++q) vst1q_s32(t + 4 * q, s[q]);
      std::memcpy(o, t, real * sizeof(std::int32_t));
    }
  }
}

}  // namespace BN_U8_NS
}  // namespace binarynet
