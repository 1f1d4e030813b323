// Kernel choice and the operation drivers: packing of A into panels, cache blocking, the split into
// tasks for the thread pool, and the epilogue set-up of each operation. Baseline ISA: the only
// ISA-specific code reached from here is through the KernelSet pointers, after the CPU check.
#include "bgemm/dispatch.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "bconv/im2col.h"
#include "bconv/padding.h"
#include "bconv/reference.h"
#include "bgemm/kernel.h"
#include "bgemm/reference.h"
#include "bitpack.h"
#include "threadpool.h"
#include "u8gemm/kernel.h"

namespace binarynet {
namespace {

// ---------------------------------------------------------------------------------------------
// Kernel choice: a small, readable function. The CPU checks also test that the OS saves the
// AVX/AVX-512 register state (libgcc's __builtin_cpu_supports reads XCR0).

// (BINARYNET_X86_KERNELS: set by CMakeLists.txt when avx2.cc / avx512.cc are built, i.e. on x86-64.)
#if BINARYNET_X86_KERNELS
bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") &&
         __builtin_cpu_supports("bmi2");
}

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
}

bool cpu_has_avx512_vnni() {
  __builtin_cpu_init();
  return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
}
#else
bool cpu_has_avx2() { return false; }
bool cpu_has_avx512() { return false; }
bool cpu_has_avx512_vnni() { return false; }
#endif

const char* kernel_name(Kernel k) {
  switch (k) {
    case Kernel::Reference: return "reference";
    case Kernel::Portable: return "portable";
    case Kernel::Avx2: return "avx2";
    case Kernel::Avx512: return "avx512";
  }
  return "?";
}

Kernel named_kernel(const std::string& name) {
  for (Kernel k : {Kernel::Reference, Kernel::Portable, Kernel::Avx2, Kernel::Avx512}) {
    if (name == kernel_name(k)) {
      const bool ok = (k != Kernel::Avx2 || cpu_has_avx2()) && (k != Kernel::Avx512 || cpu_has_avx512());
      if (!ok)
        throw std::invalid_argument("kernel '" + name +
                                    "' is not supported by this CPU (available: " +
                                    [] {
                                      std::string s;
                                      for (const auto& n : available_kernels()) s += (s.empty() ? "" : ", ") + n;
                                      return s;
                                    }() + ")");
      return k;
    }
  }
  throw std::invalid_argument("unknown kernel '" + name +
                              "' (expected one of 'auto', 'reference', 'portable', 'avx2', 'avx512')");
}

const KernelSet& kernel_set(Kernel k) {
  switch (k) {
#if BINARYNET_X86_KERNELS
    case Kernel::Avx512: return *avx512_kernels();
    case Kernel::Avx2: return *avx2_kernels();
#endif
    default: return *portable_kernels();
  }
}

// The byte-GEMM kernel of a variant: the avx512 set uses VPDPBUSD when the CPU has VNNI (every
// AVX-512 CPU with VPOPCNTDQ but Knights Mill), the AVX2 kernel otherwise.
U8Fn u8_kernel(Kernel k) {
  switch (k) {
#if BINARYNET_X86_KERNELS
    case Kernel::Avx512: return cpu_has_avx512_vnni() ? u8_avx512_kernel() : u8_avx2_kernel();
    case Kernel::Avx2: return u8_avx2_kernel();
#endif
    default: return u8_portable_kernel();
  }
}

// ---------------------------------------------------------------------------------------------
// The generic driver: pc[r][n] = Σ_k popcount(op(A[r][k], W[n][k])) followed by the epilogue,
// for A rows produced panel by panel by `pack` (fills rows [r0, r0 + n) of A, as panels, zero past
// the end) — or read in place from `direct` when there are fewer than kRowsPathMax rows.

