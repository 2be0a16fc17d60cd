// Private to src/net: a per-thread pool of freed large buffers (write
// chunks, stream reader blocks), so that a busy connection does not free
// and re-allocate a large buffer per message. glibc trims and regrows its
// heap on each such pair: io_uring bulk echo of 100 KiB messages ran at a
// tenth of its speed without the pool.
//
// Invariants: at most max_bytes are held, in buffers of at most max_buffer
// bytes, so what idle connections give back is not all kept; a buffer
// taken is at least `need` and at most 4 x `need` bytes (a small need
// does not pin a large buffer). Thread rule: one pool per thread and
// element type (pool<T>()); buffers belong to the loop on that thread.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace pyco::detail {

template <class T>
class buffer_pool {
public:
    static constexpr std::size_t max_bytes = std::size_t{4} << 20;
    static constexpr std::size_t max_buffer = std::size_t{1} << 20;

    // A buffer of at least `need` elements; its capacity in `cap`.
    std::unique_ptr<T[]> take(std::size_t need, std::size_t& cap) {
        for (std::size_t i = free_.size(); i-- > 0;) {
            if (free_[i].cap >= need && free_[i].cap / 4 <= need) {
                entry e = std::move(free_[i]);
                free_[i] = std::move(free_.back());
                free_.pop_back();
                bytes_ -= e.cap;
                cap = e.cap;
                return std::move(e.data);
            }
        }
        cap = need;
        return std::unique_ptr<T[]>(new T[need]);
    }

    // Keeps `data` (of `cap` elements) if there is room; else frees it.
    void give(std::unique_ptr<T[]> data, std::size_t cap) noexcept {
        if (!data || cap > max_buffer || bytes_ + cap > max_bytes) return;
        try {
            free_.push_back({std::move(data), cap});
            bytes_ += cap;
        } catch (...) {  // (the list could not grow: the buffer is freed)
        }
    }

    static buffer_pool& here() {
        thread_local buffer_pool p;
        return p;
    }

private:
    struct entry {
        std::unique_ptr<T[]> data;
        std::size_t cap;
    };
    std::vector<entry> free_;
    std::size_t bytes_ = 0;
};

}  // namespace pyco::detail
