// AVX-512 kernels (F + BW + VL + VPOPCNTDQ). Compiled with those flags; only called after the
// run-time CPU check of kernel_choice.cc.
//
// Micro-kernel: a tile of 3 panels (24 rows of A) × 8 columns (rows of W), 24 zmm accumulators.
// Per word k: 3 loads bring word k of the 24 A rows (8 per register); for each of the 8 columns,
// word k of that W row is broadcast and
//     acc[p][j] += VPOPCNTQ(a[p] ⊕ broadcast(w[j][k]))
// updates 8 lanes (8 rows) at once. 3 loads + 8 broadcasts feed 24 × (xor, popcount, add), so the
// loop is bound by the vector ALUs, not by loads. On Zen 4 (512-bit ops run as 2 × 256 bits)
// VPOPCNTQ zmm issues once per cycle and xor/add twice, i.e. 1.5 cycles per (xor, popcount, add),
// which this loop reaches (measured ~0.43 ns per triple at ~3.5 GHz). Lanes are rows, so the
// accumulators need no horizontal reduction; at the end each panel's 8 × 8 block is narrowed to
// int32 and transposed in registers into the (row, column) tile the epilogue reads.
#include <immintrin.h>

#define BN_KERNEL_NS avx512_impl
#define BN_MOVEMASK8(v) static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(__m256i(v))))
#define BN_STORE_PARTIAL8(p, v, nc) \
  _mm256_mask_storeu_epi32(p, static_cast<__mmask8>((1u << (nc)) - 1), __m256i(v))
#define BN_LOAD_PARTIAL8(p, nc) \
  v8i(_mm256_maskz_loadu_epi32(static_cast<__mmask8>((1u << (nc)) - 1), p))
#include "bgemm/kernel_loops.h"

namespace binarynet {
namespace avx512_impl {
namespace {

template <BitOp OP>
inline __m512i combine(__m512i a, __m512i b) {
  if constexpr (OP == BitOp::Xor) return _mm512_xor_si512(a, b);
  return _mm512_and_si512(a, b);
}

// In-register transpose of 8 rows of 8 int32 (AVX2 instructions, available under AVX-512VL).
__attribute__((always_inline)) inline void transpose8x8(__m256i r[8]) {
  __m256i t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
  }
}

// Horizontal sums of 8 vectors of 8 int64: returns int32 lanes j = Σ lanes of v[j].
__attribute__((always_inline)) inline __m256i reduce8(__m512i v[8]) {
  // Pairwise: add the unpacked halves so each step halves the vector count and doubles the
  // number of distinct sums per vector.
  __m512i s[4], q[2];
  for (int i = 0; i < 4; ++i)
    s[i] = _mm512_add_epi64(_mm512_unpacklo_epi64(v[2 * i], v[2 * i + 1]),
                            _mm512_unpackhi_epi64(v[2 * i], v[2 * i + 1]));
  // s[i] lanes (per 128-bit block b): [Σ v[2i] pair, Σ v[2i+1] pair]
  for (int i = 0; i < 2; ++i) {
    const __m512i lo = _mm512_shuffle_i64x2(s[2 * i], s[2 * i + 1], 0x88);  // blocks 0,2 | 0,2
    const __m512i hi = _mm512_shuffle_i64x2(s[2 * i], s[2 * i + 1], 0xDD);  // blocks 1,3 | 1,3
    q[i] = _mm512_add_epi64(lo, hi);
  }
  // q[i] blocks: [s2i(b0+b1), s2i(b2+b3), s2i+1(b0+b1), s2i+1(b2+b3)] → fold again
  const __m512i lo = _mm512_shuffle_i64x2(q[0], q[1], 0x88);
  const __m512i hi = _mm512_shuffle_i64x2(q[0], q[1], 0xDD);
  const __m512i r = _mm512_add_epi64(lo, hi);
  // r blocks: [v0,v1 | v2,v3 | v4,v5 | v6,v7] sums, one 64-bit lane each.
  return _mm512_cvtepi64_epi32(r);
}

template <BitOp OP, int P, bool kCombinePlanes, class Sink>
__attribute__((always_inline)) inline void tile_kernel(const std::uint64_t* a, std::size_t nwords,
                                                       const std::uint64_t* const wr[8],
                                                       Sink& sink) {
  // (The pragmas make sure the tile loops are unrolled whatever GCC's size heuristics say, so the
  // accumulators live in registers.)
  __m512i acc[P][8];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) acc[p][j] = _mm512_setzero_si512();
  const std::size_t ps = nwords * kPanelRows;  // words per panel
  for (std::size_t k = 0; k < nwords; ++k) {
    __m512i av[P];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) av[p] = _mm512_loadu_si512(a + p * ps + k * kPanelRows);
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      const __m512i b = _mm512_set1_epi64(static_cast<long long>(wr[j][k]));
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p)
        acc[p][j] = _mm512_add_epi64(acc[p][j], _mm512_popcnt_epi64(combine<OP>(av[p], b)));
    }
  }
  // A local copy of the sink: its fields then live in registers (the output stores could alias
  // the caller's object, which would force a reload of every field for every row).
  Sink s = sink;
  if constexpr (kCombinePlanes) {
    // Bit planes: lane q of panel p is plane q of output row p. Σ_q 2^q·pc_q per column: shift
    // each lane by its plane, then sum the 8 lanes of the 8 column vectors at once (reduce8).
    const __m512i shifts = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) {
      __m512i v[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) v[j] = _mm512_sllv_epi64(acc[p][j], shifts);
      s.combined(p, v8i(reduce8(v)));
    }
    return;
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p) {
    __m256i r[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) r[j] = _mm512_cvtepi64_epi32(acc[p][j]);  // lanes: rows
    transpose8x8(r);                                                      // lanes: columns
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l) s(p * 8 + l, v8i(r[l]));
  }
}