constexpr std::size_t kBlockBytes = 192 * 1024;    // a row block of packed A: fits in L2
constexpr std::size_t kChunkBytes = 16u << 20;     // packed A held at once (chunks of row blocks)
constexpr std::size_t kTileRows = 24;              // row blocks are a multiple of every micro-tile
constexpr std::size_t kParallelPackWords = 1 << 16;
constexpr std::size_t kRowsPathMax = 4;            // fewer A rows: read in place, not packed

std::size_t round_up(std::size_t x, std::size_t m) { return (x + m - 1) / m * m; }
std::size_t ceil_div(std::size_t x, std::size_t m) { return (x + m - 1) / m; }

struct AlignedBuffer {
  std::uint64_t* p = nullptr;
  explicit AlignedBuffer(std::size_t words) {
    const std::size_t bytes = round_up(std::max<std::size_t>(words, 1) * 8, 64);
    p = static_cast<std::uint64_t*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(p); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
};

template <typename Pack>
void run_gemm(const KernelSet& ks, BitOp op, std::size_t rows, std::size_t nwords, Pack&& pack,
              const std::uint64_t* direct, std::size_t lda, const std::uint64_t* w,
              std::size_t ldw, std::size_t N, const Epilogue& ep, int threads,
              const std::uint64_t* w_panels = nullptr) {
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
  const std::size_t block_rows =
      std::max<std::size_t>(kTileRows, kBlockBytes / row_bytes / kTileRows * kTileRows);
  const std::size_t chunk_rows = std::max<std::size_t>(block_rows, kChunkBytes / row_bytes / block_rows * block_rows);
  const std::size_t first_chunk = std::min(chunk_rows, round_up(rows, kPanelRows));
  AlignedBuffer buf(first_chunk * nwords);
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
    // 2. Tasks: row blocks × column blocks; enough of them for dynamic balance (another process
    // may be using one of the cores), each column block a multiple of 8 columns.
    const std::size_t nrb = ceil_div(crows, block_rows);
    std::size_t ncb = 1;
    if (threads > 1) ncb = std::min(ceil_div(N, 8), ceil_div(4 * static_cast<std::size_t>(threads), nrb));
    const std::size_t cb_cols = round_up(ceil_div(N, ncb), 8);
    ncb = ceil_div(N, cb_cols);
    parallel_for(nrb * ncb, threads, [&](std::size_t t) {
      const std::size_t rb = t / ncb, cb = t % ncb;
      const std::size_t r0 = rb * block_rows, n0 = cb * cb_cols;
      ks.panels(op, buf.p + r0 * nwords, c0 + r0, std::min(block_rows, crows - r0), nwords, w, ldw,
                n0, std::min(N, n0 + cb_cols), ep);
    });
  }
}

