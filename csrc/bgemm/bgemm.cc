// The binary GEMM ops' driver (baseline ISA): the epilogue set-up of each op, on top of the
// popcount-GEMM driver (bgemm/popcount.h). The only ISA-specific code reached from here is through
// the KernelSet pointers, after the CPU check of resolve_kernel.
#include "bgemm/bgemm.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "bgemm/kernel.h"
#include "bgemm/popcount.h"
#include "bgemm/reference.h"
#include "bitpack.h"
#include "threadpool.h"

namespace binarynet {

namespace popcount {

const KernelSet& kernel_set(Kernel k) {
  switch (k) {
#if BINARYNET_AMX_KERNELS
    case Kernel::AmxTiles: return *amx_kernels();
#endif
#if BINARYNET_X86_KERNELS
    case Kernel::Amx:  // the popcount GEMM stays on VPOPCNTDQ (kernel_choice.h)
    case Kernel::Avx512: return *avx512_kernels();
    case Kernel::Avx2: return *avx2_kernels();
    case Kernel::Avx2Table: return *avx2_table_kernels();
#endif
#if BINARYNET_ARM_KERNELS
    case Kernel::Neon:
    case Kernel::NeonDotprod: return *neon_kernels();
#endif
    default: return *portable_kernels();
  }
}

}  // namespace popcount

std::size_t panel_words(std::size_t N, std::size_t nw) {
  return gemm::round_up(N, kPanelRows) * nw;
}

void pack_weight_panels(const std::uint64_t* w, std::size_t N, std::size_t nw,
                        std::uint64_t* panels) {
  popcount::MatrixRows src{w, N, nw, nw};
  src(0, gemm::round_up(N, kPanelRows), panels);
}

void bgemm(Kernel kern, const std::uint64_t* a, std::size_t M, const std::uint64_t* w,
           std::size_t N, std::size_t nw, std::size_t k, int threads, const gemm::Output& out,
           const std::uint64_t* w_panels) {
  if (kern == Kernel::Reference)
    return gemm::reference_output(M, N, out,
                                  [&](std::int32_t* v) { reference::bgemm(a, M, w, N, nw, k, v); });
  Epilogue ep;
  ep.base = static_cast<std::int32_t>(k);
  gemm::set_sink(ep, N, out);
  popcount::MatrixRows src{a, M, nw, nw};
  popcount::run(popcount::kernel_set(kern), BitOp::Xor, M, nw, src, a, nw, w, nw, N, ep, threads,
                w_panels);
}

// Bit-plane GEMM (paper, Algorithm 5). With bₚ the bit planes of x and w = 1 − 2·wneg (wneg = the
// stored bit), for each plane Σ_i bₚ[i]·w[i] = popcount(bₚ) − 2·popcount(bₚ ∧ wneg), so
//     s = Σ_p 2ᵖ·(popcount(bₚ) − 2·popcount(bₚ ∧ wneg)) = Σ_i x[i] − 2·Σ_p 2ᵖ·popcount(bₚ ∧ wneg):
// an AND-popcount GEMM whose A rows are the 8 planes of each x row (one panel per x row, plane p
// in lane p), row_base = Σ_i x[i], and the epilogue's plane combination (planes = 8).
void bitplane_gemm(Kernel kern, const std::uint8_t* x, std::size_t M, std::size_t K,
                   const std::uint64_t* w, std::size_t N, std::size_t nw, int threads,
                   const gemm::Output& out) {
  if (kern == Kernel::Reference)
    return gemm::reference_output(
        M, N, out, [&](std::int32_t* v) { reference::bitplane_gemm(x, M, K, w, N, nw, v); });
  std::unique_ptr<std::int32_t[]> rowsum(new std::int32_t[std::max<std::size_t>(M, 1)]);
  auto pack = [&](std::size_t r0, std::size_t n, std::uint64_t* dst) {
    // r0, n count A rows (8 per x row); both are multiples of 8 here.
    for (std::size_t q = 0; q < gemm::ceil_div(n, kPanelRows); ++q) {
      const std::size_t m = r0 / kPanelRows + q;
      std::uint64_t* panel = dst + q * nw * kPanelRows;
      std::memset(panel, 0, nw * kPanelRows * sizeof(std::uint64_t));
      if (m >= M) continue;
      const std::uint8_t* row = x + m * K;
      bitplanes_row(row, K, panel, /*plane_stride=*/1, /*word_stride=*/kPanelRows);
      std::int32_t s = 0;
      for (std::size_t i = 0; i < K; ++i) s += row[i];
      rowsum[m] = s;
    }
  };
  Epilogue ep;
  ep.row_base = rowsum.get();
  ep.planes = 8;
  gemm::set_sink(ep, N, out);
  popcount::run(popcount::kernel_set(kern), BitOp::And, M * kPanelRows, nw, pack, nullptr, 0, w, nw,
                N, ep, threads);
}

void threshold_bits(Kernel kern, const std::int32_t* y, std::size_t M, std::size_t N,
                    const std::int32_t* lo, const std::int32_t* hi, int threads,
                    std::uint64_t* out) {
  if (kern == Kernel::Reference) return reference::threshold_bits(y, M, N, lo, hi, out);
  const std::size_t per =
      std::max<std::size_t>(1, (std::size_t{1} << 16) / std::max<std::size_t>(N, 1));
  parallel_for(gemm::ceil_div(M, per), threads, [&](std::size_t t) {
    const std::size_t m0 = t * per, m1 = std::min(M, m0 + per);
    reference::threshold_bits(y + m0 * N, m1 - m0, N, lo, hi, out + m0 * words_for(N));
  });
}

}  // namespace binarynet