struct Micro {
  static constexpr int kMaxPanels = 3;
  static constexpr bool kCombinesPlanes = true;

  template <BitOp OP, class Sink>
  static void panels(int np, const std::uint64_t* a, std::size_t nwords,
                     const std::uint64_t* const wr[8], Sink& sink) {
    switch (np) {
      case 3: tile_kernel<OP, 3, false>(a, nwords, wr, sink); break;
      case 2: tile_kernel<OP, 2, false>(a, nwords, wr, sink); break;
      default: tile_kernel<OP, 1, false>(a, nwords, wr, sink); break;
    }
  }

  template <BitOp OP, class Sink>
  static void panels_planes(int np, const std::uint64_t* a, std::size_t nwords,
                            const std::uint64_t* const wr[8], Sink& sink) {
    switch (np) {
      case 3: tile_kernel<OP, 3, true>(a, nwords, wr, sink); break;
      case 2: tile_kernel<OP, 2, true>(a, nwords, wr, sink); break;
      default: tile_kernel<OP, 1, true>(a, nwords, wr, sink); break;
    }
  }

  // One unpacked row of A against np ≤ 8 prepacked W panels (kernel.h): per word, one broadcast
  // of A and np loads of 8 W rows each; lanes are outputs, so no horizontal sums. Panels past np
  // repeat the last one (computed and dropped), so the loop has no edge case.
  template <BitOp OP>
  static void wpanels(int np, const std::uint64_t* a, std::size_t nwords, const std::uint64_t* wp,
                      v8i pc[8]) {
    const std::uint64_t* panel[8];
#pragma GCC unroll 8
    for (int q = 0; q < 8; ++q)
      panel[q] = wp + static_cast<std::size_t>(q < np ? q : np - 1) * nwords * kPanelRows;
    __m512i acc[8];
#pragma GCC unroll 8
    for (int q = 0; q < 8; ++q) acc[q] = _mm512_setzero_si512();
    for (std::size_t k = 0; k < nwords; ++k) {
      const __m512i b = _mm512_set1_epi64(static_cast<long long>(a[k]));
#pragma GCC unroll 8
      for (int q = 0; q < 8; ++q)
        acc[q] = _mm512_add_epi64(
            acc[q], _mm512_popcnt_epi64(combine<OP>(_mm512_loadu_si512(panel[q] + k * 8), b)));
    }
#pragma GCC unroll 8
    for (int q = 0; q < 8; ++q) {
      asm("" : "+v"(acc[q]));  // (keeps the accumulators out of the stack inside the loop)
      pc[q] = v8i(_mm512_cvtepi64_epi32(acc[q]));
    }
  }

  // One unpacked row of A against 8 W rows: vectors run along k (8 words per register), so each
  // column's 8 lanes are summed at the end; the tail is a masked load (zeros past nwords).
  template <BitOp OP>
  __attribute__((always_inline)) static v8i rows(const std::uint64_t* a, std::size_t nwords,
                                                 const std::uint64_t* const wr[8]) {
    __m512i acc[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) acc[j] = _mm512_setzero_si512();
    std::size_t k = 0;
    for (; k + 8 <= nwords; k += 8) {
      const __m512i av = _mm512_loadu_si512(a + k);
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j)
        acc[j] = _mm512_add_epi64(
            acc[j], _mm512_popcnt_epi64(combine<OP>(av, _mm512_loadu_si512(wr[j] + k))));
    }
    if (k < nwords) {
      const __mmask8 m = static_cast<__mmask8>((1u << (nwords - k)) - 1);
      const __m512i av = _mm512_maskz_loadu_epi64(m, a + k);
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j)
        acc[j] = _mm512_add_epi64(
            acc[j], _mm512_popcnt_epi64(combine<OP>(av, _mm512_maskz_loadu_epi64(m, wr[j] + k))));
    }
    return v8i(reduce8(acc));
  }
};

}  // namespace
}  // namespace avx512_impl

const KernelSet* avx512_kernels() {
  static const KernelSet set = {"avx512", &avx512_impl::panels_entry<avx512_impl::Micro>,
                                &avx512_impl::rows_entry<avx512_impl::Micro>,
                                &avx512_impl::wpanels_entry<avx512_impl::Micro>};
  return &set;
}

}  // namespace binarynet
