// AVX2 kernels (AVX2 + POPCNT + BMI2): the carry-save (Harley–Seal) popcount GEMM. Compiled with
// those flags; only called after the run-time CPU check of kernel_choice.cc. The previous kernel,
// the nibble table on every word, is avx2_table.cc (variant "avx2-table"); below 24 words per
// row this variant runs it too (panels_select at the end).
//
// AVX2 has no vector popcount; the nibble table (VPSHUFB on the low and high nibbles, byte counts
// summed and widened by VPSADBW) costs 8 vector ops per 4 words with the XOR. Harley–Seal (Muła,
// Kurz, Lemire, "Faster Population Counts Using AVX2 Instructions", 2018) counts a stream of
// words with carry-save adders instead. A CSA adds two words x, y to a state word s bit by bit:
//     u = x ⊕ y,  carry = (x ∧ y) ∨ (u ∧ s),  s ← s ⊕ u     so that  s + x + y = s' + 2·carry;
// `ones` takes the XORed words two at a time and passes each carry to `twos`, two of those make a
// carry for `fours`, two of those a carry of weight 8, which alone goes through the nibble table:
//     Σ_k popcount(x_k) = 8·Σ popcount(carry8) + 4·popcount(fours) + 2·popcount(twos)
//                         + popcount(ones)
// (the state words counted once, at the end). Per 8 words of a dot product: 8 XORs, 7 CSAs (35
// ops) and one table count (7): 6.25 ops per 4 words instead of 8, and only AND / OR / XOR, which
// all 4 vector pipes run (the table's shuffles and shifts have 2). Each 64-bit lane is a different
// row, so one counter serves 4 dot products with no horizontal sums.
//
// What bounds it (AMD Zen 4 running AVX2 code; docs/results.md has the measurements): every
// stream needs its counter in registers (ones, twos, fours, byte counts), and with AVX2's 16 one
// pass holds two streams, the two halves of a panel (rows 0–3, 4–7) against one W row, sharing
// each broadcast of w[k]. The hot loop then runs ~103 vector ops per 64 words at ~3.6 a cycle
// (4 pipes): 1.2× the table kernel on the whole GEMM. Measured and not used: one stream at a time
// (a broadcast per word: 1.10×); precomputed pair XORs (a₁ ⊕ a₂ per panel, w₁ ⊕ w₂ and prefix XORs
// per column: 5–6 ops per two words, but 1–2 more vector loads, and the core issues only 2 of
// those a cycle, broadcasts included: no faster); the weight-8 carries counted by scalar POPCNT
// (store, 4 × POPCNT m64, add: 0.8–0.97×); one column of each tile on the scalar units, XOR +
// POPCNT + ADD inside the vector loop (no gain: the loop already issues ~4 instructions a cycle,
// about what this core sustains).
//
// Micro-kernel: one panel (8 rows) × 8 columns, column by column, two streams per column. The
// batch-1 path on prepacked W panels (wpanels) is the same loop with the roles swapped: a W panel
// (8 outputs) against the broadcast words of one A row.
#include <immintrin.h>

#define BN_KERNEL_NS avx2_impl
#define BN_MOVEMASK8(v) static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(__m256i(v))))
#define BN_STORE_PARTIAL8(p, v, nc)                                                               \
  _mm256_maskstore_epi32(p, __m256i(v8i{0, 1, 2, 3, 4, 5, 6, 7} < static_cast<std::int32_t>(nc)), \
                         __m256i(v))
#include "bgemm/kernel_loops.h"

