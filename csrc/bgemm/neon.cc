// NEON kernels (aarch64 Advanced SIMD, on every aarch64 CPU; the "neon" and "neon-dotprod"
// variants share them: the dot-product extension only changes the first layer's byte GEMM).
//
// The popcount of 128 bits is three instructions:
//     EOR  (a ⊕ w, or AND for bit planes)   CNT v.16b  (popcount of every byte, ≤ 8)
//     UADALP v.8h, v.16b                    (adds adjacent byte pairs into 16-bit accumulators)
// the same eor → cnt → pairwise-accumulate chain as Larq Compute Engine's and daBNN's loops.
// A 16-bit lane gains ≤ 16 per 64-bit word, so the 16-bit accumulators are folded into 32-bit
// ones (UADALP v.4s, v.8h) every kChunk = 4095 words (≤ 65520), i.e. never below K = 262 080.
//
// Micro-kernel (panels): one panel (8 rows of A, word k of the 8 rows = 4 q registers, one LD1)
// × 4 columns (W words broadcast to both 64-bit lanes, LD1R), 16 accumulators; per word k:
// 1 + 4 loads and 16 × (EOR, CNT, UADALP) = 48 arithmetic instructions for 8 × 4 × 64 = 2048
// binary multiply-accumulates. Run twice (columns 0–3, 4–7) for the 8 columns of a tile; the A
// panel stays in L1 between the two passes. Lanes are rows, so the only horizontal work is at the
// end: pairwise adds (ADDP) and an unzip give each row's 4 column sums (docs/arm.md).
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace {
// Bit j = sign bit of lane j of 8 int32 lanes (kernel_loops.h's v8i, passed as memory).
inline unsigned bn_neon_movemask8(const void* p) {
  std::int32_t x[8];
  std::memcpy(x, p, sizeof x);
  const uint32x4_t lo = vshrq_n_u32(vreinterpretq_u32_s32(vld1q_s32(x)), 31);
  const uint32x4_t hi = vshrq_n_u32(vreinterpretq_u32_s32(vld1q_s32(x + 4)), 31);
  const uint16x8_t b = vcombine_u16(vmovn_u32(lo), vmovn_u32(hi));
  const uint16x8_t w = {1, 2, 4, 8, 16, 32, 64, 128};
  return vaddvq_u16(vmulq_u16(b, w));
}
}  // namespace

#define BN_KERNEL_NS neon_impl
#define BN_MOVEMASK8(v)        \
  __extension__({              \
    const auto bn_v_ = (v);    \
    bn_neon_movemask8(&bn_v_); \
  })
#include "bgemm/kernel_loops.h"

