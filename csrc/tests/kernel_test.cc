// The kernel tests as a standalone program (no Python): every variant this CPU can run against
// the reference kernels on random shapes — K not a multiple of 64 or 128, tails of every block
// size (rows, 8-column tiles, 16-output blocks, 4-byte groups), batch 1 to 3 (the unpacked-row and
// prepacked-W paths), odd spatial sizes, strides, padding borders, 1 and 3 threads — for every op
// with optimised kernels: bgemm[_threshold] (with and without the prepacked W panels),
// bitplane_gemm[_threshold], threshold_bits, bconv2d[_threshold], u8gemm[_threshold],
// u8conv2d[_threshold], maxpool2d_int32 / maxpool2d_bits.
//
// Built natively (tools/kernel_test.sh native: the x86 variants) and cross-compiled for aarch64
// and run under QEMU with and without the dot-product extension (tools/kernel_test.sh arm64):
// the NEON kernels are checked bit for bit without an ARM machine.
// tests/backends/engine/test_kernel_program.py runs both from pytest. Exit status 0 iff every case
// matches; the first mismatch is printed.
//
//   kernel_test [--seed S] [--cases N] [--kernel NAME]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bconv/bconv.h"
#include "bgemm/bgemm.h"
#include "bitpack.h"
#include "kernel_choice.h"
#include "pool/pool.h"
#include "u8gemm/u8gemm.h"

using namespace binarynet;

namespace {

std::mt19937_64 rng;
std::size_t g_checks = 0;
std::string g_kernel;  // the variant under test (for the messages)

std::size_t pick(std::size_t lo, std::size_t hi) {  // uniform in [lo, hi]
  return lo + static_cast<std::size_t>(rng() % (hi - lo + 1));
}

// Random bit rows [rows, nw] with k real bits per row (padding bits zero).
std::vector<std::uint64_t> random_bits(std::size_t rows, std::size_t k) {
  const std::size_t nw = words_for(k);
  std::vector<std::uint64_t> v(std::max<std::size_t>(rows * nw, 1));
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t w = 0; w < nw; ++w) v[r * nw + w] = rng() & word_mask(k, w);
  return v;
}

std::vector<std::uint8_t> random_bytes(std::size_t n) {
  std::vector<std::uint8_t> v(std::max<std::size_t>(n, 1));
  const bool small = rng() % 4 == 0;  // sometimes few distinct values (ties at the thresholds)
  for (auto& x : v) x = static_cast<std::uint8_t>(small ? rng() % 3 : rng() % 256);
  return v;
}

// Thresholds [lo, hi] per column around the range of possible values ±bound.
void random_thresholds(std::size_t N, std::int64_t bound, std::vector<std::int32_t>& lo,
                       std::vector<std::int32_t>& hi) {
  lo.resize(std::max<std::size_t>(N, 1));
  hi.resize(lo.size());
  for (std::size_t n = 0; n < N; ++n) {
    const auto span = static_cast<std::uint64_t>(2 * bound + 1);
    auto a = static_cast<std::int64_t>(rng() % span) - bound;
    auto b = static_cast<std::int64_t>(rng() % span) - bound;
    if (rng() % 4 == 0) b = bound + 1;  // one-sided
    if (rng() % 4 == 0) a = -bound - 1;
    if (a > b) std::swap(a, b);
    lo[n] = static_cast<std::int32_t>(a);
    hi[n] = static_cast<std::int32_t>(b);
  }
}

template <typename T>
bool same(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  ++g_checks;
  for (std::size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i]) {
      std::fprintf(stderr, "MISMATCH kernel=%s %s: element %zu: got %lld, want %lld\n",
                   g_kernel.c_str(), what.c_str(), i, static_cast<long long>(got[i]),
                   static_cast<long long>(want[i]));
      return false;
    }
  return true;
}

// Runs op(kernel, Output) for the reference and for `kern`, as int32 values and as threshold
// bits, and compares. M × N result, values bounded by ±bound.
template <class Op>
bool check_gemm_op(Kernel kern, std::size_t M, std::size_t N, std::int64_t bound, Op&& op,
                   const std::string& what) {
  std::vector<std::int32_t> want(std::max<std::size_t>(M * N, 1)), got(want.size(), -7);
  gemm::Output o;
  o.values = want.data();
  op(Kernel::Reference, o);
  o.values = got.data();
  op(kern, o);
  if (!same(got, want, what + " values")) return false;
  std::vector<std::int32_t> lo, hi;
  random_thresholds(N, bound, lo, hi);
  const std::size_t nwo = words_for(N);
  std::vector<std::uint64_t> wb(std::max<std::size_t>(M * nwo, 1), 0), gb(wb.size(), 0);
  gemm::Output t;
  t.lo = lo.data();
  t.hi = hi.data();
  t.bits = wb.data();
  op(Kernel::Reference, t);
  t.bits = gb.data();
  op(kern, t);
  return same(gb, wb, what + " threshold bits");
}