namespace binarynet {
namespace avx2_impl {
namespace {

// Byte counters: each adds at most 8 per step, so 31 steps fit in a byte (≤ 248) before VPSADBW
// widens them.
constexpr unsigned kByteSteps = 31;

template <BitOp OP>
__attribute__((always_inline)) inline __m256i combine(__m256i a, __m256i b) {
  if constexpr (OP == BitOp::Xor) return _mm256_xor_si256(a, b);
  return _mm256_and_si256(a, b);
}

// Byte counts of x (each ≤ 8): the nibble table.
__attribute__((always_inline)) inline __m256i byte_counts(__m256i x) {
  const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  //
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i lo = _mm256_and_si256(x, low4);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
  return _mm256_add_epi8(_mm256_shuffle_epi8(table, lo), _mm256_shuffle_epi8(table, hi));
}

// Carry-save adder: s + x + y = (s ⊕ x ⊕ y) + 2·maj(s, x, y); s takes the sum bit, the carry is
// returned. (The state enters last, so its dependency chain is one XOR per CSA.)
__attribute__((always_inline)) inline __m256i csa(__m256i& s, __m256i x, __m256i y) {
  const __m256i u = _mm256_xor_si256(x, y);
  const __m256i carry = _mm256_or_si256(_mm256_and_si256(x, y), _mm256_and_si256(u, s));
  s = _mm256_xor_si256(s, u);
  return carry;
}

// Word k of rows 4h .. 4h + 3 of a panel, combined with the broadcast word b.
template <BitOp OP>
__attribute__((always_inline)) inline __m256i word(const std::uint64_t* panel, std::size_t k, int h,
                                                   __m256i b) {
  return combine<OP>(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k * kPanelRows + 4 * h)), b);
}

__attribute__((always_inline)) inline __m256i broadcast(const std::uint64_t* p) {
  return _mm256_set1_epi64x(static_cast<long long>(*p));
}

// Counter state of one stream (4 rows against one broadcast row): the bit-sliced ones, twos and
// fours, the byte counts of the weight-8 carries, and their widened total.
struct Counter {
  __m256i ones, twos, fours, eights_bytes, eights;
};

// Four words k .. k + 3 of both halves into the counters: two CSAs into `ones` per half, whose
// carries go through one CSA into `twos`; returns the carries of weight 4 in f0, f1.
template <BitOp OP>
__attribute__((always_inline)) inline void four_words(const std::uint64_t* panel,
                                                      const std::uint64_t* b, std::size_t k,
                                                      Counter& c0, Counter& c1, __m256i& f0,
                                                      __m256i& f1) {
  __m256i b0 = broadcast(b + k), b1 = broadcast(b + k + 1);
  const __m256i x0 = csa(c0.ones, word<OP>(panel, k, 0, b0), word<OP>(panel, k + 1, 0, b1));
  const __m256i x1 = csa(c1.ones, word<OP>(panel, k, 1, b0), word<OP>(panel, k + 1, 1, b1));
  b0 = broadcast(b + k + 2);
  b1 = broadcast(b + k + 3);
  const __m256i y0 = csa(c0.ones, word<OP>(panel, k + 2, 0, b0), word<OP>(panel, k + 3, 0, b1));
  const __m256i y1 = csa(c1.ones, word<OP>(panel, k + 2, 1, b0), word<OP>(panel, k + 3, 1, b1));
  f0 = csa(c0.twos, x0, y0);
  f1 = csa(c1.twos, x1, y1);
}

// The final count of a stream, per 64-bit lane: 8·(widened carries) + the state words' counts +
// `tail` (byte counts of the words past the last block, ≤ 7 · 8): bytes ≤ 8 + 16 + 32 + 56.
__attribute__((always_inline)) inline __m256i finish(const Counter& c, __m256i tail) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i s = byte_counts(c.fours);
  s = _mm256_add_epi8(s, s);
  s = _mm256_add_epi8(s, byte_counts(c.twos));
  s = _mm256_add_epi8(s, s);
  s = _mm256_add_epi8(_mm256_add_epi8(s, byte_counts(c.ones)), tail);
  const __m256i eights = _mm256_add_epi64(c.eights, _mm256_sad_epu8(c.eights_bytes, zero));
  return _mm256_add_epi64(_mm256_slli_epi64(eights, 3), _mm256_sad_epu8(s, zero));
}

// Σ_k popcount(OP(panel row l, word k; b[k])) for the 8 rows of a panel: lanes of out[0] are rows
// 0–3, of out[1] rows 4–7 (64-bit counts). Blocks of 8 words through the counters, the last
// nwords % 8 words through the nibble table directly.
template <BitOp OP>
__attribute__((always_inline)) inline void count_panel(const std::uint64_t* panel,
                                                       std::size_t nwords, const std::uint64_t* b,
                                                       __m256i out[2]) {
  const __m256i zero = _mm256_setzero_si256();
  Counter c0{zero, zero, zero, zero, zero}, c1 = c0;
  const std::size_t blocks = nwords / 8;
  unsigned steps = 0;
  for (std::size_t k = 0; k < blocks * 8; k += 8) {
    __m256i fa0, fa1, fb0, fb1;
    four_words<OP>(panel, b, k, c0, c1, fa0, fa1);
    four_words<OP>(panel, b, k + 4, c0, c1, fb0, fb1);
    c0.eights_bytes = _mm256_add_epi8(c0.eights_bytes, byte_counts(csa(c0.fours, fa0, fb0)));
    c1.eights_bytes = _mm256_add_epi8(c1.eights_bytes, byte_counts(csa(c1.fours, fa1, fb1)));
    if (++steps == kByteSteps) {
      c0.eights = _mm256_add_epi64(c0.eights, _mm256_sad_epu8(c0.eights_bytes, zero));
      c1.eights = _mm256_add_epi64(c1.eights, _mm256_sad_epu8(c1.eights_bytes, zero));
      c0.eights_bytes = c1.eights_bytes = zero;
      steps = 0;
    }
  }
  __m256i t0 = zero, t1 = zero;
  for (std::size_t k = blocks * 8; k < nwords; ++k) {
    const __m256i bk = broadcast(b + k);
    t0 = _mm256_add_epi8(t0, byte_counts(word<OP>(panel, k, 0, bk)));
    t1 = _mm256_add_epi8(t1, byte_counts(word<OP>(panel, k, 1, bk)));
  }
  if (blocks == 0) {  // the counters are empty: only the table counts
    out[0] = _mm256_sad_epu8(t0, zero);
    out[1] = _mm256_sad_epu8(t1, zero);
    return;
  }
  out[0] = finish(c0, t0);
  out[1] = finish(c1, t1);
}

