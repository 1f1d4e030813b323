// Portable kernels: plain C++ for the baseline ISA (x86-64 without POPCNT, or any other CPU).
//
// Without the POPCNT instruction, GCC turns __builtin_popcountll into a call to libgcc's
// __popcountdi2, so the count is done here in SWAR form instead: the first three steps of the
// classic bit-slicing popcount leave each byte of x holding the popcount of that byte (≤ 8);
// those byte counts are summed across up to 31 words (≤ 248, no byte overflows) and only then
// folded into one number — the fold (two more steps and a multiply) is paid once per 31 words.
// The loops run over the 8 lanes of a panel, which the compiler vectorises with SSE2.
#define BN_KERNEL_NS portable_impl
#include "bgemm/kernel_loops.h"

namespace binarynet {
namespace portable_impl {
namespace {

constexpr std::uint64_t k55 = 0x5555555555555555ull, k33 = 0x3333333333333333ull,
                        k0f = 0x0f0f0f0f0f0f0f0full, k00ff = 0x00ff00ff00ff00ffull,
                        k0001 = 0x0001000100010001ull;
constexpr std::size_t kChunk = 31;  // words whose byte counts can be summed without overflow

inline std::uint64_t byte_counts(std::uint64_t x) {
  x = x - ((x >> 1) & k55);
  x = (x & k33) + ((x >> 2) & k33);
  return (x + (x >> 4)) & k0f;
}

// Sum of the 8 bytes of v, each ≤ 248.
inline std::uint32_t fold_bytes(std::uint64_t v) {
  v = (v & k00ff) + ((v >> 8) & k00ff);                  // four 16-bit sums ≤ 496
  return static_cast<std::uint32_t>((v * k0001) >> 48);  // ≤ 1984, fits in the top 16 bits
}

template <BitOp OP>
inline std::uint64_t combine(std::uint64_t a, std::uint64_t b) {
  if constexpr (OP == BitOp::Xor) return a ^ b;
  return a & b;
}

struct Micro {
  static constexpr int kMaxPanels = 1;
  static constexpr bool kCombinesPlanes = false;

  template <BitOp OP, class Sink>
  static void panels(int /*np*/, const std::uint64_t* a, std::size_t nwords,
                     const std::uint64_t* const wr[8], Sink& sink) {
    std::uint32_t tot[8][8] = {};  // [column][lane]
    for (std::size_t k0 = 0; k0 < nwords; k0 += kChunk) {
      const std::size_t k1 = min_size(nwords, k0 + kChunk);
      std::uint64_t acc[8][8] = {};
      for (std::size_t k = k0; k < k1; ++k) {
        const std::uint64_t* ak = a + k * kPanelRows;
        for (int j = 0; j < 8; ++j) {
          const std::uint64_t b = wr[j][k];
          for (int l = 0; l < 8; ++l) acc[j][l] += byte_counts(combine<OP>(ak[l], b));
        }
      }
      for (int j = 0; j < 8; ++j)
        for (int l = 0; l < 8; ++l) tot[j][l] += fold_bytes(acc[j][l]);
    }
    Sink s = sink;  // fields in registers (see avx512.cc)
    for (int l = 0; l < 8; ++l) {
      v8i pc;
      for (int j = 0; j < 8; ++j) pc[j] = static_cast<std::int32_t>(tot[j][l]);
      s(l, pc);
    }
  }

  template <BitOp OP>
  static void wpanels(int np, const std::uint64_t* a, std::size_t nwords, const std::uint64_t* wp,
                      v8i pc[8]) {
    for (int q = 0; q < np; ++q) {
      const std::uint64_t* panel = wp + static_cast<std::size_t>(q) * nwords * kPanelRows;
      std::uint32_t tot[8] = {};
      for (std::size_t k0 = 0; k0 < nwords; k0 += kChunk) {
        const std::size_t k1 = min_size(nwords, k0 + kChunk);
        std::uint64_t acc[8] = {};
        for (std::size_t k = k0; k < k1; ++k)
          for (int l = 0; l < 8; ++l)
            acc[l] += byte_counts(combine<OP>(a[k], panel[k * kPanelRows + l]));
        for (int l = 0; l < 8; ++l) tot[l] += fold_bytes(acc[l]);
      }
      for (int l = 0; l < 8; ++l) pc[q][l] = static_cast<std::int32_t>(tot[l]);
    }
  }

  template <BitOp OP>
  static v8i rows(const std::uint64_t* a, std::size_t nwords, const std::uint64_t* const wr[8]) {
    std::uint32_t tot[8] = {};
    for (std::size_t k0 = 0; k0 < nwords; k0 += kChunk) {
      const std::size_t k1 = min_size(nwords, k0 + kChunk);
      std::uint64_t acc[8] = {};
      for (std::size_t k = k0; k < k1; ++k)
        for (int j = 0; j < 8; ++j) acc[j] += byte_counts(combine<OP>(a[k], wr[j][k]));
      for (int j = 0; j < 8; ++j) tot[j] += fold_bytes(acc[j]);
    }
    v8i out;
    for (int j = 0; j < 8; ++j) out[j] = static_cast<std::int32_t>(tot[j]);
    return out;
  }
};

}  // namespace
}  // namespace portable_impl

const KernelSet* portable_kernels() {
  static const KernelSet set = {"portable", &portable_impl::panels_entry<portable_impl::Micro>,
                                &portable_impl::rows_entry<portable_impl::Micro>,
                                &portable_impl::wpanels_entry<portable_impl::Micro>};
  return &set;
}

}  // namespace binarynet
