// The kernel loops of the popcount GEMM, shared by its ISA kernels: tiling of (rows × columns)
// over a micro-kernel, and the epilogue (see kernel.h for the maths). They run inside one task of
// the op drivers (popcount.h); each kernel translation unit defines BN_KERNEL_NS (portable_impl,
// avx2_impl, avx512_impl, amx_impl, neon_impl) and then includes this file, so every function here
// is compiled — and auto-vectorised — once per ISA, under a different name each time (never share
// an inline symbol across translation units with different ISA flags: see kernel.h).
//
// A micro-kernel is a class with
//   static constexpr int kMaxPanels;   // panels (of 8 rows) per tile
//   template <BitOp OP, class Sink> static void panels(int np, const uint64_t* a, size_t nwords,
//                                                      const uint64_t* const wr[8], Sink& sink);
//      calls sink(r, pc) for r = 0 .. 8·np − 1 in order, with pc[j] = Σ_k popcount(OP(A[r][k],
//      wr[j][k])) over the np·8 rows of the np panels at `a`; the sink (the epilogue, inlined)
//      takes the row straight from registers
//   static constexpr bool kCombinesPlanes; and if true
//   template <BitOp OP, class Sink> static void panels_planes(...same...);
//      for bit planes (panel p = the 8 planes of one output row, plane q in lane q): calls
//      sink.combined(p, Σ_q 2^q·pc[8p + q]) once per panel, the combination done in registers
//   template <BitOp OP> static v8i rows(const uint64_t* a, size_t nwords,
//                                       const uint64_t* const wr[8]);
//      returns pc[j] = Σ_k popcount(OP(a[k], wr[j][k])) for one unpacked row a
// Each translation unit may define BN_MOVEMASK8(v) (bit j = sign bit of lane j) before the
// include; otherwise a generic loop is used.
#ifndef BN_KERNEL_NS
#error "define BN_KERNEL_NS before including bgemm/kernel_loops.h"
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
inline void store8(std::int32_t* p, const v8i& v) { __builtin_memcpy(p, &v, sizeof v); }

// Bit j = sign bit of lane j.
#ifndef BN_MOVEMASK8
#define BN_MOVEMASK8(v) generic_movemask8(v)
#endif
inline unsigned generic_movemask8(const v8i& v) {
  unsigned m = 0;
  for (int j = 0; j < 8; ++j) m |= static_cast<unsigned>(v[j] < 0) << j;
  return m;
}

// Stores the first nc (< 8) lanes of v.
#ifndef BN_STORE_PARTIAL8
#define BN_STORE_PARTIAL8(p, v, nc) generic_store_partial8(p, v, nc)
#endif
inline void generic_store_partial8(std::int32_t* p, const v8i& v, std::size_t nc) {
  for (std::size_t j = 0; j < nc; ++j) p[j] = v[j];
}

// The first nc (≤ 8) of p[0..8) (the rest 0): an 8-lane load when nc = 8.
#ifndef BN_LOAD_PARTIAL8
#define BN_LOAD_PARTIAL8(p, nc) generic_load_partial8(p, nc)
#endif
inline v8i generic_load_partial8(const std::int32_t* p, std::size_t nc) {
  if (nc == 8) return load8(p);
  v8i v{};
  for (std::size_t j = 0; j < nc; ++j) v[j] = p[j];
  return v;
}

// The epilogue of one column tile (columns n0 .. n0 + nc, nc ≤ 8) of a row tile whose first A row
// is r0, applied row by row as the micro-kernel produces them (see kernel.h for the maths), on
// 8 lanes at a time; only the store is narrower for a partial last column tile (the correction
// table's rows are padded to a multiple of 8 columns, so its 8-lane loads stay inside it).
// Specialised on the plane count (1, or 8 for bit planes, which also adds row_base), the
// correction table and the sink. It keeps what it needs of the Epilogue in its own fields, which
// the compiler holds in registers (through a reference, every int32 store to the output might
// alias ep.base and force reloads).
template <int kPlanes, bool kCorr, bool kBits>
struct RowSink {
  std::int32_t base;
  const std::int32_t* row_base;
  const std::int32_t* corr;
  const std::int32_t* corr_row;
  std::int32_t* out;   // int32 sink: row m0 of the tile, column n0
  std::uint8_t* bits;  // bits sink: row m0, byte n0 / 8
  std::size_t ld, m0, n0, nrows, nc;
  v8i lo{}, hi{}, planes_acc{};

  RowSink(const Epilogue& ep, std::size_t r0, std::size_t nrows_, std::size_t n0_, std::size_t nc_)
      : base(ep.base), row_base(ep.row_base), corr(ep.corr), corr_row(ep.corr_row), out(nullptr),
        bits(nullptr), ld(0), m0(r0 / kPlanes), n0(n0_), nrows(nrows_), nc(nc_) {
    if constexpr (kBits) {
      bits = ep.bits + m0 * ep.ldb + n0 / 8;
      ld = ep.ldb;
      lo = BN_LOAD_PARTIAL8(ep.lo + n0, nc);
      hi = BN_LOAD_PARTIAL8(ep.hi + n0, nc);
    } else {
      out = ep.out + m0 * ep.ldo + n0;
      ld = ep.ldo;
    }
  }

