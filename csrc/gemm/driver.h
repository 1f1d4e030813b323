// What the op drivers of the binary GEMM (bgemm/popcount.h, bgemm.cc, bconv.cc) and of the byte
// GEMM (u8gemm/u8gemm.cc) share: blocking sizes, the split of (rows × columns) into tasks for the
// thread pool, the output sink of the epilogue (int32 values or packed threshold bits), the
// reference path, aligned scratch. Baseline ISA, included by the drivers and the bindings, never
// by a kernel translation unit (those include their folder's kernel_loops.h).
//
// Tasks are (row block) × (column group). Row blocks are sized to the cache (their A rows stay in
// L2 while the column group streams past them); with more than one thread the columns are split
// too, so that there are about 4 tasks per thread — enough for dynamic balance when another
// process is using one of the cores, and narrow shapes (batch 1) still use every thread. The pool
// hands the tasks out one at a time; each task writes its own rows × columns of the output, so the
// result does not depend on the thread count.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>

#include "bgemm/reference.h"
#include "bitpack.h"
#include "threadpool.h"

namespace binarynet {
namespace gemm {

inline std::size_t ceil_div(std::size_t x, std::size_t m) { return (x + m - 1) / m; }
inline std::size_t round_up(std::size_t x, std::size_t m) { return ceil_div(x, m) * m; }

// 64-byte aligned scratch of `n` elements of T (at least one).
template <typename T>
struct AlignedBuffer {
  T* p = nullptr;
  explicit AlignedBuffer(std::size_t n) {
    const std::size_t bytes = round_up(std::max<std::size_t>(n, 1) * sizeof(T), 64);
    p = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(p); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
};

// Rows per row block: as many as fit in `budget` bytes of A rows of `row_bytes` each, a multiple
// of `tile` (every micro-tile height divides it), at least `tile`, at most `max_rows`.
inline std::size_t block_rows(std::size_t budget, std::size_t row_bytes, std::size_t tile,
                              std::size_t max_rows = std::numeric_limits<std::size_t>::max()) {
  return std::min(max_rows, std::max(tile, budget / row_bytes / tile * tile));
}

// Runs f(r0, nrows, u0, u1) for every task of rows [0, rows) in blocks of `row_block` × column
// units [0, units) in groups (a unit is the op's column tile: 8 columns of the binary GEMM, one
// 16-output weight block of the byte GEMM), on `threads` threads.
template <class F>
void for_each_task(std::size_t rows, std::size_t row_block, std::size_t units, int threads, F&& f) {
  if (rows == 0 || units == 0) return;
  const std::size_t nrb = ceil_div(rows, row_block);
  std::size_t ngroups = 1;
  if (threads > 1) ngroups = std::min(units, ceil_div(4 * static_cast<std::size_t>(threads), nrb));
  const std::size_t group = ceil_div(units, ngroups);
  ngroups = ceil_div(units, group);
  parallel_for(nrb * ngroups, threads, [&](std::size_t t) {
    const std::size_t r0 = t / ngroups * row_block, u0 = t % ngroups * group;
    f(r0, std::min(row_block, rows - r0), u0, std::min(units, u0 + group));
  });
}

// Where an op writes its [M, N] result: int32 values, or — when lo/hi are given — packed
// threshold bits [M, ceil(N/64)] (zeroed by the caller), bit n of row m = 0 (+1) iff
// lo[n] ≤ value ≤ hi[n] ("batch norm + sign", see bgemm/kernel.h).
struct Output {
  std::int32_t* values = nullptr;
  std::uint64_t* bits = nullptr;
  const std::int32_t* lo = nullptr;
  const std::int32_t* hi = nullptr;
};

// The epilogue's sink, set up in this one place for every op: `Ep` is bgemm's Epilogue or
// u8gemm's U8Epilogue (the same sink fields).
template <class Ep>
void set_sink(Ep& ep, std::size_t N, const Output& out) {
  if (out.bits) {
    ep.bits = reinterpret_cast<std::uint8_t*>(out.bits);
    ep.ldb = words_for(N) * 8;
    ep.lo = out.lo;
    ep.hi = out.hi;
  } else {
    ep.out = out.values;
    ep.ldo = N;
  }
}

// The reference path of an op: `values(int32_t* v)` computes the [M, N] int32 result from its
// definition; with bits asked for, it goes to a scratch array and reference::threshold_bits
// packs it (no epilogue, no shared code with the fast path).
template <class Values>
void reference_output(std::size_t M, std::size_t N, const Output& out, Values&& values) {
  if (!out.bits) return values(out.values);
  std::unique_ptr<std::int32_t[]> v(new std::int32_t[std::max<std::size_t>(M * N, 1)]);
  values(v.get());
  reference::threshold_bits(v.get(), M, N, out.lo, out.hi, out.bits);
}

}  // namespace gemm
}  // namespace binarynet
