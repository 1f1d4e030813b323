// AMX kernel of the popcount GEMM (AMX-TILE + AMX-INT8, with AVX-512 F/BW/VL for the expansion).
// Compiled with those flags; only called after cpu_has_amx() (kernel_choice.cc), which also asks
// Linux for the tile state.
//
// The maths. A ±1 value v with sign bit b is v = 1 − 2b, so for one pair of bits
//     a·w = (1 − 2bₐ)(1 − 2b_w) = 1 − 2·(bₐ ⊕ b_w),
// and over the 64·nwords bit positions of two packed rows (padding bits included: zero in both,
// i.e. +1·+1)
//     dot₊(a, w) = 64·nwords − 2·popcount(a ⊕ w)   ⇒   pc = (64·nwords − dot₊) / 2,
// the popcount the XOR kernels produce; the shared epilogue (bgemm/kernel_loops.h, RowSink) then
// turns pc into base − 2·pc (+ correction, or threshold bits) exactly as for every other kernel.
// dot₊ is a dot product of int8 vectors of ±1: TDPBSSD computes it exactly
// (|sums| ≤ 64·nwords < 2³¹).
//
// Layout. Bits are expanded to ±1 bytes right before use: VPMOVM2B turns a 64-bit word into 64
// bytes 0 / −1, OR 1 makes them +1 / −1. The weights W are the tiles' first operand (16 W rows
// × 64 bytes = one word of each): expanded per block of 32 columns, shared by every row of A.
// The activations A (rows of the task, packed in panels) are the second operand, which TDPBSSD
// wants in the "VNNI" layout (tile row q holds bytes 4q .. 4q + 3 of each of 16 A rows): each
// word of 16 rows is expanded to 16 × 64 bytes and transposed as a 16 × 16 matrix of 4-byte
// groups, once per task. The result tile is C[n][m] (W rows × A rows); its 16 × 16 int32 are
// transposed back in registers and handed to the epilogue row by row.
//
// Blocking: 2 × 2 result tiles (32 columns × 32 rows, tiles 0–3), two W tiles (4, 5) and two
// A tiles (6, 7) per word: 4 tile loads per 4 TDPBSSD (16 × 16 × 64 products each). The result
// stays in the tiles over the whole reduction. The next column block of W is expanded inside the
// reduction loop (the vector ports are idle while the AMX unit multiplies), and the output lines
// of a tile are prefetched before its reduction. Below kMinRows rows per task, the expansion of W
// does not pay for itself: the AVX-512 kernel runs instead (and for the AND bit-plane GEMM).
#include <immintrin.h>

#include "amx_tiles.h"

#define BN_KERNEL_NS amx_impl
#define BN_MOVEMASK8(v) static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(__m256i(v))))
#define BN_STORE_PARTIAL8(p, v, nc) \
  _mm256_mask_storeu_epi32(p, static_cast<__mmask8>((1u << (nc)) - 1), __m256i(v))
#define BN_LOAD_PARTIAL8(p, nc) \
  v8i(_mm256_maskz_loadu_epi32(static_cast<__mmask8>((1u << (nc)) - 1), p))
#include "bgemm/kernel_loops.h"

namespace binarynet {
namespace amx_impl {
namespace {

using amx::configure_tiles;
using amx::kTileBytes;
constexpr std::size_t kMinRows = 32;  // fewer rows per task: the AVX-512 kernel (measured)

// 64 bits → 64 bytes: −1 where the bit is set, +1 where not.
__attribute__((always_inline)) inline __m512i signs(std::uint64_t bits) {
  return _mm512_or_si512(_mm512_movm_epi8(bits), _mm512_set1_epi8(1));
}

// Transposes 16 rows of 16 int32 in registers: 4 rounds, each swapping the off-diagonal blocks
// of size s (8, 4, 2, 1) of every 2s × 2s block.
__attribute__((always_inline)) inline void transpose16(__m512i r[16]) {
#pragma GCC unroll 4
  for (int s = 8; s >= 1; s >>= 1) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __mmask16 hi = _mm512_test_epi32_mask(lane, _mm512_set1_epi32(s));  // lanes c with c & s
    // first[c] = c & s ? b[c − s] : a[c];   second[c] = c & s ? b[c] : a[c + s]
    // (permutex2var: index 16 + i selects b[i])
    const __m512i first =
        _mm512_mask_blend_epi32(hi, lane, _mm512_add_epi32(lane, _mm512_set1_epi32(16 - s)));
    const __m512i second = _mm512_mask_blend_epi32(hi, _mm512_add_epi32(lane, _mm512_set1_epi32(s)),
                                                   _mm512_add_epi32(lane, _mm512_set1_epi32(16)));
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      if (i & s) continue;
      const __m512i a = r[i], b = r[i + s];
      r[i] = _mm512_permutex2var_epi32(a, first, b);
      r[i + s] = _mm512_permutex2var_epi32(a, second, b);
    }
  }
}

thread_local amx::Scratch a_scratch, w_scratch;

// A rows of the task (npanels panels of 8) → ngroups groups of 16 rows × nwords tiles, VNNI
// layout: tile (g, k) row q, bytes 4j .. 4j + 3 = the signs of bits 4q .. 4q + 3 of word k of
// A row 16g + j. Rows past the panels are zero bits (+1; their results are dropped).
void expand_activations(const std::uint64_t* panels, std::size_t npanels, std::size_t nwords,
                        std::size_t ngroups, std::int8_t* dst) {
  for (std::size_t g = 0; g < ngroups; ++g) {
    const std::size_t p0 = 2 * g, p1 = 2 * g + 1;
    for (std::size_t k = 0; k < nwords; ++k) {
      __m512i r[16];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        r[j] = signs(p0 < npanels ? panels[(p0 * nwords + k) * kPanelRows + j] : 0);
        r[8 + j] = signs(p1 < npanels ? panels[(p1 * nwords + k) * kPanelRows + j] : 0);
      }
      transpose16(r);
      std::int8_t* t = dst + (g * nwords + k) * kTileBytes;
#pragma GCC unroll 16
      for (int q = 0; q < 16; ++q) _mm512_store_si512(t + 64 * q, r[q]);
    }
  }
}