  // Prefetches (for writing) the output of the next column tile, so that its cache lines are
  // fetched while this tile computes: the output is written once and is usually not in cache,
  // and waiting for those lines at the stores cost ~10% of the GEMM time.
  void prefetch_next_columns() const {
    const std::size_t rows = (nrows + kPlanes - 1) / kPlanes;
    for (std::size_t i = 0; i < rows; ++i) {
      if constexpr (kBits)
        __builtin_prefetch(bits + i * ld + 1, 1);
      else
        __builtin_prefetch(out + i * ld + 8, 1);
    }
  }

  // Prefetches (for writing) the output of this tile's rows, `cols` columns from n0.
  void prefetch_rows(std::size_t cols) const {
    const std::size_t rows = (nrows + kPlanes - 1) / kPlanes;
    for (std::size_t i = 0; i < rows; ++i) {
      if constexpr (kBits) {
        __builtin_prefetch(bits + i * ld, 1);
      } else {
        for (std::size_t c = 0; c < cols; c += 16) __builtin_prefetch(out + i * ld + c, 1);
      }
    }
  }

  __attribute__((always_inline)) void operator()(int r, const v8i& pc_in) {
    v8i pc = pc_in;
    if constexpr (kPlanes > 1) {
      // Σ_p 2ᵖ·pc_p over the bit planes of one output row (A rows kPlanes·i + p, in order).
      const int p = r % kPlanes;
      planes_acc = p == 0 ? pc : planes_acc + (pc << p);
      if (p != kPlanes - 1) return;
      pc = planes_acc;
    }
    if (static_cast<std::size_t>(r) >= nrows) return;  // zero rows of a partial last panel
    emit(static_cast<std::size_t>(r) / kPlanes, pc);
  }

  // Output row i of the tile, its planes already combined by the micro-kernel.
  __attribute__((always_inline)) void combined(int i, const v8i& pc) {
    if (static_cast<std::size_t>(i) * kPlanes < nrows) emit(static_cast<std::size_t>(i), pc);
  }

  __attribute__((always_inline)) void emit(std::size_t i, const v8i& pc) {
    std::int32_t b = base;
    if constexpr (kPlanes > 1) b += row_base[m0 + i];
    v8i x = b - 2 * pc;
    if constexpr (kCorr) x += load8(corr + corr_row[m0 + i] + n0);
    if constexpr (!kBits) {
      std::int32_t* o = out + i * ld;
      if (nc == 8)
        store8(o, x);
      else
        BN_STORE_PARTIAL8(o, x, nc);
    } else {
      // bit 1 (−1) iff x < lo or x > hi; columns past nc stay 0 (padding bits).
      const unsigned byte = BN_MOVEMASK8((x < lo) | (x > hi)) & ((1u << nc) - 1);
      bits[i * ld] = static_cast<std::uint8_t>(byte);
    }
  }
};

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
  // Loop order: column blocks whose W rows fit in L2 (≤ 64 KiB), then row tiles, then the
  // column tiles of the block. The packed A tile (≤ 24 rows) stays in L1 across the block, and
  // each output row is written as one contiguous run of the block's columns. (Row tiles inside
  // column tiles would write 24 rows × 32 bytes per tile; with a power-of-two N those rows share
  // their L1/L2 sets and every store misses.)
  const std::size_t wrows = (std::size_t{64} << 10) / (nwords * 8);  // W rows in 64 KiB
  const std::size_t block = wrows >= 16 ? wrows / 8 * 8 : 8;
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
        RowSink<kPlanes, kCorr, kBits> sink(ep, row0 + r, nr, n, min_size(8, n1 - n));
        if (n + 8 < nb1) sink.prefetch_next_columns();
        if constexpr (kPlanes == 8 && Micro::kCombinesPlanes)
          Micro::template panels_planes<OP>(np, a, nwords, wr, sink);
        else
          Micro::template panels<OP>(np, a, nwords, wr, sink);
      }
    }
  }
}

