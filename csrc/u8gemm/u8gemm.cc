// The byte GEMM's driver (u8gemm/kernel.h; baseline ISA). Tasks are (row block of ≤ 128 KiB of A)
// × (group of weight blocks), split by the shared driver (gemm/driver.h); A rows are read in place
// when they are whole groups of 4 bytes, else built per task (padded copies, or the im2col rows of
// a convolution) in a buffer of the worker thread, so no im2col matrix is ever materialised.
#include "u8gemm/u8gemm.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "bconv/im2col.h"
#include "bgemm/reference.h"
#include "u8gemm/kernel.h"

namespace binarynet {
namespace {

constexpr std::size_t kU8BlockBytes = 128 * 1024;
// The amx variants put the byte GEMM on tiles from kTileMinRows rows and kTileMinK inputs on
// (measured, csrc/README.md "AMX tiles"): below, the VNNI kernel is as fast or faster — at K ≤ 40
// most of a tile's 64-byte step multiplies padding (K = 27, the CIFAR-10 ConvNet's first layer:
// tiles 0.87× VNNI), and 4 to 7 rows do not pay for the tile set-up (0.93× at 4 rows).
constexpr std::size_t kTileMinRows = 8;
constexpr std::size_t kTileMinK = 48;

// The byte-GEMM kernel of a variant: the avx512 set uses VPDPBUSD when the CPU has VNNI (every
// AVX-512 CPU with VPOPCNTDQ but Knights Mill), the AVX2 kernel otherwise.
U8Fn u8_kernel(Kernel k) {
  switch (k) {
#if BINARYNET_AMX_KERNELS
    case Kernel::Amx:
    case Kernel::AmxTiles: return u8_amx_kernel();
#endif
#if BINARYNET_X86_KERNELS
    case Kernel::Avx512: return cpu_has_avx512_vnni() ? u8_avx512_kernel() : u8_avx2_kernel();
    case Kernel::Avx2:
    case Kernel::Avx2Table: return u8_avx2_kernel();  // they differ in the popcount GEMM only
#endif
#if BINARYNET_ARM_KERNELS
    case Kernel::Neon: return u8_neon_kernel();
    case Kernel::NeonDotprod: return u8_neon_dotprod_kernel();
#endif
    default: return u8_portable_kernel();
  }
}

template <class Rows>
void run_u8(Kernel kern, std::size_t M, const U8Prepared& w, const std::uint8_t* direct,
            std::size_t lda, Rows&& rows, const gemm::Output& out, int threads) {
  if (M == 0 || w.N == 0) return;
  U8Epilogue ep;
  gemm::set_sink(ep, w.N, out);
  // Batch 1 to 3: the mask copy of the weights (8× less traffic), where the CPU has VNNI.
  // (The amx variant too: at batch 1 to 3 the weights' traffic, not the products, is the cost.
  // Only where the x86 kernels are built: elsewhere the symbol does not exist, and the module
  // would fail to load with an undefined symbol.)
#if BINARYNET_X86_KERNELS
  const bool amx = kern == Kernel::Amx || kern == Kernel::AmxTiles;
  const bool simd = kern == Kernel::Avx512 || amx;
  const bool masks = M < 4 && w.wm && simd && cpu_has_avx512_vnni();
  const bool below_tiles = amx && (M < kTileMinRows || w.K < kTileMinK);
  const U8Fn fn = masks ? u8_avx512_mask_kernel() : u8_kernel(below_tiles ? Kernel::Avx512 : kern);
#else
  const bool masks = false;
  const U8Fn fn = u8_kernel(kern);
#endif
  const void* wts = masks ? static_cast<const void*>(w.wm) : static_cast<const void*>(w.wp);
  const std::size_t kg = u8_groups(w.K), row_bytes = 4 * kg;
  const std::size_t rb = gemm::block_rows(kU8BlockBytes, row_bytes, 24, 1536);
  gemm::for_each_task(M, rb, u8_blocks(w.N), threads,
                      [&](std::size_t r0, std::size_t n, std::size_t b0, std::size_t b1) {
                        if (direct)
                          return fn(direct + r0 * lda, lda, r0, n, wts, kg, b0, b1, w.N, ep);
                        thread_local std::vector<std::uint8_t> buf;
                        if (buf.size() < n * row_bytes) buf.resize(n * row_bytes);
                        rows(r0, n, buf.data(), row_bytes);
                        fn(buf.data(), row_bytes, r0, n, wts, kg, b0, b1, w.N, ep);
                        if (buf.size() > (std::size_t{16} << 20))
                          std::vector<std::uint8_t>().swap(buf);  // huge k
                      });
}

}  // namespace

std::size_t u8_prepared_bytes(std::size_t N, std::size_t K) {
  return u8_blocks(N) * u8_groups(K) * 4 * kU8Block;
}

std::size_t u8_mask_words(std::size_t N, std::size_t K) { return u8_blocks(N) * u8_groups(K); }

void u8_prepare(const std::uint64_t* w, std::size_t N, std::size_t nw, std::size_t K,
                std::int8_t* wp, std::uint64_t* wm) {
  const std::size_t kg = u8_groups(K), nb = u8_blocks(N);
  std::memset(wp, 0, u8_prepared_bytes(N, K));
  std::memset(wm, 0, u8_mask_words(N, K) * sizeof(std::uint64_t));
  for (std::size_t b = 0; b < nb; ++b)
    for (std::size_t j = 0; j < kU8Block && b * kU8Block + j < N; ++j) {
      const std::uint64_t* row = w + (b * kU8Block + j) * nw;
      for (std::size_t k = 0; k < K; ++k) {
        const bool neg = (row[k / 64] >> (k % 64)) & 1;
        wp[((b * kg + k / 4) * kU8Block + j) * 4 + k % 4] = neg ? -1 : 1;
        if (neg) wm[b * kg + k / 4] |= std::uint64_t{1} << (4 * j + k % 4);
      }
    }
}

void u8gemm(Kernel kern, const std::uint8_t* x, std::size_t M, const U8Prepared& w, int threads,
            const gemm::Output& out) {
  // The reference: the plain Σ_i x·w loop on the packed rows (bgemm/reference.h).
  if (kern == Kernel::Reference)
    return gemm::reference_output(M, w.N, out, [&](std::int32_t* v) {
      reference::bitplane_gemm(x, M, w.K, w.bits, w.N, w.nw, v);
    });
  const std::size_t K = w.K, row_bytes = 4 * u8_groups(K);
  auto padded = [&](std::size_t r0, std::size_t n, std::uint8_t* dst, std::size_t ld) {
    for (std::size_t i = 0; i < n; ++i) {
      std::memcpy(dst + i * ld, x + (r0 + i) * K, K);
      std::memset(dst + i * ld + K, 0, ld - K);
    }
  };
  const bool in_place = K == row_bytes;
  run_u8(kern, M, w, in_place ? x : nullptr, K, padded, out, threads);
}

void u8conv2d(Kernel kern, const ConvGeom& g, const std::uint8_t* x, std::uint8_t pad_value,
              const U8Prepared& w, int threads, const gemm::Output& out) {
  const std::size_t M = g.rows();
  if (kern == Kernel::Reference) {
    // The reference: the materialised im2col matrix through the plain loop.
    const std::size_t K = w.K;
    std::unique_ptr<std::uint8_t[]> cols(new std::uint8_t[std::max<std::size_t>(M * K, 1)]);
    im2col_u8_rows(g, x, pad_value, 0, M, cols.get());
    return gemm::reference_output(M, w.N, out, [&](std::int32_t* v) {
      reference::bitplane_gemm(cols.get(), M, K, w.bits, w.N, w.nw, v);
    });
  }
  auto rows = [&](std::size_t r0, std::size_t n, std::uint8_t* dst, std::size_t ld) {
    im2col_u8_rows_to(g, x, pad_value, r0, n, dst, ld);
  };
  run_u8(kern, M, w, nullptr, 0, rows, out, threads);
}

}  // namespace binarynet