std::string shape(const char* op, std::initializer_list<std::size_t> dims, int threads) {
  std::string s = op;
  s += "(";
  bool first = true;
  for (std::size_t d : dims) {
    s += (first ? "" : ",") + std::to_string(d);
    first = false;
  }
  return s + ") threads=" + std::to_string(threads);
}

// K values around the word and 128-bit boundaries, and a few larger ones: from 24 words (1536
// bits) on the avx2 kernel counts with carry-save adders in blocks of 8 words (1537: 3 blocks +
// 1 word, 2049: 4 + 1, 4031: 7 + 7).
std::size_t pick_k() {
  static const std::size_t ks[] = {1,   2,   27,  63,  64,  65,  100,  127,  128,  129,  191, 192,
                                   255, 256, 257, 500, 576, 784, 1000, 1152, 1537, 2049, 4031};
  return ks[rng() % (sizeof ks / sizeof ks[0])];
}
std::size_t pick_m() {
  static const std::size_t ms[] = {1,  2,  3,  4,  5,  7,  8,  9,  15, 16,
                                   17, 23, 24, 25, 31, 40, 49, 64, 97};
  return ms[rng() % (sizeof ms / sizeof ms[0])];
}
std::size_t pick_n() {
  static const std::size_t ns[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 130};
  return ns[rng() % (sizeof ns / sizeof ns[0])];
}

bool test_bgemm(Kernel kern, int threads) {
  const std::size_t M = pick_m(), N = pick_n(), K = pick_k(), nw = words_for(K);
  const auto a = random_bits(M, K), w = random_bits(N, K);
  std::vector<std::uint64_t> panels(std::max<std::size_t>(panel_words(N, nw), 1));
  pack_weight_panels(w.data(), N, nw, panels.data());
  const auto b = static_cast<std::int64_t>(K);
  return check_gemm_op(
             kern, M, N, b,
             [&](Kernel k, const gemm::Output& o) {
               bgemm(k, a.data(), M, w.data(), N, nw, K, threads, o);
             },
             shape("bgemm", {M, N, K}, threads)) &&
         check_gemm_op(
             kern, M, N, b,
             [&](Kernel k, const gemm::Output& o) {
               bgemm(k, a.data(), M, w.data(), N, nw, K, threads, o, panels.data());
             },
             shape("bgemm+panels", {M, N, K}, threads));
}

bool test_bgemm_long_k(Kernel kern, std::size_t K) {
  const std::size_t nw = words_for(K), N = 11;
  const auto w = random_bits(N, K);
  std::vector<std::uint64_t> panels(panel_words(N, nw));
  pack_weight_panels(w.data(), N, nw, panels.data());
  for (std::size_t M : {9, 1, 2}) {
    // Row r is the complement of W row r % N (every popcount at its maximum, K: the worst case
    // for the accumulators) or random.
    auto a = random_bits(M, K);
    for (std::size_t r = 0; r < M; r += 2)
      for (std::size_t i = 0; i < nw; ++i) a[r * nw + i] = ~w[(r % N) * nw + i] & word_mask(K, i);
    if (!check_gemm_op(
            kern, M, N, static_cast<std::int64_t>(K),
            [&](Kernel k, const gemm::Output& o) {
              bgemm(k, a.data(), M, w.data(), N, nw, K, 2, o, M == 2 ? panels.data() : nullptr);
            },
            shape("bgemm (long K)", {M, N, K}, 2)))
      return false;
  }
  return true;
}

// K at and past the limits of the kernels' narrow counters, each reached exactly when every bit
// of a ⊕ w is set: byte counts for 31 words (the table kernels) or 31 blocks of 8 words (the
// avx2 carry-save counters: 248, 249, 263 words), and the 16-bit accumulators of the NEON kernels
// (4095 words). The packed-panel path (9 rows), the unpacked-row path (1 row) and the prepacked-W
// path (2 rows).
bool test_bgemm_long_k(Kernel kern) {
  for (std::size_t K :
       {31 * 64, 32 * 64 - 5, 248 * 64, 249 * 64 - 1, 263 * 64, 4096 * 64 + 4 * 64 + 37})
    if (!test_bgemm_long_k(kern, K)) return false;
  return true;
}

bool test_bitplane(Kernel kern, int threads) {
  const std::size_t M = pick_m(), N = pick_n(), K = pick_k(), nw = words_for(K);
  const auto x = random_bytes(M * K);
  const auto w = random_bits(N, K);
  return check_gemm_op(
      kern, M, N, static_cast<std::int64_t>(255 * K),
      [&](Kernel k, const gemm::Output& o) {
        bitplane_gemm(k, x.data(), M, K, w.data(), N, nw, threads, o);
      },
      shape("bitplane_gemm", {M, N, K}, threads));
}

