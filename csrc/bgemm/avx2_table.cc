// The "avx2-table" kernels: the previous AVX2 popcount GEMM, kept by name (kernel="avx2-table")
// for the side-by-side benchmark and the tests; the default AVX2 variant is avx2.cc (carry-save).
// AVX2 + POPCNT + BMI2, compiled with those flags; only called after the run-time CPU check of
// kernel_choice.cc.
//
// AVX2 has no vector popcount. The count uses the nibble table: VPSHUFB looks up the popcount of
// the low and of the high nibble of every byte (a 16-entry table per 128-bit lane), giving byte
// counts ≤ 8 per word; those are summed in byte lanes for up to 31 words (≤ 248) and only then
// widened with VPSADBW (sum of the 8 bytes of each 64-bit lane) — per word and row:
// xor, and, shift, and, 2 × shuffle, 2 × add, i.e. 8 single-cycle ops per 4 words on 4 vector
// pipes, about 2 words per cycle (scalar POPCNT, xor + popcnt + add on the integer ALUs plus two
// loads, measured slower here).
//
// Micro-kernel: one panel (8 rows of A = 2 ymm of 4 rows) × 4 columns at a time (8 byte
// accumulators; 16 ymm registers in all), run twice for the 8 columns of a tile.
#include <immintrin.h>

#define BN_KERNEL_NS avx2_table_impl
#define BN_MOVEMASK8(v) static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(__m256i(v))))
#define BN_STORE_PARTIAL8(p, v, nc)                                                               \
  _mm256_maskstore_epi32(p, __m256i(v8i{0, 1, 2, 3, 4, 5, 6, 7} < static_cast<std::int32_t>(nc)), \
                         __m256i(v))
#include "bgemm/kernel_loops.h"

namespace binarynet {
namespace avx2_table_impl {
namespace {

constexpr std::size_t kChunk = 31;

template <BitOp OP>
inline __m256i combine(__m256i a, __m256i b) {
  if constexpr (OP == BitOp::Xor) return _mm256_xor_si256(a, b);
  return _mm256_and_si256(a, b);
}

inline __m256i nibble_table() {
  return _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  //
                          0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
}

// Byte counts of x (each ≤ 8).
inline __m256i byte_counts(__m256i x, __m256i table, __m256i low4) {
  const __m256i lo = _mm256_and_si256(x, low4);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
  return _mm256_add_epi8(_mm256_shuffle_epi8(table, lo), _mm256_shuffle_epi8(table, hi));
}

template <BitOp OP>
inline void panel_4cols(const std::uint64_t* a, std::size_t nwords,
                        const std::uint64_t* const wr[4], __m256i tot[2][4]) {
  const __m256i table = nibble_table(), low4 = _mm256_set1_epi8(0x0f),
                zero = _mm256_setzero_si256();
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) tot[h][j] = zero;
  for (std::size_t k0 = 0; k0 < nwords; k0 += kChunk) {
    const std::size_t k1 = min_size(nwords, k0 + kChunk);
    __m256i acc[2][4];
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h)
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) acc[h][j] = zero;
    for (std::size_t k = k0; k < k1; ++k) {
      const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k * kPanelRows));
      const __m256i a1 =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k * kPanelRows + 4));
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const __m256i b = _mm256_set1_epi64x(static_cast<long long>(wr[j][k]));
        acc[0][j] = _mm256_add_epi8(acc[0][j], byte_counts(combine<OP>(a0, b), table, low4));
        acc[1][j] = _mm256_add_epi8(acc[1][j], byte_counts(combine<OP>(a1, b), table, low4));
      }
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h)
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j)
        tot[h][j] = _mm256_add_epi64(tot[h][j], _mm256_sad_epu8(acc[h][j], zero));
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
    alignas(32) std::int32_t tile[8][8];
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      __m256i tot[2][4];
      panel_4cols<OP>(a, nwords, wr + 4 * half, tot);
      alignas(32) std::uint64_t lanes[2][4][4];
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h)
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j)
          _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[h][j]), tot[h][j]);
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h)
#pragma GCC unroll 4
        for (int l = 0; l < 4; ++l)
#pragma GCC unroll 4
          for (int j = 0; j < 4; ++j)
            tile[h * 4 + l][4 * half + j] = static_cast<std::int32_t>(lanes[h][j][l]);
    }
    Sink s = sink;  // fields in registers (see avx512.cc)
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l) s(l, load8(tile[l]));
  }

  template <BitOp OP>
  static void wpanels(int np, const std::uint64_t* a, std::size_t nwords, const std::uint64_t* wp,
                      v8i pc[8]) {
    generic_wpanels<OP>(np, a, nwords, wp, pc);
  }

  template <BitOp OP>
  static v8i rows(const std::uint64_t* a, std::size_t nwords, const std::uint64_t* const wr[8]) {
    v8i out;
    const __m256i table = nibble_table(), low4 = _mm256_set1_epi8(0x0f),
                  zero = _mm256_setzero_si256();
    __m256i tot[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) tot[j] = zero;
    const std::size_t nvec = nwords / 4;
    for (std::size_t v0 = 0; v0 < nvec; v0 += kChunk) {
      const std::size_t v1 = min_size(nvec, v0 + kChunk);
      __m256i acc[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) acc[j] = zero;
      for (std::size_t v = v0; v < v1; ++v) {
        const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 4 * v));
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          const __m256i bv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr[j] + 4 * v));
          acc[j] = _mm256_add_epi8(acc[j], byte_counts(combine<OP>(av, bv), table, low4));
        }
      }
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) tot[j] = _mm256_add_epi64(tot[j], _mm256_sad_epu8(acc[j], zero));
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      alignas(32) std::uint64_t l[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(l), tot[j]);
      std::uint64_t s = l[0] + l[1] + l[2] + l[3];
      for (std::size_t k = nvec * 4; k < nwords; ++k)
        s += static_cast<std::uint64_t>(_mm_popcnt_u64(combine64<OP>(a[k], wr[j][k])));
      out[j] = static_cast<std::int32_t>(s);
    }
    return out;
  }
};

}  // namespace
}  // namespace avx2_table_impl

const KernelSet* avx2_table_kernels() {
  static const KernelSet set = {"avx2-table",
                                &avx2_table_impl::panels_entry<avx2_table_impl::Micro>,
                                &avx2_table_impl::rows_entry<avx2_table_impl::Micro>,
                                &avx2_table_impl::wpanels_entry<avx2_table_impl::Micro>};
  return &set;
}

}  // namespace binarynet