template <class Micro>
void panels_entry(BitOp op, const std::uint64_t* panels, std::size_t row0, std::size_t rows,
                  std::size_t nwords, const std::uint64_t* w, std::size_t ldw, std::size_t n0,
                  std::size_t n1, const Epilogue& ep) {
  // The combinations the operations use (see kernel.h); the op drivers (bgemm.cc, bconv.cc)
  // produce no other.
  const bool corr = ep.corr != nullptr, bits = ep.bits != nullptr;
  if (op == BitOp::Xor && ep.planes == 1) {
    if (!corr && !bits)
      return panels_loop<Micro, BitOp::Xor, 1, false, false>(panels, row0, rows, nwords, w, ldw, n0,
                                                             n1, ep);
    if (!corr && bits)
      return panels_loop<Micro, BitOp::Xor, 1, false, true>(panels, row0, rows, nwords, w, ldw, n0,
                                                            n1, ep);
    if (corr && !bits)
      return panels_loop<Micro, BitOp::Xor, 1, true, false>(panels, row0, rows, nwords, w, ldw, n0,
                                                            n1, ep);
    return panels_loop<Micro, BitOp::Xor, 1, true, true>(panels, row0, rows, nwords, w, ldw, n0, n1,
                                                         ep);
  }
  if (op == BitOp::And && ep.planes == 8 && !corr && !bits)
    return panels_loop<Micro, BitOp::And, 8, false, false>(panels, row0, rows, nwords, w, ldw, n0,
                                                           n1, ep);
  if (op == BitOp::And && ep.planes == 8 && !corr && bits)
    return panels_loop<Micro, BitOp::And, 8, false, true>(panels, row0, rows, nwords, w, ldw, n0,
                                                          n1, ep);
  __builtin_trap();  // not produced by the op drivers
}

template <class Micro, BitOp OP, bool kBits>
void rows_loop(const std::uint64_t* a, std::size_t lda, std::size_t row0, std::size_t rows,
               std::size_t nwords, const std::uint64_t* w, std::size_t ldw, std::size_t n0,
               std::size_t n1, const Epilogue& ep) {
  for (std::size_t n = n0; n < n1; n += 8) {
    const std::uint64_t* wr[8];
    column_rows(w, ldw, n, n1, wr);
    const std::size_t nc = min_size(8, n1 - n);
    for (std::size_t r = 0; r < rows; ++r) {
      RowSink<1, false, kBits> sink(ep, row0 + r, 1, n, nc);
      sink(0, Micro::template rows<OP>(a + r * lda, nwords, wr));
    }
  }
}

// Σ_k popcount(OP(a[k], W row 8q + l, word k)) for the np (≤ 8) panels q of wp, lane l of pc[q]:
// the generic version (scalar popcount), for micro-kernels without their own.
template <BitOp OP>
inline void generic_wpanels(int np, const std::uint64_t* a, std::size_t nwords,
                            const std::uint64_t* wp, v8i pc[8]) {
  for (int q = 0; q < np; ++q) {
    const std::uint64_t* panel = wp + static_cast<std::size_t>(q) * nwords * kPanelRows;
    std::uint64_t s[8] = {};
    for (std::size_t k = 0; k < nwords; ++k)
      for (std::size_t l = 0; l < kPanelRows; ++l) {
        const std::uint64_t x =
            OP == BitOp::Xor ? a[k] ^ panel[k * kPanelRows + l] : a[k] & panel[k * kPanelRows + l];
        s[l] += static_cast<std::uint64_t>(__builtin_popcountll(x));
      }
    for (int l = 0; l < 8; ++l) pc[q][l] = static_cast<std::int32_t>(s[l]);
  }
}

template <class Micro, BitOp OP, bool kBits>
void wpanels_loop(const std::uint64_t* a, std::size_t lda, std::size_t row0, std::size_t rows,
                  std::size_t nwords, const std::uint64_t* wp, std::size_t n0, std::size_t n1,
                  const Epilogue& ep) {
  // 8 panels (64 outputs) at a time; each A row streams them again (from L1/L2 after the first).
  for (std::size_t n = n0; n < n1; n += 8 * kPanelRows) {
    const int np = static_cast<int>(min_size(8, (n1 - n + kPanelRows - 1) / kPanelRows));
    const std::uint64_t* panels = wp + n / kPanelRows * nwords * kPanelRows;
    for (std::size_t r = 0; r < rows; ++r) {
      v8i pc[8];
      Micro::template wpanels<OP>(np, a + r * lda, nwords, panels, pc);
      for (int q = 0; q < np; ++q) {
        const std::size_t col = n + static_cast<std::size_t>(q) * kPanelRows;
        RowSink<1, false, kBits> sink(ep, row0 + r, 1, col, min_size(8, n1 - col));
        sink(0, pc[q]);
      }
    }
  }
}

template <class Micro>
void wpanels_entry(BitOp op, const std::uint64_t* a, std::size_t lda, std::size_t row0,
                   std::size_t rows, std::size_t nwords, const std::uint64_t* wp, std::size_t n0,
                   std::size_t n1, const Epilogue& ep) {
  // Used by bgemm and bgemm_threshold only (XOR, one plane, no correction).
  if (op != BitOp::Xor || ep.planes != 1 || ep.corr) __builtin_trap();
  if (ep.bits)
    wpanels_loop<Micro, BitOp::Xor, true>(a, lda, row0, rows, nwords, wp, n0, n1, ep);
  else
    wpanels_loop<Micro, BitOp::Xor, false>(a, lda, row0, rows, nwords, wp, n0, n1, ep);
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
