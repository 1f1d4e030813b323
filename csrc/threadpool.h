// A small persistent thread pool (std::thread, not OpenMP: torch ships its own libgomp into the
// same process, and two OpenMP runtimes fight over the cores).
//
// parallel_for(n, threads, f) runs f(i) for every i in [0, n), on up to `threads` threads, the
// calling thread included; tasks are handed out one at a time from an atomic counter, so a core
// that another process is using only takes fewer tasks. Workers are created on first use and then
// sleep on a condition variable between calls (a short spin first, so back-to-back calls don't pay
// a wake-up each); no thread is created in the hot path once the pool has grown to the size asked.
//
// Concurrency: one parallel region runs at a time. A second caller (another Python thread, the GIL
// being released) or a nested call from inside a task does not wait: it runs its tasks serially on
// its own thread, which gives the same results. After fork() the child gets a fresh pool (the
// parent's workers do not exist there).
#pragma once

#include <cstddef>
#include <type_traits>

namespace binarynet {

// Thread count used when a kernel is called with threads = 0. Defaults to the hardware concurrency.
int get_num_threads();
void set_num_threads(int n);
// Resolves a per-call thread request (0 = the global setting).
inline int resolve_threads(int threads) { return threads > 0 ? threads : get_num_threads(); }

using TaskFn = void (*)(void* ctx, std::size_t task);
void parallel_for_raw(std::size_t ntasks, int threads, TaskFn fn, void* ctx);

template <typename F>
void parallel_for(std::size_t ntasks, int threads, F&& f) {
  if (ntasks == 0) return;
  if (ntasks == 1 || threads <= 1) {
    for (std::size_t i = 0; i < ntasks; ++i) f(i);
    return;
  }
  using Fn = typename std::remove_reference<F>::type;
  parallel_for_raw(
      ntasks, threads, [](void* ctx, std::size_t i) { (*static_cast<Fn*>(ctx))(i); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

}  // namespace binarynet
