// The loops shared by the optimised kernels: tiling of (rows × columns) over a micro-kernel, and
// the epilogue (see kernel.h for the maths). Each kernel translation unit defines BN_KERNEL_NS
// (portable_impl, avx2_impl, avx512_impl) and then includes this file, so every function here is
// compiled — and auto-vectorised — once per ISA, under a different name each time (never share an
// inline symbol across translation units with different ISA flags: see kernel.h).
//
// A micro-kernel is a class with
//   static constexpr int kMaxPanels;   // panels (of 8 rows) per tile
//   template <BitOp OP> static void panels(int np, const uint64_t* a, size_t nwords,
//                                          const uint64_t* const wr[8], int32_t tile[][8]);
//      tile[r][j] = Σ_k popcount(OP(A[r][k], wr[j][k])) for the np·8 rows of np panels at `a`
//   template <BitOp OP> static void rows(const uint64_t* a, size_t nwords,
//                                        const uint64_t* const wr[8], int32_t out[8]);
//      out[j] = Σ_k popcount(OP(a[k], wr[j][k])) for one unpacked row a
#ifndef BN_KERNEL_NS
#error "define BN_KERNEL_NS before including driver.h"
#endif

#include <cstddef>
#include <cstdint>

#include "bgemm/kernel.h"