namespace binarynet {
namespace neon_impl {
namespace {

constexpr std::size_t kChunk = 4095;  // words per 16-bit accumulation (see above)

template <BitOp OP>
inline uint8x16_t combine(uint8x16_t a, uint8x16_t b) {
  if constexpr (OP == BitOp::Xor) return veorq_u8(a, b);
  return vandq_u8(a, b);
}

inline uint8x16_t load_u8(const std::uint64_t* p) {
  return vld1q_u8(reinterpret_cast<const std::uint8_t*>(p));
}

// One LD1R (GCC otherwise turns vld1q_dup_u64 into LDR + DUP: two instructions per broadcast).
inline uint8x16_t broadcast_next(const std::uint64_t*& p) {
  uint64x2_t v;
  asm("ld1r {%0.2d}, [%1], #8" : "=w"(v), "+r"(p) : "m"(*p));
  return vreinterpretq_u8_u64(v);
}
inline uint8x16_t broadcast_word(const std::uint64_t* p) {
  uint64x2_t v;
  asm("ld1r {%0.2d}, [%1]" : "=w"(v) : "r"(p), "m"(*p));
  return vreinterpretq_u8_u64(v);
}

// Columns wr[0..4) of one panel: rows[l][j] = Σ_k popcount(OP(A[l][k], wr[j][k])), l < 8, j < 4.
template <BitOp OP>
__attribute__((always_inline)) inline void panel_4cols(const std::uint64_t* a, std::size_t nwords,
                                                       const std::uint64_t* const wr[4],
                                                       uint32x4_t rows[8]) {
  // tot[j][i]: column j, row pair i (rows 2i, 2i + 1): lanes (2i, 2i, 2i + 1, 2i + 1).
  uint32x4_t tot[4][4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j)
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) tot[j][i] = vdupq_n_u32(0);
  const std::uint64_t *ap = a, *w0 = wr[0], *w1 = wr[1], *w2 = wr[2], *w3 = wr[3];
  for (std::size_t k0 = 0; k0 < nwords; k0 += kChunk) {
    uint16x8_t acc[4][4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j)
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) acc[j][i] = vdupq_n_u16(0);
    // The inner loop (docs/arm.md counts its instructions): pointers advance by post-indexed
    // loads, so the loop costs SUBS + B.NE besides the loads and the 48 arithmetic instructions.
    for (std::size_t n = min_size(nwords - k0, kChunk); n != 0; --n) {
      const uint8x16x4_t av = vld1q_u8_x4(reinterpret_cast<const std::uint8_t*>(ap));
      ap += kPanelRows;
      const uint8x16_t b[4] = {broadcast_next(w0), broadcast_next(w1), broadcast_next(w2),
                               broadcast_next(w3)};
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j)
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i)
          acc[j][i] = vpadalq_u8(acc[j][i], vcntq_u8(combine<OP>(av.val[i], b[j])));
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j)
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) tot[j][i] = vpadalq_u16(tot[j][i], acc[j][i]);
  }
  // Per pair i: x = [c0 r2i, c0 r2i+1, c1 r2i, c1 r2i+1], y = the same for c2, c3; the even
  // lanes of (x, y) are row 2i, the odd ones row 2i + 1.
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    const uint32x4_t x = vpaddq_u32(tot[0][i], tot[1][i]);
    const uint32x4_t y = vpaddq_u32(tot[2][i], tot[3][i]);
    rows[2 * i] = vuzp1q_u32(x, y);
    rows[2 * i + 1] = vuzp2q_u32(x, y);
  }
}

// pc[j] lanes (l) of one unpacked row against the 8 W rows of a panel (word k of the 8 rows at
// panel[8k .. 8k + 8)), for NP panels at once: lanes are outputs.
template <BitOp OP, int NP>
__attribute__((always_inline)) inline void wpanels_n(const std::uint64_t* a, std::size_t nwords,
                                                     const std::uint64_t* const panel[NP],
                                                     v8i* pc) {
  uint32x4_t tot[NP][4];
#pragma GCC unroll 2
  for (int q = 0; q < NP; ++q)
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) tot[q][i] = vdupq_n_u32(0);
  for (std::size_t k0 = 0; k0 < nwords; k0 += kChunk) {
    const std::size_t k1 = min_size(nwords, k0 + kChunk);
    uint16x8_t acc[NP][4];
#pragma GCC unroll 2
    for (int q = 0; q < NP; ++q)
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) acc[q][i] = vdupq_n_u16(0);
    for (std::size_t k = k0; k < k1; ++k) {
      const uint8x16_t b = broadcast_word(a + k);
#pragma GCC unroll 2
      for (int q = 0; q < NP; ++q)
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i)
          acc[q][i] = vpadalq_u8(
              acc[q][i], vcntq_u8(combine<OP>(load_u8(panel[q] + k * kPanelRows + 2 * i), b)));
    }
#pragma GCC unroll 2
    for (int q = 0; q < NP; ++q)
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) tot[q][i] = vpadalq_u16(tot[q][i], acc[q][i]);
  }
