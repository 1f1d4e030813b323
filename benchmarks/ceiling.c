/* Register-only throughput of the two instructions the x86 binary GEMM kernels are built on:
 * the ceiling a GEMM on them cannot pass, measured on this machine (benchmarks/ceiling.py builds
 * this file as a shared library and calls it through ctypes; benchmarks/engine.py times it beside
 * the GEMM, in the same rounds).
 *
 *   popcount_macs(n): n iterations of 16 × (VPXORQ, VPOPCNTQ, VPADDQ) on zmm registers, 2 × 8
 *       operands held in registers: 16 · 512 = 8 192 binary multiply-adds per iteration (XNOR +
 *       popcount: one bit product per bit of the XOR), what csrc/bgemm/avx512.cc's inner loop does
 *       without its loads.
 *   tile_macs(n, loaded): n iterations of 4 × TDPBSSD (16 × 16 int32 += 16 × 64 int8 · 64 × 16
 *       int8) into 4 accumulator tiles: 4 · 16 384 int8 multiply-adds per iteration, each one
 *       binary MAC when the bytes are ±1 (csrc/bgemm/amx.cc). loaded = 1: the source tiles hold
 *       random ±1 bytes (TILELOADD), as in a GEMM; loaded = 0: they were never loaded since
 *       LDTILECFG (the "init" state the hardware knows to be zero), which some CPUs run faster
 *       than real data: a ceiling measured that way overstates what a GEMM can reach.
 *   tile_block_macs(n): n iterations of the 2 × 2 block every AMX GEMM here runs (tiles 0–3 the
 *       results, 4–5 and 6–7 the operands): 4 TILELOADD from a 16 KiB buffer that stays in L1,
 *       then 4 TDPBSSD — the same products, now with the loads a GEMM cannot avoid (a 2 × 2 block
 *       needs 4 operand tiles per 4 products, however the loops are arranged), from the fastest
 *       memory there is: the ceiling of a tile GEMM, loads included.
 *
 * Each function returns the elapsed seconds of its loop (steady clock); MACs / seconds is the
 * rate. The caller checks the CPU flags first (avx512_vpopcntdq; amx_int8 and amx_tile) and asks
 * Linux for the tile state with request_tiles().
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double seconds_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* 0 when Linux grants this process the AMX tile data state (ARCH_REQ_XCOMP_PERM). */
int request_tiles(void) {
  const long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
  return (int)syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata);
}

__attribute__((target("avx512f,avx512vpopcntdq"))) double popcount_macs(long n) {
  __m512i acc[16], a0 = _mm512_set1_epi64(0x9E3779B97F4A7C15LL), a1 = _mm512_set1_epi64(0x632BE59BD9B4E019LL);
  __m512i b[8];
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) b[j] = _mm512_set1_epi64((long long)(0x2545F4914F6CDD1DULL * (unsigned)(j + 1)));
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_si512();
  const double t0 = seconds_now();
  for (long i = 0; i < n; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      acc[j] = _mm512_add_epi64(acc[j], _mm512_popcnt_epi64(_mm512_xor_si512(a0, b[j])));
      acc[8 + j] = _mm512_add_epi64(acc[8 + j], _mm512_popcnt_epi64(_mm512_xor_si512(a1, b[j])));
    }
    /* The operands "change" every iteration: the compiler cannot hoist the XOR and popcount. */
    __asm__ volatile("" : "+v"(a0), "+v"(a1));
  }
  const double dt = seconds_now() - t0;
#pragma GCC unroll 16
  for (int j = 1; j < 16; ++j) acc[0] = _mm512_add_epi64(acc[0], acc[j]);
  volatile long long sink = _mm512_reduce_add_epi64(acc[0]);
  (void)sink;
  return dt;
}

struct tile_config {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

/* 16 KiB of random ±1 bytes (made on the first call), the operands of the tile loops. */
static const int8_t* pm1_bytes(void) {
  static int8_t bytes[16384] __attribute__((aligned(64)));
  static int ready = 0;
  if (!ready) {
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < 16384; ++i) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      bytes[i] = (s & 1) ? -1 : 1;
    }
    ready = 1;
  }
  return bytes;
}

/* Tiles 0–7 as 16 rows × 64 bytes (palette 1); the contents start in the init state. */
__attribute__((target("amx-tile"))) static void configure_tiles(void) {
  struct tile_config c = {0};
  c.palette = 1;
  for (int t = 0; t < 8; ++t) c.colsb[t] = 64, c.rows[t] = 16;
  __asm__ volatile("ldtilecfg %0" : : "m"(c));
}

/* Stores result tile 0 (which waits for the last products), then frees the tile state. */
__attribute__((target("amx-tile"))) static void finish_tiles(void) {
  static int32_t sink[256] __attribute__((aligned(64)));
  _tile_stored(0, sink, 64);
  _tile_release();
}

__attribute__((target("amx-tile,amx-int8"))) double tile_macs(long n, int loaded) {
  const int8_t* bytes = pm1_bytes();
  configure_tiles();
  if (loaded) {
    _tile_loadd(4, bytes, 64);
    _tile_loadd(5, bytes + 1024, 64);
    _tile_loadd(6, bytes + 2048, 64);
    _tile_loadd(7, bytes + 3072, 64);
  }
  const double t0 = seconds_now();
  for (long i = 0; i < n; ++i) {
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  }
  finish_tiles();
  return seconds_now() - t0;
}

__attribute__((target("amx-tile,amx-int8"))) double tile_block_macs(long n) {
  const int8_t* buf = pm1_bytes();
  configure_tiles();
  const double t0 = seconds_now();
  for (long i = 0; i < n; ++i) {
    const int8_t* p = buf + (i & 3) * 4096; /* 4 steps of 4 tiles: 16 KiB */
    _tile_loadd(4, p, 64);
    _tile_loadd(6, p + 1024, 64);
    _tile_dpbssd(0, 4, 6);
    _tile_loadd(7, p + 2048, 64);
    _tile_dpbssd(1, 4, 7);
    _tile_loadd(5, p + 3072, 64);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  }
  finish_tiles();
  return seconds_now() - t0;
}
