// Kernel choice and the operation drivers (baseline ISA). Callers (bindings.cc) validate shapes;
// these functions assume valid arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bconv/geometry.h"

namespace binarynet {

enum class Kernel { Reference, Portable, Avx2, Avx512 };

// Kernels this CPU can run, best last.
std::vector<std::string> available_kernels();
// Best available kernel, or the one named by the environment variable BINARYNET_KERNEL.
// Throws std::invalid_argument if that variable names an unknown or unavailable kernel.
std::string default_kernel();
// "auto" or a kernel name → Kernel. Throws std::invalid_argument (unknown / not on this CPU).
Kernel resolve_kernel(const std::string& name);

// out [M, N] = k − 2·popcount(a[m] ⊕ w[n]); a [M, nw], w [N, nw].
void bgemm(Kernel kern, const std::uint64_t* a, std::size_t M, const std::uint64_t* w,
           std::size_t N, std::size_t nw, std::size_t k, int threads, std::int32_t* out);
// out [M, ceil(N/64)] words: bit n = 0 iff lo[n] ≤ bgemm value ≤ hi[n]. `out` must be zeroed.
void bgemm_threshold(Kernel kern, const std::uint64_t* a, std::size_t M, const std::uint64_t* w,
                     std::size_t N, std::size_t nw, std::size_t k, const std::int32_t* lo,
                     const std::int32_t* hi, int threads, std::uint64_t* out);
// out [M, N] = Σ_i x[m, i]·w[n, i] (w as ±1); x [M, K] uint8, w [N, nw].
void bitplane_gemm(Kernel kern, const std::uint8_t* x, std::size_t M, std::size_t K,
                   const std::uint64_t* w, std::size_t N, std::size_t nw, int threads,
                   std::int32_t* out);
// Binary convolution (g.compute_output() done); out int32 [B, Ho, Wo, O], or, when lo/hi are
// given, packed threshold bits [B, Ho, Wo, ceil(O/64)] (zeroed by the caller).
void bconv2d(Kernel kern, const ConvGeom& g, const std::uint64_t* x, const std::uint64_t* w,
             const std::int32_t* lo, const std::int32_t* hi, int threads, std::int32_t* out,
             std::uint64_t* out_bits);

}  // namespace binarynet