// Panels of plain matrix rows a [M, lda].
struct MatrixRows {
  const std::uint64_t* a;
  std::size_t M, lda, nwords;
  void operator()(std::size_t r0, std::size_t n, std::uint64_t* dst) const {
    const std::size_t np = ceil_div(n, kPanelRows);
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

void gemm_common(Kernel kern, const std::uint64_t* a, std::size_t M, const std::uint64_t* w,
                 std::size_t N, std::size_t nw, const Epilogue& ep, int threads,
                 const std::uint64_t* w_panels) {
  MatrixRows src{a, M, nw, nw};
  run_gemm(kernel_set(kern), BitOp::Xor, M, nw, src, a, nw, w, nw, N, ep, threads, w_panels);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::vector<std::string> available_kernels() {
  std::vector<std::string> names = {"reference", "portable"};
  if (cpu_has_avx2()) names.push_back("avx2");
  if (cpu_has_avx512()) names.push_back("avx512");
  return names;
}

std::string default_kernel() {
  if (const char* env = std::getenv("BINARYNET_KERNEL")) {
    const std::string name(env);
    if (!name.empty() && name != "auto") {
      try {
        return kernel_name(named_kernel(name));
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("environment variable BINARYNET_KERNEL: ") + e.what());
      }
    }
  }
  return available_kernels().back();
}

Kernel resolve_kernel(const std::string& name) {
  return named_kernel(name == "auto" ? default_kernel() : name);
}

std::size_t panel_words(std::size_t N, std::size_t nw) { return round_up(N, kPanelRows) * nw; }

void pack_weight_panels(const std::uint64_t* w, std::size_t N, std::size_t nw,
                        std::uint64_t* panels) {
  MatrixRows src{w, N, nw, nw};
  src(0, round_up(N, kPanelRows), panels);
}

void bgemm(Kernel kern, const std::uint64_t* a, std::size_t M, const std::uint64_t* w,
           std::size_t N, std::size_t nw, std::size_t k, int threads, std::int32_t* out,
           const std::uint64_t* w_panels) {
  if (kern == Kernel::Reference) return reference::bgemm(a, M, w, N, nw, k, out);
  Epilogue ep;
  ep.base = static_cast<std::int32_t>(k);
  ep.out = out;
  ep.ldo = N;
  gemm_common(kern, a, M, w, N, nw, ep, threads, w_panels);
}

void bgemm_threshold(Kernel kern, const std::uint64_t* a, std::size_t M, const std::uint64_t* w,
                     std::size_t N, std::size_t nw, std::size_t k, const std::int32_t* lo,
                     const std::int32_t* hi, int threads, std::uint64_t* out,
                     const std::uint64_t* w_panels) {
  if (kern == Kernel::Reference) {
    std::unique_ptr<std::int32_t[]> x(new std::int32_t[std::max<std::size_t>(M * N, 1)]);
    reference::bgemm(a, M, w, N, nw, k, x.get());
    return reference::threshold_bits(x.get(), M, N, lo, hi, out);
  }
  Epilogue ep;
  ep.base = static_cast<std::int32_t>(k);
  ep.bits = reinterpret_cast<std::uint8_t*>(out);
  ep.ldb = words_for(N) * 8;
  ep.lo = lo;
  ep.hi = hi;
  gemm_common(kern, a, M, w, N, nw, ep, threads, w_panels);
}

// Bit-plane GEMM (paper, Algorithm 5). With bₚ the bit planes of x and w = 1 − 2·wneg (wneg = the
// stored bit), for each plane Σ_i bₚ[i]·w[i] = popcount(bₚ) − 2·popcount(bₚ ∧ wneg), so
//     s = Σ_p 2ᵖ·(popcount(bₚ) − 2·popcount(bₚ ∧ wneg)) = Σ_i x[i] − 2·Σ_p 2ᵖ·popcount(bₚ ∧ wneg):
// an AND-popcount GEMM whose A rows are the 8 planes of each x row (one panel per x row, plane p
// in lane p), row_base = Σ_i x[i], and the epilogue's plane combination (planes = 8).
void bitplane_gemm(Kernel kern, const std::uint8_t* x, std::size_t M, std::size_t K,
                   const std::uint64_t* w, std::size_t N, std::size_t nw, const std::int32_t* lo,
                   const std::int32_t* hi, int threads, std::int32_t* out,
                   std::uint64_t* out_bits) {
  if (kern == Kernel::Reference) {
    if (!out_bits) return reference::bitplane_gemm(x, M, K, w, N, nw, out);
    std::unique_ptr<std::int32_t[]> s(new std::int32_t[std::max<std::size_t>(M * N, 1)]);
    reference::bitplane_gemm(x, M, K, w, N, nw, s.get());
    return reference::threshold_bits(s.get(), M, N, lo, hi, out_bits);
  }
  std::unique_ptr<std::int32_t[]> rowsum(new std::int32_t[std::max<std::size_t>(M, 1)]);
  auto pack = [&](std::size_t r0, std::size_t n, std::uint64_t* dst) {
    // r0, n count A rows (8 per x row); both are multiples of 8 here.
    for (std::size_t q = 0; q < ceil_div(n, kPanelRows); ++q) {
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
  if (out_bits) {
    ep.bits = reinterpret_cast<std::uint8_t*>(out_bits);
    ep.ldb = words_for(N) * 8;
    ep.lo = lo;
    ep.hi = hi;
  } else {
    ep.out = out;
    ep.ldo = N;
  }
  run_gemm(kernel_set(kern), BitOp::And, M * kPanelRows, nw, pack, nullptr, 0, w, nw, N, ep,
           threads);
}

// ---------------------------------------------------------------------------------------------
// The byte GEMM (u8gemm/kernel.h). Tasks are (row block of ≤ 128 KiB of A) × (group of weight
// blocks), enough of them for dynamic balance; A rows are read in place when they are whole
// groups of 4 bytes, else built per task (padded copies, or the im2col rows of a convolution) in
// a buffer of the worker thread, so no im2col matrix is ever materialised.

constexpr std::size_t kU8BlockBytes = 128 * 1024;

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

namespace {

template <class Rows>
void run_u8(Kernel kern, std::size_t M, const U8Prepared& w, const std::uint8_t* direct,
            std::size_t lda, Rows&& rows, const U8Epilogue& ep, int threads) {
  if (M == 0 || w.N == 0) return;
  // Batch 1 to 3: the mask copy of the weights (8× less traffic), where the CPU has VNNI.
  const bool masks = M < 4 && w.wm && kern == Kernel::Avx512 && cpu_has_avx512_vnni();
  const U8Fn fn = masks ? u8_avx512_mask_kernel() : u8_kernel(kern);
  const void* wts = masks ? static_cast<const void*>(w.wm) : static_cast<const void*>(w.wp);
  const std::size_t kg = u8_groups(w.K), nb = u8_blocks(w.N), row_bytes = 4 * kg;
  const std::size_t rb = std::min<std::size_t>(
      1536, std::max<std::size_t>(24, kU8BlockBytes / row_bytes / 24 * 24));
  const std::size_t nrb = ceil_div(M, rb);
  std::size_t ncg = 1;
  if (threads > 1) ncg = std::min(nb, ceil_div(4 * static_cast<std::size_t>(threads), nrb));
  const std::size_t cg = ceil_div(nb, ncg);
  ncg = ceil_div(nb, cg);
  parallel_for(nrb * ncg, threads, [&](std::size_t t) {
    const std::size_t r0 = t / ncg * rb, n = std::min(rb, M - r0);
    const std::size_t b0 = t % ncg * cg, b1 = std::min(nb, b0 + cg);
    if (direct) return fn(direct + r0 * lda, lda, r0, n, wts, kg, b0, b1, w.N, ep);
    thread_local std::vector<std::uint8_t> buf;
    if (buf.size() < n * row_bytes) buf.resize(n * row_bytes);
    rows(r0, n, buf.data(), row_bytes);
    fn(buf.data(), row_bytes, r0, n, wts, kg, b0, b1, w.N, ep);
    if (buf.size() > (std::size_t{16} << 20)) std::vector<std::uint8_t>().swap(buf);  // huge k
  });
}

U8Epilogue u8_epilogue(std::size_t N, const std::int32_t* lo, const std::int32_t* hi,
                       std::int32_t* out, std::uint64_t* out_bits) {
  U8Epilogue ep;
  if (out_bits) {
    ep.bits = reinterpret_cast<std::uint8_t*>(out_bits);
    ep.ldb = words_for(N) * 8;
    ep.lo = lo;
    ep.hi = hi;
  } else {
    ep.out = out;
    ep.ldo = N;
  }
  return ep;
}

}  // namespace

void u8gemm(Kernel kern, const std::uint8_t* x, std::size_t M, const U8Prepared& w,
            const std::int32_t* lo, const std::int32_t* hi, int threads, std::int32_t* out,
            std::uint64_t* out_bits) {
  if (kern == Kernel::Reference)
    return bitplane_gemm(kern, x, M, w.K, w.bits, w.N, w.nw, lo, hi, threads, out, out_bits);
  const std::size_t K = w.K, row_bytes = 4 * u8_groups(K);
  auto padded = [&](std::size_t r0, std::size_t n, std::uint8_t* dst, std::size_t ld) {
    for (std::size_t i = 0; i < n; ++i) {
      std::memcpy(dst + i * ld, x + (r0 + i) * K, K);
      std::memset(dst + i * ld + K, 0, ld - K);
    }
  };
  const bool in_place = K == row_bytes;
  run_u8(kern, M, w, in_place ? x : nullptr, K, padded, u8_epilogue(w.N, lo, hi, out, out_bits),
         threads);
}

void u8conv2d(Kernel kern, const ConvGeom& g, const std::uint8_t* x, std::uint8_t pad_value,
              const U8Prepared& w, const std::int32_t* lo, const std::int32_t* hi, int threads,
              std::int32_t* out, std::uint64_t* out_bits) {
  const std::size_t M = g.rows();
  if (kern == Kernel::Reference) {
    const std::size_t K = w.K;
    std::unique_ptr<std::uint8_t[]> cols(new std::uint8_t[std::max<std::size_t>(M * K, 1)]);
    im2col_u8_rows(g, x, pad_value, 0, M, cols.get());
    return bitplane_gemm(kern, cols.get(), M, K, w.bits, w.N, w.nw, lo, hi, threads, out,
                         out_bits);
  }
  auto rows = [&](std::size_t r0, std::size_t n, std::uint8_t* dst, std::size_t ld) {
    im2col_u8_rows_to(g, x, pad_value, r0, n, dst, ld);
  };
  run_u8(kern, M, w, nullptr, 0, rows, u8_epilogue(w.N, lo, hi, out, out_bits), threads);
}

void threshold_bits(const std::int32_t* y, std::size_t M, std::size_t N, const std::int32_t* lo,
                    const std::int32_t* hi, int threads, std::uint64_t* out) {
  const std::size_t per = std::max<std::size_t>(1, (std::size_t{1} << 16) / std::max<std::size_t>(N, 1));
  parallel_for(ceil_div(M, per), threads, [&](std::size_t t) {
    const std::size_t m0 = t * per, m1 = std::min(M, m0 + per);
    reference::threshold_bits(y + m0 * N, m1 - m0, N, lo, hi, out + m0 * words_for(N));
  });
}

void bconv2d(Kernel kern, const ConvGeom& g, const std::uint64_t* x, const std::uint64_t* w,
             const std::int32_t* lo, const std::int32_t* hi, int threads, std::int32_t* out,
             std::uint64_t* out_bits) {
  const std::size_t M = g.rows(), N = g.O;
  if (kern == Kernel::Reference) {
    if (!out_bits) return reference::bconv2d(g, x, w, out);
    std::unique_ptr<std::int32_t[]> v(new std::int32_t[std::max<std::size_t>(M * N, 1)]);
    reference::bconv2d(g, x, w, v.get());
    return reference::threshold_bits(v.get(), M, N, lo, hi, out_bits);
  }
  const PaddingCorrection pc = padding_correction(g, w);
  Epilogue ep;
  ep.base = static_cast<std::int32_t>(g.kh * g.kw * g.c);
  ep.corr = pc.table.data();
  ep.corr_row = pc.offset.data();
  if (out_bits) {
    ep.bits = reinterpret_cast<std::uint8_t*>(out_bits);
    ep.ldb = words_for(N) * 8;
    ep.lo = lo;
    ep.hi = hi;
  } else {
    ep.out = out;
    ep.ldo = N;
  }
  auto pack = [&](std::size_t r0, std::size_t n, std::uint64_t* dst) {
    conv_rows_to_panels(g, x, r0, n, dst);
  };
  run_gemm(kernel_set(kern), BitOp::Xor, M, g.row_words(), pack, nullptr, 0, w, g.row_words(), N,
           ep, threads);
}

}  // namespace binarynet
