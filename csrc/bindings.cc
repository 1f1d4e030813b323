// nanobind module binarynet._kernels: the compiled half of the engine.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>

#include "bitpack.h"

namespace nb = nanobind;

namespace {

using Packed = nb::ndarray<nb::numpy, std::uint64_t, nb::ndim<2>>;

template <typename T>
Packed pack_signs_2d(nb::ndarray<const T, nb::ndim<2>, nb::c_contig, nb::device::cpu> x) {
  const std::size_t rows = x.shape(0), k = x.shape(1), nw = binarynet::words_for(k);
  auto* out = new std::uint64_t[rows * nw > 0 ? rows * nw : 1];
  {
    nb::gil_scoped_release release;
    binarynet::pack_signs(x.data(), rows, k, out);
  }
  nb::capsule owner(out, [](void* p) noexcept { delete[] static_cast<std::uint64_t*>(p); });
  return Packed(out, {rows, nw}, owner);
}

}  // namespace

NB_MODULE(_kernels, m) {
  m.doc() = "binarynet compiled kernels (bit packing, XNOR-popcount GEMM and convolution)";
  m.def("pack_signs", &pack_signs_2d<float>, nb::arg("x"),
        "Pack the signs of a C-contiguous 2-D array along its last axis into uint64 words "
        "(bit 1 = negative; sign(0) = +1).");
  m.def("pack_signs", &pack_signs_2d<std::int8_t>, nb::arg("x"));
}
