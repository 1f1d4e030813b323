// What the two AMX kernel files share (bgemm/amx.cc, u8gemm/amx.cc): the tile configuration every
// AMX kernel here uses, and a per-thread aligned scratch buffer. Only included by files compiled
// with the AMX flags (-mamx-tile -mamx-int8), so its inline functions are never shared with a
// translation unit of another ISA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace binarynet {
namespace amx {

constexpr std::size_t kTileBytes = 1024;  // one tile: 16 rows × 64 bytes

// The tile configuration (palette 1), as LDTILECFG reads it: 64 bytes.
struct TileConfig {
  std::uint8_t palette, start_row, reserved[14];
  std::uint16_t colsb[16];
  std::uint8_t rows[16];
};

// Tiles 0–7 as 16 rows × 64 bytes each.
inline void configure_tiles() {
  TileConfig c{};
  c.palette = 1;
  for (int t = 0; t < 8; ++t) {
    c.colsb[t] = 64;
    c.rows[t] = 16;
  }
  // (Not _tile_loadconfig: GCC 12's version declares an 8-byte memory operand, so the stores of
  // the other 56 bytes are dropped as dead; this operand is the whole structure.)
  asm volatile("ldtilecfg %0" : : "m"(c));
}

// Per-thread scratch, 64-byte aligned, grown on demand (no STL here: see bgemm/kernel.h). Not a
// class template: as one, GCC 12 left its destructor undefined for these thread_local objects.
struct Scratch {
  void* p = nullptr;
  std::size_t bytes = 0;
  ~Scratch() { std::free(p); }
  template <typename T>
  T* get(std::size_t n) {
    if (n > bytes) {
      std::free(p);
      p = std::aligned_alloc(64, (n + 63) / 64 * 64);
      if (!p) {
        bytes = 0;
        throw std::bad_alloc();
      }
      bytes = n;
    }
    return static_cast<T*>(p);
  }
};

}  // namespace amx
}  // namespace binarynet