namespace binarynet {
namespace BN_KERNEL_NS {

inline std::size_t min_size(std::size_t a, std::size_t b) { return a < b ? a : b; }

// Eight int32 lanes, as a GCC vector: one instruction per operation in the AVX2/AVX-512
// translation units, two SSE2 ones in the baseline one. (Scalar loops over x[8] here were not
// vectorised by GCC, and their 4-byte stores re-read as 32 bytes stalled store forwarding.)
// (Passing them by value between these internal inline functions is fine: no ABI boundary.)
#pragma GCC diagnostic ignored "-Wpsabi"
typedef std::int32_t v8i __attribute__((vector_size(32)));

inline v8i load8(const std::int32_t* p) {
  v8i v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(std::int32_t* p, v8i v) { __builtin_memcpy(p, &v, sizeof v); }

// Applies the epilogue to a tile of raw popcounts t[r][j] (A rows r0.., columns n0..n0+nc),
// specialised on the plane count, the correction table and the sink.
template <int kPlanes, bool kCorr, bool kBits>
__attribute__((always_inline)) inline void apply_epilogue(const Epilogue& ep, std::size_t r0,
                                                          std::size_t nrows, std::size_t n0,
                                                          std::size_t nc,
                                                          const std::int32_t (*t)[8]) {
  const std::size_t m0 = r0 / kPlanes, nm = nrows / kPlanes;
  const bool full = nc == 8;
  v8i lo{}, hi{};
  if constexpr (kBits) {
    if (full) {
      lo = load8(ep.lo + n0);
      hi = load8(ep.hi + n0);
    } else {
      for (std::size_t j = 0; j < nc; ++j) {
        lo[j] = ep.lo[n0 + j];
        hi[j] = ep.hi[n0 + j];
      }
    }
  }
  for (std::size_t i = 0; i < nm; ++i) {
    const std::size_t m = m0 + i;
    const std::int32_t b = ep.base + (ep.row_base ? ep.row_base[m] : 0);
    v8i pc;
    if constexpr (kPlanes == 1) {
      pc = load8(t[i]);
    } else {
      // Σ_p 2ᵖ·pc_p over the bit planes of output row m (A rows kPlanes·i + p).
      pc = load8(t[i * kPlanes]);
      for (int p = 1; p < kPlanes; ++p) pc += load8(t[i * kPlanes + p]) << p;
    }
    v8i x = b - 2 * pc;
    if constexpr (kCorr) {
      const std::int32_t* c = ep.corr + ep.corr_row[m] + n0;
      if (full) {
        x += load8(c);
      } else {
        for (std::size_t j = 0; j < nc; ++j) x[j] += c[j];
      }
    }
    if constexpr (!kBits) {
      std::int32_t* o = ep.out + m * ep.ldo + n0;
      if (full) {
        store8(o, x);
      } else {
        for (std::size_t j = 0; j < nc; ++j) o[j] = x[j];
      }
    } else {
      // bit 1 (−1) iff x < lo or x > hi; columns past nc stay 0 (padding bits).
      const v8i weight = {1, 2, 4, 8, 16, 32, 64, 128};
      const v8i neg = ((x < lo) | (x > hi)) & weight;
      unsigned byte = 0;
      for (std::size_t j = 0; j < nc; ++j) byte |= static_cast<unsigned>(neg[j]);
      ep.bits[m * ep.ldb + n0 / 8] = static_cast<std::uint8_t>(byte);
    }
  }
}

// The 8 W rows of the column tile starting at n; past n1 the last real row is repeated (its
// results are computed and dropped), so the micro-kernel never needs a column tail.
inline void column_rows(const std::uint64_t* w, std::size_t ldw, std::size_t n, std::size_t n1,
                        const std::uint64_t* wr[8]) {
  for (std::size_t j = 0; j < 8; ++j) wr[j] = w + (n + j < n1 ? n + j : n1 - 1) * ldw;
}

template <class Micro, BitOp OP, int kPlanes, bool kCorr, bool kBits>
void panels_loop(const std::uint64_t* panels, std::size_t row0, std::size_t rows,
                 std::size_t nwords, const std::uint64_t* w, std::size_t ldw, std::size_t n0,
                 std::size_t n1, const Epilogue& ep) {
  constexpr std::size_t kMax = Micro::kMaxPanels;
  const std::size_t npanels = (rows + kPanelRows - 1) / kPanelRows;
  alignas(64) std::int32_t tile[kMax * kPanelRows][8];
  // Loop order: column blocks whose W rows fit in L2 (≤ 128 KiB), then row tiles, then the
  // column tiles of the block. The packed A tile (≤ 24 rows) stays in L1 across the block, and
  // each output row is written as one contiguous run of the block's columns. (Row tiles inside
  // column tiles would write 24 rows × 32 bytes per tile; with a power-of-two N those rows share
  // their L1/L2 sets and every store misses.)
  const std::size_t block = 8 * (1 + (std::size_t{128} << 10) / (64 * nwords * 8));
  for (std::size_t nb = n0; nb < n1; nb += block) {
    const std::size_t nb1 = min_size(n1, nb + block);
    for (std::size_t p = 0; p < npanels; p += kMax) {
      const int np = static_cast<int>(min_size(kMax, npanels - p));
      const std::uint64_t* a = panels + p * nwords * kPanelRows;
      const std::size_t r = p * kPanelRows;
      const std::size_t nr = min_size(static_cast<std::size_t>(np) * kPanelRows, rows - r);
      for (std::size_t n = nb; n < nb1; n += 8) {
        const std::uint64_t* wr[8];
        column_rows(w, ldw, n, n1, wr);
        Micro::template panels<OP>(np, a, nwords, wr, tile);
        apply_epilogue<kPlanes, kCorr, kBits>(ep, row0 + r, nr, n, min_size(8, n1 - n), tile);
      }
    }
  }
}

template <class Micro>
void panels_entry(BitOp op, const std::uint64_t* panels, std::size_t row0, std::size_t rows,
                  std::size_t nwords, const std::uint64_t* w, std::size_t ldw, std::size_t n0,
                  std::size_t n1, const Epilogue& ep) {
  // The combinations the operations use (see kernel.h); dispatch.cc produces no other.
  const bool corr = ep.corr != nullptr, bits = ep.bits != nullptr;
  if (op == BitOp::Xor && ep.planes == 1) {
    if (!corr && !bits)
      return panels_loop<Micro, BitOp::Xor, 1, false, false>(panels, row0, rows, nwords, w, ldw, n0, n1, ep);
    if (!corr && bits)
      return panels_loop<Micro, BitOp::Xor, 1, false, true>(panels, row0, rows, nwords, w, ldw, n0, n1, ep);
    if (corr && !bits)
      return panels_loop<Micro, BitOp::Xor, 1, true, false>(panels, row0, rows, nwords, w, ldw, n0, n1, ep);
    return panels_loop<Micro, BitOp::Xor, 1, true, true>(panels, row0, rows, nwords, w, ldw, n0, n1, ep);
  }
  if (op == BitOp::And && ep.planes == 8 && !corr && !bits)
    return panels_loop<Micro, BitOp::And, 8, false, false>(panels, row0, rows, nwords, w, ldw, n0, n1, ep);
  __builtin_trap();  // not produced by dispatch.cc
}

template <class Micro, BitOp OP, bool kBits>
void rows_loop(const std::uint64_t* a, std::size_t lda, std::size_t row0, std::size_t rows,
               std::size_t nwords, const std::uint64_t* w, std::size_t ldw, std::size_t n0,
               std::size_t n1, const Epilogue& ep) {
  alignas(64) std::int32_t tile[1][8];
  for (std::size_t n = n0; n < n1; n += 8) {
    const std::uint64_t* wr[8];
    column_rows(w, ldw, n, n1, wr);
    const std::size_t nc = min_size(8, n1 - n);
    for (std::size_t r = 0; r < rows; ++r) {
      Micro::template rows<OP>(a + r * lda, nwords, wr, tile[0]);
      apply_epilogue<1, false, kBits>(ep, row0 + r, 1, n, nc, tile);
    }
  }
}

template <class Micro>
void rows_entry(BitOp op, const std::uint64_t* a, std::size_t lda, std::size_t row0,
                std::size_t rows, std::size_t nwords, const std::uint64_t* w, std::size_t ldw,
                std::size_t n0, std::size_t n1, const Epilogue& ep) {
  // Used by bgemm and bgemm_threshold only (XOR, one plane, no correction).
  if (op != BitOp::Xor || ep.planes != 1 || ep.corr) __builtin_trap();
  if (ep.bits)
    rows_loop<Micro, BitOp::Xor, true>(a, lda, row0, rows, nwords, w, ldw, n0, n1, ep);
  else
    rows_loop<Micro, BitOp::Xor, false>(a, lda, row0, rows, nwords, w, ldw, n0, n1, ep);
}

}  // namespace BN_KERNEL_NS
}  // namespace binarynet
