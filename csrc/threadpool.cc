#include "threadpool.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BINARYNET_PAUSE() _mm_pause()
#else
#define BINARYNET_PAUSE() ((void)0)
#endif

namespace binarynet {
namespace {

std::atomic<int> g_num_threads{0};

// Iterations of `pause` (a few tens of ns each) to spin before sleeping: long enough to bridge
// back-to-back kernel calls, short enough not to steal a shared core for long.
constexpr int kSpin = 2000;

// Workers are never destroyed, so an accidental huge thread count would leave that many idle
// threads behind: more than this many are not used.
constexpr int kMaxThreads = 256;

int default_threads() {
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

class Pool {
 public:
  // Runs the job on up to `threads` threads (the caller plus threads − 1 workers).
  void run(std::size_t ntasks, int threads, TaskFn fn, void* ctx) {
    std::unique_lock<std::mutex> region(region_mu_, std::try_to_lock);
    if (!region.owns_lock()) {  // busy (another caller, or nested): run here, serially
      for (std::size_t i = 0; i < ntasks; ++i) fn(ctx, i);
      return;
    }
    const int helpers =
        static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads - 1), ntasks - 1));
    grow(helpers);
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = fn;
      ctx_ = ctx;
      ntasks_ = ntasks;
      next_.store(0, std::memory_order_relaxed);
      helpers_ = helpers;
      closed_ = false;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    work();
    // Every task is taken. Close the job: a worker that wakes up from now on leaves it alone
    // (with another process on its core it may wake much later), so only the workers that joined
    // — and may still be running a task — are waited for.
    {
      std::lock_guard<std::mutex> lk(mu_);
      closed_ = true;
    }
    for (int spin = 0; active_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < kSpin) {
        BINARYNET_PAUSE();
      } else {
        std::unique_lock<std::mutex> lk(mu_);
        done_cv_.wait(lk, [&] { return active_.load(std::memory_order_acquire) == 0; });
      }
    }
  }

 private:
  void work() {
    for (;;) {
      const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= ntasks_) break;
      fn_(ctx_, i);
    }
  }

  void grow(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      // The new worker starts from the current generation, read here, before run() announces
      // the job it is created for (reading it in the thread could miss that job).
      const int index = static_cast<int>(workers_.size());
      const unsigned seen = generation_.load(std::memory_order_acquire);
      workers_.emplace_back([this, index, seen] { worker_loop(index, seen); });
    }
  }

  void worker_loop(int index, unsigned seen) {
    for (;;) {
      // Spin a little for the next job before going to sleep.
      unsigned g = seen;
      for (int spin = 0; spin < kSpin; ++spin) {
        g = generation_.load(std::memory_order_acquire);
        if (g != seen) break;
        BINARYNET_PAUSE();
      }
      if (g == seen) {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        g = generation_.load(std::memory_order_acquire);
      }
      seen = g;
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (closed_ || index >= helpers_ || generation_.load(std::memory_order_relaxed) != g)
          continue;  // too late for this job, or not needed
        active_.fetch_add(1, std::memory_order_relaxed);
      }
      work();
      std::lock_guard<std::mutex> lk(mu_);
      if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_cv_.notify_all();
    }
  }

  std::mutex region_mu_;  // one parallel region at a time
  std::mutex mu_;         // guards the job description below and closed_
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  std::atomic<unsigned> generation_{0};
  std::atomic<std::size_t> next_{0};
  std::atomic<int> active_{0};  // workers inside work() for the current job
  bool closed_ = true;
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::size_t ntasks_ = 0;
  int helpers_ = 0;
};

// The pool is never destroyed: its workers sleep until the process exits (joining them from a
// static destructor, after Python has finalised, is fragile). After fork() the child forgets the
// parent's pool (whose threads were not copied) and builds its own on first use.
std::atomic<Pool*> g_pool{nullptr};
std::mutex g_pool_mu;

void forget_pool_after_fork() { g_pool.store(nullptr); }

Pool& pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p) return *p;
  std::lock_guard<std::mutex> lk(g_pool_mu);
  p = g_pool.load(std::memory_order_acquire);
  if (!p) {
    static const int registered = pthread_atfork(nullptr, nullptr, forget_pool_after_fork);
    (void)registered;
    p = new Pool();
    g_pool.store(p, std::memory_order_release);
  }
  return *p;
}

}  // namespace

int get_num_threads() {
  const int n = g_num_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : default_threads();
}

void set_num_threads(int n) { g_num_threads.store(n, std::memory_order_relaxed); }

void parallel_for_raw(std::size_t ntasks, int threads, TaskFn fn, void* ctx) {
  if (ntasks == 0) return;
  threads = std::min(threads, kMaxThreads);
  if (ntasks == 1 || threads <= 1) {
    for (std::size_t i = 0; i < ntasks; ++i) fn(ctx, i);
    return;
  }
  pool().run(ntasks, threads, fn, ctx);
}

}  // namespace binarynet