// The 32 W rows of the column block at n (past n1 the last real row again; its results are
// dropped): tile (t, k) row j of the block's expansion = the signs of word k of row 16t + j.
inline void block_rows(const std::uint64_t* w, std::size_t ldw, std::size_t n, std::size_t n1,
                       const std::uint64_t* src[32]) {
  for (std::size_t j = 0; j < 32; ++j) src[j] = w + (n + j < n1 ? n + j : n1 - 1) * ldw;
}

// Word k of W rows j0 .. j1 − 1 of a block into its expansion dst.
__attribute__((always_inline)) inline void expand_weight_words(const std::uint64_t* const src[32],
                                                               std::size_t j0, std::size_t j1,
                                                               std::size_t k, std::size_t nwords,
                                                               std::int8_t* dst) {
  for (std::size_t j = j0; j < j1; ++j)
    _mm512_store_si512(dst + ((j / 16) * nwords + k) * kTileBytes + 64 * (j % 16),
                       signs(src[j][k]));
}

// A finished 2 × 2 block of result tiles waiting for its epilogue: tile 2t + h of c holds
// C[W row n + 16t + i][A row 16(g + h) + j] at c[2t + h][16i + j].
struct Pending {
  bool valid = false;
  std::size_t n = 0, g = 0;
  const std::int32_t* c = nullptr;  // [4][256]
};

// The epilogue of tile q of a pending block: transposed in registers to rows of A, pc =
// (64·nwords − dot) / 2 (see the top of this file), then the shared RowSink, 8 columns at a time.
template <bool kCorr, bool kBits>
__attribute__((always_inline)) inline void finish_tile(const Pending& p, int q, std::size_t row0,
                                                       std::size_t rows, std::size_t n1,
                                                       std::int32_t full, const Epilogue& ep) {
  const std::size_t col = p.n + 16 * static_cast<std::size_t>(q >> 1);
  const std::size_t r = (p.g + static_cast<std::size_t>(q & 1)) * 16;  // first A row
  if (col >= n1 || r >= rows) return;
  const std::int32_t* cq = p.c + 256 * q;
  __m512i v[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) v[i] = _mm512_load_si512(cq + 16 * i);
  transpose16(v);  // v[i] = A row r + i, 16 columns
  const std::size_t nr = min_size(16, rows - r);
  RowSink<1, kCorr, kBits> lo(ep, row0 + r, nr, col, min_size(8, n1 - col));
  const bool two = col + 8 < n1;
  RowSink<1, kCorr, kBits> hi(ep, row0 + r, nr, two ? col + 8 : col,
                              two ? min_size(8, n1 - col - 8) : 1);
  const __m512i base = _mm512_set1_epi32(full);
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) {
    const __m512i pc = _mm512_srai_epi32(_mm512_sub_epi32(base, v[i]), 1);
    lo(i, v8i(_mm512_castsi512_si256(pc)));
    if (two) hi(i, v8i(_mm512_extracti64x4_epi64(pc, 1)));
  }
}

