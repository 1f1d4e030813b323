// The binary convolution op (baseline ISA): NHWC packed bits, the popcount GEMM of bgemm/ on
// im2col rows packed straight into panels (bconv/im2col.h), with the zero-padding correction
// (bconv/padding.h) in the epilogue. Callers (bindings/) validate shapes.
#pragma once

#include <cstdint>

#include "bconv/geometry.h"
#include "gemm/driver.h"
#include "kernel_choice.h"

namespace binarynet {

// Binary convolution (g.compute_output() done): [B, Ho, Wo, O] int32 values or threshold bits.
void bconv2d(Kernel kern, const ConvGeom& g, const std::uint64_t* x, const std::uint64_t* w,
             int threads, const gemm::Output& out);

}  // namespace binarynet
