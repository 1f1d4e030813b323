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

// Applies the epilogue to a tile of raw popcounts t[r][j] (A rows r0.., columns n0..n0+nc).
// Written as fixed-trip loops over the 8 columns so the compiler vectorises them.
inline void apply_epilogue(const Epilogue& ep, std::size_t r0, std::size_t nrows, std::size_t n0,
                           std::size_t nc, const std::int32_t (*t)[8]) {
  const int planes = ep.planes;
  const std::size_t m0 = r0 / static_cast<std::size_t>(planes);
  const std::size_t nm = nrows / static_cast<std::size_t>(planes);
  for (std::size_t i = 0; i < nm; ++i) {
    const std::size_t m = m0 + i;
    const std::int32_t b = ep.base + (ep.row_base ? ep.row_base[m] : 0);
    std::int32_t x[8];
    if (planes == 1) {
      for (int j = 0; j < 8; ++j) x[j] = b - 2 * t[i][j];
    } else {
      // Σ_p 2ᵖ·pc_p over the 8 bit planes of output row m (A rows 8i .. 8i + 7).
      std::int32_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int p = 0; p < 8; ++p)
        for (int j = 0; j < 8; ++j) s[j] += t[i * 8 + p][j] << p;
      for (int j = 0; j < 8; ++j) x[j] = b - 2 * s[j];
    }
    if (ep.corr) {
      const std::int32_t* c = ep.corr + ep.corr_row[m] + n0;
      for (std::size_t j = 0; j < nc; ++j) x[j] += c[j];
    }
    if (ep.out) {
      std::int32_t* o = ep.out + m * ep.ldo + n0;
      if (nc == 8) {
        for (int j = 0; j < 8; ++j) o[j] = x[j];
      } else {
        for (std::size_t j = 0; j < nc; ++j) o[j] = x[j];
      }
    } else {
      // bit 1 (−1) iff x < lo or x > hi; columns past nc stay 0 (padding bits).
      unsigned byte = 0;
      if (nc == 8) {
        for (int j = 0; j < 8; ++j)
          byte |= static_cast<unsigned>((x[j] < ep.lo[n0 + j]) | (x[j] > ep.hi[n0 + j])) << j;
      } else {
        for (std::size_t j = 0; j < nc; ++j)
          byte |= static_cast<unsigned>((x[j] < ep.lo[n0 + j]) | (x[j] > ep.hi[n0 + j])) << j;
      }
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

template <class Micro, BitOp OP>
void panels_loop(const std::uint64_t* panels, std::size_t row0, std::size_t rows,
                 std::size_t nwords, const std::uint64_t* w, std::size_t ldw, std::size_t n0,
                 std::size_t n1, const Epilogue& ep) {
  constexpr std::size_t kMax = Micro::kMaxPanels;
  const std::size_t npanels = (rows + kPanelRows - 1) / kPanelRows;
  alignas(64) std::int32_t tile[kMax * kPanelRows][8];
  // Column tiles outside, row tiles inside: the 8 W rows (8·nwords words) stay in L1 while the
  // packed block of A streams from L2.
  for (std::size_t n = n0; n < n1; n += 8) {
    const std::uint64_t* wr[8];
    column_rows(w, ldw, n, n1, wr);
    const std::size_t nc = min_size(8, n1 - n);
    for (std::size_t p = 0; p < npanels; p += kMax) {
      const int np = static_cast<int>(min_size(kMax, npanels - p));
      Micro::template panels<OP>(np, panels + p * nwords * kPanelRows, nwords, wr, tile);
      const std::size_t r = p * kPanelRows;
      apply_epilogue(ep, row0 + r, min_size(static_cast<std::size_t>(np) * kPanelRows, rows - r),
                     n, nc, tile);
    }
  }
}

template <class Micro>
void panels_entry(BitOp op, const std::uint64_t* panels, std::size_t row0, std::size_t rows,
                  std::size_t nwords, const std::uint64_t* w, std::size_t ldw, std::size_t n0,
                  std::size_t n1, const Epilogue& ep) {
  if (op == BitOp::Xor)
    panels_loop<Micro, BitOp::Xor>(panels, row0, rows, nwords, w, ldw, n0, n1, ep);
  else
    panels_loop<Micro, BitOp::And>(panels, row0, rows, nwords, w, ldw, n0, n1, ep);
}

template <class Micro, BitOp OP>
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
      apply_epilogue(ep, row0 + r, 1, n, nc, tile);
    }
  }
}

template <class Micro>
void rows_entry(BitOp op, const std::uint64_t* a, std::size_t lda, std::size_t row0,
                std::size_t rows, std::size_t nwords, const std::uint64_t* w, std::size_t ldw,
                std::size_t n0, std::size_t n1, const Epilogue& ep) {
  if (op == BitOp::Xor)
    rows_loop<Micro, BitOp::Xor>(a, lda, row0, rows, nwords, w, ldw, n0, n1, ep);
  else
    rows_loop<Micro, BitOp::And>(a, lda, row0, rows, nwords, w, ldw, n0, n1, ep);
}

}  // namespace BN_KERNEL_NS
}  // namespace binarynet
