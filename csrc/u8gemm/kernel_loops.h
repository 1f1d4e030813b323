// The kernel loop of the byte GEMM, shared by its ISA kernels (see kernel.h): inside one task of
// the driver (u8gemm.cc), column tiles of the prepared weights, then row tiles, each handed to the
// ISA's micro-kernel. Each kernel translation unit defines BN_U8_NS and a micro-kernel class, then
// includes this file (compiled once per ISA under its own name: never share an inline symbol
// across translation units with different ISA flags).
//
// A micro-kernel is a class with
//   static constexpr int kRows, kCols;   // largest tile: rows of A × blocks of 16 outputs
//   static std::size_t block_bytes(std::size_t kg);  // bytes of one block of its weight layout
//   template <bool kBits, int R, int C> static void tile(const uint8_t* a, size_t lda, size_t m,
//                                                       const uint8_t* w, size_t kg, size_t n,
//                                                       size_t N, const U8Epilogue& ep);
//      rows m .. m + R − 1 (A rows at a, stride lda) × the C blocks at w (first column n), with
//      the epilogue applied; R ≤ kRows, C ≤ kCols (edge tiles are smaller instantiations).
#ifndef BN_U8_NS
#error "define BN_U8_NS before including u8gemm/kernel_loops.h"
#endif

#include <cstddef>
#include <cstdint>

#include "u8gemm/kernel.h"

namespace binarynet {
namespace BN_U8_NS {

// Runtime (nr, nc) → the instantiation tile<kBits, nr, nc>.
template <class Micro, bool kBits, int R, int C = Micro::kCols>
inline void tile_cols(int nc, const std::uint8_t* a, std::size_t lda, std::size_t m,
                      const std::uint8_t* wp, std::size_t kg, std::size_t n, std::size_t N,
                      const U8Epilogue& ep) {
  if constexpr (C > 1) {
    if (nc < C) return tile_cols<Micro, kBits, R, C - 1>(nc, a, lda, m, wp, kg, n, N, ep);
  }
  Micro::template tile<kBits, R, C>(a, lda, m, wp, kg, n, N, ep);
}

template <class Micro, bool kBits, int R = Micro::kRows>
inline void tile_rows(int nr, int nc, const std::uint8_t* a, std::size_t lda, std::size_t m,
                      const std::uint8_t* wp, std::size_t kg, std::size_t n, std::size_t N,
                      const U8Epilogue& ep) {
  if constexpr (R > 1) {
    if (nr < R) return tile_rows<Micro, kBits, R - 1>(nr, nc, a, lda, m, wp, kg, n, N, ep);
  }
  tile_cols<Micro, kBits, R>(nc, a, lda, m, wp, kg, n, N, ep);
}

template <class Micro, bool kBits>
void u8_loop(const std::uint8_t* a, std::size_t lda, std::size_t m0, std::size_t rows,
             const std::uint8_t* wp, std::size_t kg, std::size_t b0, std::size_t b1, std::size_t N,
             const U8Epilogue& ep) {
  const std::size_t bstride = Micro::block_bytes(kg);  // bytes per weight block
  constexpr std::size_t kR = Micro::kRows, kC = Micro::kCols;
  // Columns outer: a column tile's weights (kCols · 64 · kg bytes) stay in L1/L2 while the row
  // tiles of the task (a few tens of KiB of A, in L2) stream past them.
  for (std::size_t b = b0; b < b1; b += kC) {
    const int nc = static_cast<int>(b1 - b < kC ? b1 - b : kC);
    for (std::size_t r = 0; r < rows; r += kR) {
      const int nr = static_cast<int>(rows - r < kR ? rows - r : kR);
      tile_rows<Micro, kBits>(nr, nc, a + r * lda, lda, m0 + r, wp + b * bstride, kg, b * kU8Block,
                              N, ep);
    }
  }
}

template <class Micro>
void u8_entry(const std::uint8_t* a, std::size_t lda, std::size_t m0, std::size_t rows,
              const void* w, std::size_t kg, std::size_t b0, std::size_t b1, std::size_t N,
              const U8Epilogue& ep) {
  const auto* wp = static_cast<const std::uint8_t*>(w);
  if (ep.bits)
    u8_loop<Micro, true>(a, lda, m0, rows, wp, kg, b0, b1, N, ep);
  else
    u8_loop<Micro, false>(a, lda, m0, rows, wp, kg, b0, b1, N, ep);
}

// Bytes of one int8 weight block (kernel.h): kg lines of 64 bytes.
inline std::size_t int8_block_bytes(std::size_t kg) { return kg * 4 * kU8Block; }

}  // namespace BN_U8_NS
}  // namespace binarynet