#pragma GCC unroll 2
  for (int q = 0; q < NP; ++q) {
    std::int32_t lanes[8];
    vst1q_s32(lanes, vreinterpretq_s32_u32(vpaddq_u32(tot[q][0], tot[q][1])));
    vst1q_s32(lanes + 4, vreinterpretq_s32_u32(vpaddq_u32(tot[q][2], tot[q][3])));
    pc[q] = load8(lanes);
  }
}

template <BitOp OP>
inline std::uint64_t combine64(std::uint64_t a, std::uint64_t b) {
  if constexpr (OP == BitOp::Xor) return a ^ b;
  return a & b;
}

struct Micro {
  static constexpr int kMaxPanels = 1;
  static constexpr bool kCombinesPlanes = false;

  template <BitOp OP, class Sink>
  static void panels(int /*np*/, const std::uint64_t* a, std::size_t nwords,
                     const std::uint64_t* const wr[8], Sink& sink) {
    alignas(16) std::int32_t tile[8][8];  // [row][column]
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      uint32x4_t rows[8];
      panel_4cols<OP>(a, nwords, wr + 4 * half, rows);
#pragma GCC unroll 8
      for (int l = 0; l < 8; ++l) vst1q_s32(&tile[l][4 * half], vreinterpretq_s32_u32(rows[l]));
    }
    Sink s = sink;  // fields in registers (see avx512.cc)
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l) s(l, load8(tile[l]));
  }

  // One unpacked row of A against np ≤ 8 prepacked W panels, two panels per pass.
  template <BitOp OP>
  static void wpanels(int np, const std::uint64_t* a, std::size_t nwords, const std::uint64_t* wp,
                      v8i pc[8]) {
    for (int q = 0; q < np; q += 2) {
      const std::uint64_t* panel[2] = {
          wp + static_cast<std::size_t>(q) * nwords * kPanelRows,
          wp + static_cast<std::size_t>(q + 1 < np ? q + 1 : q) * nwords * kPanelRows};
      if (q + 1 < np)
        wpanels_n<OP, 2>(a, nwords, panel, pc + q);
      else
        wpanels_n<OP, 1>(a, nwords, panel, pc + q);
    }
  }

  // One unpacked row of A against 8 W rows: vectors run along k (2 words per register); each
  // column's lanes are summed at the end (ADDV), an odd last word is counted on its own.
  template <BitOp OP>
  static v8i rows(const std::uint64_t* a, std::size_t nwords, const std::uint64_t* const wr[8]) {
    uint32x4_t tot[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) tot[j] = vdupq_n_u32(0);
    const std::size_t nvec = nwords / 2;
    for (std::size_t v0 = 0; v0 < nvec; v0 += kChunk) {
      const std::size_t v1 = min_size(nvec, v0 + kChunk);  // a lane gains ≤ 16 per step too
      uint16x8_t acc[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) acc[j] = vdupq_n_u16(0);
      for (std::size_t v = v0; v < v1; ++v) {
        const uint8x16_t av = load_u8(a + 2 * v);
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j)
          acc[j] = vpadalq_u8(acc[j], vcntq_u8(combine<OP>(av, load_u8(wr[j] + 2 * v))));
      }
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) tot[j] = vpadalq_u16(tot[j], acc[j]);
    }
    v8i out;
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      std::uint32_t s = vaddvq_u32(tot[j]);
      if (nwords % 2)
        s += static_cast<std::uint32_t>(
            __builtin_popcountll(combine64<OP>(a[nwords - 1], wr[j][nwords - 1])));
      out[j] = static_cast<std::int32_t>(s);
    }
    return out;
  }
};

}  // namespace
}  // namespace neon_impl

const KernelSet* neon_kernels() {
  static const KernelSet set = {"neon", &neon_impl::panels_entry<neon_impl::Micro>,
                                &neon_impl::rows_entry<neon_impl::Micro>,
                                &neon_impl::wpanels_entry<neon_impl::Micro>};
  return &set;
}

}  // namespace binarynet