// The 8 low halves of the 64-bit lanes of (lo, hi) as int32 lanes 0–3, 4–7.
__attribute__((always_inline)) inline v8i narrow(__m256i lo, __m256i hi) {
  const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  const __m128i l = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(lo, idx));
  const __m128i h = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(hi, idx));
  return v8i(_mm256_inserti128_si256(_mm256_castsi128_si256(l), h, 1));
}

// The counts of a tile, column j of a panel against W row wr[j] in cols[j] (lanes: rows). Not
// inlined into the tile loop: the counting loop needs every vector register, which it would share
// there with the epilogue's thresholds.
template <BitOp OP>
__attribute__((noinline)) void count_tile(const std::uint64_t* a, std::size_t nwords,
                                          const std::uint64_t* const wr[8],
                                          std::int32_t cols[8][8]) {
#pragma GCC unroll 1
  for (int j = 0; j < 8; ++j) {
    __m256i c[2];
    count_panel<OP>(a, nwords, wr[j], c);
    store8(cols[j], narrow(c[0], c[1]));
  }
}

struct Micro {
  static constexpr int kMaxPanels = 1;
  static constexpr bool kCombinesPlanes = false;

  template <BitOp OP, class Sink>
  static void panels(int /*np*/, const std::uint64_t* a, std::size_t nwords,
                     const std::uint64_t* const wr[8], Sink& sink) {
    // Column j's counts (rows in lanes), transposed into the row-major tile the sink reads.
    alignas(32) std::int32_t cols[8][8];
    count_tile<OP>(a, nwords, wr, cols);
    alignas(32) std::int32_t tile[8][8];
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l)
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) tile[l][j] = cols[j][l];
    Sink s = sink;  // fields in registers (see avx512.cc)
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l) s(l, load8(tile[l]));
  }

  // One unpacked row of A against np ≤ 8 prepacked W panels: lanes are outputs, the A words are
  // the broadcast operand.
  template <BitOp OP>
  static void wpanels(int np, const std::uint64_t* a, std::size_t nwords, const std::uint64_t* wp,
                      v8i pc[8]) {
#pragma GCC unroll 1
    for (int q = 0; q < np; ++q) {
      __m256i c[2];
      count_panel<OP>(wp + static_cast<std::size_t>(q) * nwords * kPanelRows, nwords, a, c);
      pc[q] = narrow(c[0], c[1]);
    }
  }
};

// Below this many words per row the counters do not pay for their final counts (3 table counts per
// stream of 4 rows) and the table kernel, which also shares each A load between 4 columns, is
// faster: measured on Zen 4, 512 × 1024 × K, carry-save / table = 0.80 at 8 words, 0.86 at 10,
// 0.95 at 16, 0.96 at 18 (the ConvNet's 3 × 3 × 128), 1.03 at 25, 1.08 at 36 (1.19 at 64 on
// 256 × 4096 × 4096, 1.24 at 128).
constexpr std::size_t kCarrySaveMinWords = 24;

void panels_select(BitOp op, const std::uint64_t* panels, std::size_t row0, std::size_t rows,
                   std::size_t nwords, const std::uint64_t* w, std::size_t ldw, std::size_t n0,
                   std::size_t n1, const Epilogue& ep) {
  if (nwords < kCarrySaveMinWords)
    return avx2_table_kernels()->panels(op, panels, row0, rows, nwords, w, ldw, n0, n1, ep);
  panels_entry<Micro>(op, panels, row0, rows, nwords, w, ldw, n0, n1, ep);
}

}  // namespace
}  // namespace avx2_impl

const KernelSet* avx2_kernels() {
  // One unpacked row of A against 8 W rows (the batch-1 path without prepacked W) is the table
  // kernel's: the counters above pay off across a panel's rows, which this path does not have.
  static const KernelSet set = {"avx2", &avx2_impl::panels_select, avx2_table_kernels()->rows,
                                &avx2_impl::wpanels_entry<avx2_impl::Micro>};
  return &set;
}

}  // namespace binarynet
