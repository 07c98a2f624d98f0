// kanlab CPU kernels: a small cache of large output buffers, shared by the kernels of one source file.
//
// The large tensors the kernels return every training step — coefficient gradients (O * I * K), the dense
// path's packed basis values (N * I * (K + 1)) and weights, the local path's basis windows and sorted lists —
// are freed again within the step or at the next
// zero_grad(set_to_none=True).  Allocated afresh each time they cost as many page faults (and kernel page
// zeroing) as the kernels' arithmetic.  So buffers of at least kPoolMinBytes come from a small cache: a freed
// buffer (page aligned; from kPoolHugeBytes 2 MiB aligned with transparent huge pages advised) is kept for the
// next request of the same size, up to kPoolMaxBytes in all (oldest dropped first).  KANLAB_BUFFER_POOL=0 turns
// the cache off.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <utility>
#include <vector>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace {

constexpr size_t kPoolMinBytes = size_t(1) << 20;
constexpr size_t kPoolHugeBytes = size_t(16) << 20;  // from here 2 MiB-aligned, huge pages advised
constexpr size_t kPoolMaxBytes = size_t(512) << 20;  // per source file

class BufferPool {
 public:
  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if (it->first == bytes) {
          void* p = it->second;
          held_ -= bytes;
          free_.erase(it);
          return p;
        }
    }
    // Huge pages only where rounding up to them wastes little (a touched huge page is resident whole).
    const size_t huge = size_t(1) << 21, page = size_t(1) << 12;
    const bool use_huge = bytes >= kPoolHugeBytes;
    const size_t unit = use_huge ? huge : page, rounded = (bytes + unit - 1) / unit * unit;
    void* p = std::aligned_alloc(unit, rounded);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p != nullptr && use_huge) (void)madvise(p, rounded, MADV_HUGEPAGE);  // a hint
#endif
    return p;
  }
  void give(void* p, size_t bytes) {
    std::vector<void*> drop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (bytes > kPoolMaxBytes) {
        drop.push_back(p);
      } else {
        while (held_ + bytes > kPoolMaxBytes && !free_.empty()) {
          held_ -= free_.front().first;
          drop.push_back(free_.front().second);
          free_.erase(free_.begin());
        }
        free_.emplace_back(bytes, p);
        held_ += bytes;
      }
    }
    for (void* q : drop) std::free(q);
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<size_t, void*>> free_;
  size_t held_ = 0;
};

inline bool pool_enabled() {
  static const bool on = [] {
    const char* env = std::getenv("KANLAB_BUFFER_POOL");
    return env == nullptr || std::string(env) != "0";
  }();
  return on;
}

// An uninitialised tensor (from the pool when large).
inline at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  const size_t bytes = static_cast<size_t>(numel) * options.dtype().itemsize();
  if (!pool_enabled() || bytes < kPoolMinBytes) return at::empty(sizes, options);
  static BufferPool* pool = new BufferPool();  // never destroyed: tensors may outlive static destructors
  void* p = pool->take(bytes);
  if (p == nullptr) return at::empty(sizes, options);
  return at::from_blob(p, sizes, [bytes](void* q) { pool->give(q, bytes); }, options);
}

}  // namespace
