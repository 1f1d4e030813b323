// The interface between the operation drivers (bgemm.cc + popcount.h, bconv/bconv.cc; baseline
// ISA) and the optimised kernels (portable.cc, avx2.cc, avx2_table.cc, avx512.cc, amx.cc, each
// compiled with its own ISA flags).
//
// Everything that crosses it is plain data: no STL types, no inline functions shared with the
// baseline translation units. (An inline function or template instantiated in an AVX-512
// translation unit has the same symbol as the baseline one; the linker keeps one copy, which may
// be the AVX-512 one, and the module then dies with SIGILL on an older CPU.)
//
// The maths. Every operation is a "popcount GEMM" over bit rows
//     pc[r][n] = Σ_k popcount(op(A[r][k], W[n][k])), op = XOR (±1 dot products) or AND (bit planes)
// followed by an epilogue that turns pc into the result:
//     x[m][n] = base + row_base[m] + corr[corr_row[m] + n] − 2·Σ_{p<planes} 2ᵖ·pc[m·planes + p][n]
// (each term present only when its pointer is set), then stores x as int32 or as a threshold bit.
//  * bgemm:          planes = 1, base = K.                    x = K − 2·popcount(a ⊕ w) = dot(a, w)
//  * bconv2d:        planes = 1, base = kh·kw·C, corr = the zero-padding correction (bconv/).
//  * bitplane_gemm:  planes = 8, op = AND, row_base = Σ_i x[m,i] (see bgemm.cc); row_base is
//                    only read when planes = 8.
// Threshold sink ("batch norm + sign"): output bit 0 (+1) iff lo[n] ≤ x ≤ hi[n], else bit 1 (−1).
#pragma once

#include <cstddef>
#include <cstdint>

namespace binarynet {

enum class BitOp : int { Xor = 0, And = 1 };

// Rows of A are handed to the optimised kernels as "panels" of 8 rows interleaved word by word:
// word k of row 8p + l lives at panel[(p·nwords + k)·8 + l], so one 512-bit load brings word k of
// 8 rows, and a W word broadcast to all lanes yields 8 partial dot products at once. Rows past the
// end of A are zero.
constexpr std::size_t kPanelRows = 8;

struct Epilogue {
  std::int32_t base = 0;
  const std::int32_t* row_base = nullptr;  // [M] or null
  const std::int32_t* corr = nullptr;      // correction table, or null
  const std::int32_t* corr_row = nullptr;  // [M]: offset of row m's correction in `corr`
  int planes = 1;                          // A rows per output row (1, or 8 for bit planes)
  // Sinks (exactly one is set).
  std::int32_t* out = nullptr;  // int32 [M, ldo]
  std::size_t ldo = 0;
  std::uint8_t* bits = nullptr;  // packed threshold bits [M, ldb bytes]; byte n/8 holds bits n..n+7
  std::size_t ldb = 0;
  const std::int32_t* lo = nullptr;  // [N]
  const std::int32_t* hi = nullptr;  // [N]
};

// Computes rows [row0, row0 + rows) × columns [n0, n1) of the operation, where row0 and rows count
// A rows (multiples of `planes`; row0 a multiple of 8) and n0 is a multiple of 8 (so that threshold
// bits of different calls land in different bytes). `panels` holds the A rows starting at row0.
// W rows are read directly (row stride ldw words); columns past N are never read.
using PanelsFn = void (*)(BitOp op, const std::uint64_t* panels, std::size_t row0, std::size_t rows,
                          std::size_t nwords, const std::uint64_t* w, std::size_t ldw,
                          std::size_t n0, std::size_t n1, const Epilogue& ep);

// Same for a few (< 4, see popcount.h) unpacked rows of A (row stride lda words): the batch-1
// path, memory-bound on W, where packing would only add traffic. planes must be 1.
using RowsFn = void (*)(BitOp op, const std::uint64_t* a, std::size_t lda, std::size_t row0,
                        std::size_t rows, std::size_t nwords, const std::uint64_t* w,
                        std::size_t ldw, std::size_t n0, std::size_t n1, const Epilogue& ep);

// The batch-1 path on W prepacked once in the panel layout (W rows 8q .. 8q + 7 interleaved word
// by word: word k of W row 8q + l at wp[(q·nwords + k)·8 + l], rows past N zero): lanes are
// outputs, so a broadcast word of A meets 8 W rows per load, W streams sequentially and no
// horizontal sums are needed. n0 a multiple of 8; planes must be 1.
using WPanelsFn = void (*)(BitOp op, const std::uint64_t* a, std::size_t lda, std::size_t row0,
                           std::size_t rows, std::size_t nwords, const std::uint64_t* wp,
                           std::size_t n0, std::size_t n1, const Epilogue& ep);

struct KernelSet {
  const char* name;
  PanelsFn panels;
  RowsFn rows;
  WPanelsFn wpanels;
};

// Defined in the kernels' own translation units.
const KernelSet* portable_kernels();
const KernelSet* avx2_kernels();        // only call after the CPU check of kernel_choice.cc
const KernelSet* avx2_table_kernels();  // the same check (the previous AVX2 kernel, avx2_table.cc)
const KernelSet* avx512_kernels();      // only call after the CPU check of kernel_choice.cc
const KernelSet* amx_kernels();         // only call after cpu_has_amx() (kernel_choice.cc)
const KernelSet* neon_kernels();        // aarch64 only (kernel_choice.cc: cpu_has_neon)

}  // namespace binarynet