template <bool kCorr, bool kBits>
void amx_loop(const std::uint64_t* panels, std::size_t row0, std::size_t rows, std::size_t nwords,
              const std::uint64_t* w, std::size_t ldw, std::size_t n0, std::size_t n1,
              const Epilogue& ep) {
  const std::size_t npanels = (rows + kPanelRows - 1) / kPanelRows;
  const std::size_t ngroups = (rows + 31) / 32 * 2;  // pairs of 16-row groups
  const std::size_t npairs = ngroups / 2;
  const std::size_t group_bytes = nwords * kTileBytes;
  std::int8_t* a = a_scratch.get<std::int8_t>(ngroups * group_bytes);
  // Two blocks of expanded W: this one and the next.
  std::int8_t* wbuf = w_scratch.get<std::int8_t>(4 * group_bytes);
  expand_activations(panels, npanels, nwords, ngroups, a);
  const std::int32_t full = static_cast<std::int32_t>(64 * nwords);
  // The vector ports are idle while the AMX unit multiplies, so the reduction loop of each 2 × 2
  // block also (1) expands the next column block of W: row pair i expands rows
  // [i·per, (i + 1)·per) of it, one word per step, and (2) runs the epilogue of the previous
  // block, one tile every nwords / 4 steps (its results wait in the other half of c).
  const std::size_t per = (32 + npairs - 1) / npairs;
  const std::uint64_t* src[32];
  block_rows(w, ldw, n0, n1, src);
  for (std::size_t k = 0; k < nwords; ++k) expand_weight_words(src, 0, 32, k, nwords, wbuf);
  alignas(64) std::int32_t c[2][4][256];
  Pending pend;
  int cb = 0;  // the half of c the next block's results go to
  configure_tiles();
  int cur = 0;
  for (std::size_t n = n0; n < n1; n += 32, cur ^= 1) {
    const std::int8_t* w0 = wbuf + 2 * static_cast<std::size_t>(cur) * group_bytes;
    const std::int8_t* w1 = w0 + group_bytes;
    std::int8_t* next = wbuf + 2 * static_cast<std::size_t>(cur ^ 1) * group_bytes;
    const bool has_next = n + 32 < n1;
    if (has_next) block_rows(w, ldw, n + 32, n1, src);
    for (std::size_t g = 0; g < ngroups; g += 2) {
      const std::size_t pair = g / 2;
      const std::size_t e0 = has_next ? min_size(32, pair * per) : 0;
      const std::size_t e1 = has_next ? min_size(32, e0 + per) : 0;
      // Prefetch (for writing) this block's output rows: they are written one block later.
      {
        RowSink<1, kCorr, kBits> sink(ep, row0 + g * 16, min_size(32, rows - g * 16), n, 8);
        sink.prefetch_rows(n1 - n < 32 ? n1 - n : 32);
      }
      const std::int8_t* a0 = a + g * group_bytes;
      const std::int8_t* a1 = a0 + group_bytes;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      int done = pend.valid ? 0 : 4;  // tiles of the pending block already finished
      for (std::size_t k = 0; k < nwords; ++k) {
        const std::size_t off = k * kTileBytes;
        _tile_loadd(4, w0 + off, 64);
        _tile_loadd(6, a0 + off, 64);
        _tile_dpbssd(0, 4, 6);
        _tile_loadd(7, a1 + off, 64);
        _tile_dpbssd(1, 4, 7);
        _tile_loadd(5, w1 + off, 64);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
        expand_weight_words(src, e0, e1, k, nwords, next);
        while (done < 4 && k * 4 >= static_cast<std::size_t>(done) * nwords)
          finish_tile<kCorr, kBits>(pend, done++, row0, rows, n1, full, ep);
      }
      while (done < 4) finish_tile<kCorr, kBits>(pend, done++, row0, rows, n1, full, ep);
      _tile_stored(0, c[cb][0], 64);
      _tile_stored(1, c[cb][1], 64);
      _tile_stored(2, c[cb][2], 64);
      _tile_stored(3, c[cb][3], 64);
      pend.valid = true;
      pend.n = n;
      pend.g = g;
      pend.c = &c[cb][0][0];
      cb ^= 1;
    }
  }
  _tile_release();
  if (pend.valid)
    for (int q = 0; q < 4; ++q) finish_tile<kCorr, kBits>(pend, q, row0, rows, n1, full, ep);
}

void amx_panels(BitOp op, const std::uint64_t* panels, std::size_t row0, std::size_t rows,
                std::size_t nwords, const std::uint64_t* w, std::size_t ldw, std::size_t n0,
                std::size_t n1, const Epilogue& ep) {
  if (op != BitOp::Xor || ep.planes != 1 || rows < kMinRows)
    return avx512_kernels()->panels(op, panels, row0, rows, nwords, w, ldw, n0, n1, ep);
  const bool corr = ep.corr != nullptr, bits = ep.bits != nullptr;
  if (!corr && !bits) return amx_loop<false, false>(panels, row0, rows, nwords, w, ldw, n0, n1, ep);
  if (!corr && bits) return amx_loop<false, true>(panels, row0, rows, nwords, w, ldw, n0, n1, ep);
  if (corr && !bits) return amx_loop<true, false>(panels, row0, rows, nwords, w, ldw, n0, n1, ep);
  return amx_loop<true, true>(panels, row0, rows, nwords, w, ldw, n0, n1, ep);
}

}  // namespace
}  // namespace amx_impl

const KernelSet* amx_kernels() {
  // Batch 1 to 3 (rows, wpanels) are bound by the weights' traffic: the AVX-512 kernels.
  static const KernelSet set = {"amx", &amx_impl::amx_panels, avx512_kernels()->rows,
                                avx512_kernels()->wpanels};
  return &set;
}

}  // namespace binarynet
