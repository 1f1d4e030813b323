// The op-level driver of every popcount GEMM (bgemm, bgemm_threshold, bitplane_gemm, bconv2d;
// baseline ISA, included by bgemm/bgemm.cc and bconv/bconv.cc): A rows packed into panels chunk
// by chunk, cache blocking and threads (gemm/driver.h), the batch-1 path, and the call into the
// ISA kernels of the chosen variant through their KernelSet (bgemm/kernel.h).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "bgemm/kernel.h"
#include "gemm/driver.h"
#include "kernel_choice.h"
#include "threadpool.h"

namespace binarynet {
namespace popcount {

constexpr std::size_t kBlockBytes = 192 * 1024;  // a row block of packed A: fits in L2
constexpr std::size_t kChunkBytes = 16u << 20;   // packed A held at once (chunks of row blocks)
constexpr std::size_t kTileRows = 24;            // row blocks are a multiple of every micro-tile
constexpr std::size_t kParallelPackWords = 1 << 16;
constexpr std::size_t kRowsPathMax = 4;  // fewer A rows: read in place, not packed

// The ISA kernels of an optimised variant (Portable, Avx2, Avx512; the caller has done the CPU
// check through resolve_kernel). Defined in bgemm/bgemm.cc.
const KernelSet& kernel_set(Kernel k);

// pc[r][n] = Σ_k popcount(op(A[r][k], W[n][k])) followed by the epilogue, for A rows produced
// panel by panel by `pack(r0, n, dst)` (fills rows [r0, r0 + n) of A, as panels, zero past the
// end) — or read in place from `direct` (row stride lda) when there are fewer than kRowsPathMax
// rows. w_panels: W prepacked in the panel layout for that batch-1 path (optional).
template <typename Pack>
void run(const KernelSet& ks, BitOp op, std::size_t rows, std::size_t nwords, Pack&& pack,
         const std::uint64_t* direct, std::size_t lda, const std::uint64_t* w, std::size_t ldw,
         std::size_t N, const Epilogue& ep, int threads, const std::uint64_t* w_panels = nullptr) {
  using gemm::ceil_div;
  if (rows == 0 || N == 0) return;
  if (direct && rows < kRowsPathMax && ep.planes == 1) {
    // Batch-1 path: memory-bound on W, parallel over column blocks of 64 W rows. (Each row
    // streams the W tile again, from L1; from 4 rows on, packing them into a panel is faster.)
    // With W prepacked in panels (w_panels), W streams sequentially, 8 rows per load.
    const std::size_t nb = 64, ntasks = ceil_div(N, nb);
    parallel_for(ntasks, threads, [&](std::size_t t) {
      const std::size_t n0 = t * nb, n1 = std::min(N, (t + 1) * nb);
      if (w_panels)
        ks.wpanels(op, direct, lda, 0, rows, nwords, w_panels, n0, n1, ep);
      else
        ks.rows(op, direct, lda, 0, rows, nwords, w, ldw, n0, n1, ep);
    });
    return;
  }
  const std::size_t row_bytes = std::max<std::size_t>(nwords, 1) * 8;
  const std::size_t block_rows = gemm::block_rows(kBlockBytes, row_bytes, kTileRows);
  const std::size_t chunk_rows = gemm::block_rows(kChunkBytes, row_bytes, block_rows);
  const std::size_t first_chunk = std::min(chunk_rows, gemm::round_up(rows, kPanelRows));
  gemm::AlignedBuffer<std::uint64_t> buf(first_chunk * nwords);
  for (std::size_t c0 = 0; c0 < rows; c0 += chunk_rows) {
    const std::size_t crows = std::min(chunk_rows, rows - c0);
    const std::size_t cpanels = ceil_div(crows, kPanelRows);
    // 1. Pack the chunk (in parallel when it is big enough to matter).
    const std::size_t panels_per_task = 16;
    const std::size_t npack = ceil_div(cpanels, panels_per_task);
    const int pack_threads = crows * nwords >= kParallelPackWords ? threads : 1;
    parallel_for(npack, pack_threads, [&](std::size_t t) {
      const std::size_t p0 = t * panels_per_task, p1 = std::min(cpanels, p0 + panels_per_task);
      const std::size_t r0 = p0 * kPanelRows;
      pack(c0 + r0, std::min(crows, p1 * kPanelRows) - r0, buf.p + p0 * nwords * kPanelRows);
    });
    // 2. Tasks: row blocks × column blocks (units of 8 columns, the micro-kernels' width).
    gemm::for_each_task(crows, block_rows, ceil_div(N, 8), threads,
                        [&](std::size_t r0, std::size_t nr, std::size_t u0, std::size_t u1) {
                          ks.panels(op, buf.p + r0 * nwords, c0 + r0, nr, nwords, w, ldw, u0 * 8,
                                    std::min(N, u1 * 8), ep);
                        });
  }
}

// Panels of plain matrix rows a [M, lda] (the first nwords words of each).
struct MatrixRows {
  const std::uint64_t* a;
  std::size_t M, lda, nwords;
  void operator()(std::size_t r0, std::size_t n, std::uint64_t* dst) const {
    const std::size_t np = gemm::ceil_div(n, kPanelRows);
    for (std::size_t q = 0; q < np; ++q) {
      std::uint64_t* panel = dst + q * nwords * kPanelRows;
      for (std::size_t l = 0; l < kPanelRows; ++l) {
        const std::size_t i = q * kPanelRows + l, r = r0 + i;
        if (i < n && r < M) {
          const std::uint64_t* src = a + r * lda;
          for (std::size_t k = 0; k < nwords; ++k) panel[k * kPanelRows + l] = src[k];
        } else {
          for (std::size_t k = 0; k < nwords; ++k) panel[k * kPanelRows + l] = 0;
        }
      }
    }
  }
};

}  // namespace popcount
}  // namespace binarynet