bool test_u8gemm(Kernel kern, int threads) {
  const std::size_t M = pick_m(), N = pick_n(), K = pick_k(), nw = words_for(K);
  const auto x = random_bytes(M * K);
  const auto w = random_bits(N, K);
  std::vector<std::int8_t> wp(u8_prepared_bytes(N, K));
  std::vector<std::uint64_t> wm(u8_mask_words(N, K));
  u8_prepare(w.data(), N, nw, K, wp.data(), wm.data());
  U8Prepared p;
  p.bits = w.data();
  p.wp = wp.data();
  p.wm = wm.data();
  p.N = N;
  p.K = K;
  p.nw = nw;
  return check_gemm_op(
      kern, M, N, static_cast<std::int64_t>(255 * K),
      [&](Kernel k, const gemm::Output& o) { u8gemm(k, x.data(), M, p, threads, o); },
      shape("u8gemm", {M, N, K}, threads));
}

// The byte GEMM at the limit of the avx2 kernel's int16 accumulators (64 groups of 4 k, each
// adding ±510 with pixels 255 against all-equal weights: ±32640 per chunk): rows of 255 (and one
// random row) against weight rows of all +1, all −1 and random, k around one and two chunks.
bool test_u8gemm_limits(Kernel kern) {
  for (std::size_t K : {252, 256, 257, 512, 513, 784}) {
    const std::size_t M = 7, N = 5, nw = words_for(K);
    std::vector<std::uint8_t> x(M * K, 255);
    for (std::size_t i = 0; i < K; ++i) x[3 * K + i] = static_cast<std::uint8_t>(rng());
    auto w = random_bits(N, K);
    for (std::size_t i = 0; i < nw; ++i) {
      w[0 * nw + i] = 0;                // all +1
      w[1 * nw + i] = word_mask(K, i);  // all −1
    }
    std::vector<std::int8_t> wp(u8_prepared_bytes(N, K));
    std::vector<std::uint64_t> wm(u8_mask_words(N, K));
    u8_prepare(w.data(), N, nw, K, wp.data(), wm.data());
    U8Prepared p;
    p.bits = w.data();
    p.wp = wp.data();
    p.wm = wm.data();
    p.N = N;
    p.K = K;
    p.nw = nw;
    for (std::size_t m : {M, std::size_t{1}})
      if (!check_gemm_op(
              kern, m, N, static_cast<std::int64_t>(255 * K),
              [&](Kernel k, const gemm::Output& o) { u8gemm(k, x.data(), m, p, 1, o); },
              shape("u8gemm (int16 limits)", {m, N, K}, 1)))
        return false;
  }
  return true;
}

ConvGeom random_geom(std::size_t max_hw) {
  for (;;) {
    ConvGeom g;
    g.B = pick(1, 3);
    g.H = pick(1, max_hw);
    g.W = pick(1, max_hw);
    g.kh = pick(1, 4);
    g.kw = pick(1, 4);
    g.sh = pick(1, 2);
    g.sw = pick(1, 2);
    g.ph = pick(0, 2);
    g.pw = pick(0, 2);
    g.O = pick_n();
    if (g.compute_output()) return g;
  }
}

bool test_bconv(Kernel kern, int threads) {
  ConvGeom g = random_geom(9);
  static const std::size_t cs[] = {1, 3, 31, 64, 65, 128, 130};
  g.c = cs[rng() % (sizeof cs / sizeof cs[0])];
  g.cw = words_for(g.c);
  const auto x = random_bits(g.B * g.H * g.W, g.c);
  // W [O, kh, kw, cw]: each tap's channel words with zero padding bits.
  const auto w = random_bits(g.O * g.kh * g.kw, g.c);
  return check_gemm_op(
      kern, g.rows(), g.O, static_cast<std::int64_t>(g.kh * g.kw * g.c),
      [&](Kernel k, const gemm::Output& o) { bconv2d(k, g, x.data(), w.data(), threads, o); },
      shape("bconv2d", {g.B, g.H, g.W, g.c, g.O, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw}, threads));
}

bool test_u8conv(Kernel kern, int threads) {
  ConvGeom g = random_geom(11);
  g.c = g.cw = pick(1, 5);
  const std::size_t K = g.kh * g.kw * g.c, nw = words_for(K);
  const auto x = random_bytes(g.B * g.H * g.W * g.c);
  const auto w = random_bits(g.O, K);
  std::vector<std::int8_t> wp(u8_prepared_bytes(g.O, K));
  std::vector<std::uint64_t> wm(u8_mask_words(g.O, K));
  u8_prepare(w.data(), g.O, nw, K, wp.data(), wm.data());
  U8Prepared p;
  p.bits = w.data();
  p.wp = wp.data();
  p.wm = wm.data();
  p.N = g.O;
  p.K = K;
  p.nw = nw;
  const auto pad = static_cast<std::uint8_t>(rng() % 2 ? 0 : rng() % 256);
  return check_gemm_op(
      kern, g.rows(), g.O, static_cast<std::int64_t>(255 * K),
      [&](Kernel k, const gemm::Output& o) { u8conv2d(k, g, x.data(), pad, p, threads, o); },
      shape("u8conv2d", {g.B, g.H, g.W, g.c, g.O, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, pad},
            threads));
}

bool test_threshold_and_pool(Kernel kern, int threads) {
  const std::size_t M = pick_m(), N = pick_n();
  std::vector<std::int32_t> y(M * N), lo, hi;
  for (auto& v : y) v = static_cast<std::int32_t>(rng() % 41) - 20;
  random_thresholds(N, 20, lo, hi);
  std::vector<std::uint64_t> want(M * words_for(N), 0), got(want.size(), 0);
  threshold_bits(Kernel::Reference, y.data(), M, N, lo.data(), hi.data(), threads, want.data());
  threshold_bits(kern, y.data(), M, N, lo.data(), hi.data(), threads, got.data());
  if (!same(got, want, shape("threshold_bits", {M, N}, threads))) return false;

  PoolGeom g;
  g.B = pick(1, 2);
  g.k = pick(1, 3);
  g.s = pick(1, 3);
  g.H = pick(g.k, 9);
  g.W = pick(g.k, 9);
  g.C = pick(1, 70);
  g.Ho = (g.H - g.k) / g.s + 1;
  g.Wo = (g.W - g.k) / g.s + 1;
  std::vector<std::int32_t> x(g.B * g.H * g.W * g.C);
  for (auto& v : x) v = static_cast<std::int32_t>(rng() % 2001) - 1000;
  std::vector<std::int32_t> pw(g.B * g.Ho * g.Wo * g.C), pg(pw.size());
  maxpool2d_int32(Kernel::Reference, g, x.data(), pw.data(), threads);
  maxpool2d_int32(kern, g, x.data(), pg.data(), threads);
  if (!same(pg, pw, shape("maxpool2d_int32", {g.B, g.H, g.W, g.C, g.k, g.s}, threads)))
    return false;
  PoolGeom gb = g;
  gb.C = pick(1, 3);  // words
  std::vector<std::uint64_t> xb(gb.B * gb.H * gb.W * gb.C), mask(gb.C);
  for (auto& v : xb) v = rng() & rng();
  for (auto& v : mask) v = rng();
  std::vector<std::uint64_t> bw(gb.B * gb.Ho * gb.Wo * gb.C), bg(bw.size());
  maxpool2d_bits(Kernel::Reference, gb, xb.data(), mask.data(), bw.data(), threads);
  maxpool2d_bits(kern, gb, xb.data(), mask.data(), bg.data(), threads);
  return same(bg, bw, shape("maxpool2d_bits", {gb.B, gb.H, gb.W, gb.C, gb.k, gb.s}, threads));
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long long seed = 12345;
  int cases = 60;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--cases" && i + 1 < argc) {
      cases = std::atoi(argv[++i]);
    } else if (arg == "--kernel" && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: kernel_test [--seed S] [--cases N] [--kernel NAME]\n");
      return 2;
    }
  }
  std::vector<std::string> names;
  for (const auto& n : available_kernels())
    if (n != "reference" && (only.empty() || n == only)) names.push_back(n);
  if (!only.empty() && names.empty()) {
    std::fprintf(stderr, "kernel_test: kernel '%s' is not available on this CPU\n", only.c_str());
    return 2;
  }
  std::printf("kernels:");
  for (const auto& n : names) std::printf(" %s", n.c_str());
  std::printf(" (default %s)\n", default_kernel().c_str());
  using Test = bool (*)(Kernel, int);
  const Test tests[] = {test_bgemm, test_bitplane, test_u8gemm,
                        test_bconv, test_u8conv,   test_threshold_and_pool};
  for (const auto& name : names) {
    g_kernel = name;
    const Kernel kern = resolve_kernel(name);
    rng.seed(seed);
    if (!test_bgemm_long_k(kern) || !test_u8gemm_limits(kern)) {
      std::printf("FAILED (seed %llu, long K / accumulator limits)\n", seed);
      return 1;
    }
    for (int c = 0; c < cases; ++c)
      for (Test t : tests)
        for (int threads : {1, 3})
          if (!t(kern, threads)) {
            std::printf("FAILED (seed %llu, case %d)\n", seed, c);
            return 1;
          }
    std::printf("%s: ok\n", name.c_str());
  }
  std::printf("all %zu checks passed\n", g_checks);
  return 0;
}
