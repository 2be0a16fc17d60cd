// src/io/uring_buffers.hpp — the io_uring backend's two containers: the
// FIFO its CQEs wait in until the loop's ready phase, and the provided-buffer
// ring multishot receives read into. Private to uring_backend.cpp.
//
// buffer_ring's rule: a buffer handed to the kernel (in the ring) is the
// kernel's until a CQE names its id; the backend gives it back (recycle)
// only after the callback that read it returned. release() only once no
// SQE can write into any of them.
#pragma once

#include <liburing.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <pyco/detail/io_backend.hpp>

namespace pyco::detail::uring {

enum completion_flags : std::uint8_t { c_more = 1, c_buffer = 2, c_poll = 4 };

// What one CQE becomes in the ready phase.
struct completion {
    io_op* op;
    std::int32_t res;
    std::uint16_t bid;
    std::uint8_t flags;
};

// A FIFO that grows by doubling (the ready ring's shape).
class completion_fifo {
public:
    void push(const completion& c) {
        if (size_ == buf_.size()) {
            std::vector<completion> bigger(buf_.empty() ? 64 : buf_.size() * 2);
            for (std::size_t i = 0; i < size_; ++i) bigger[i] = buf_[(head_ + i) & (buf_.size() - 1)];
            buf_ = std::move(bigger);
            head_ = 0;
        }
        buf_[(head_ + size_) & (buf_.size() - 1)] = c;
        ++size_;
    }
    completion pop() noexcept {
        completion c = buf_[head_];
        head_ = (head_ + 1) & (buf_.size() - 1);
        --size_;
        return c;
    }

private:
    std::vector<completion> buf_;
    std::size_t head_ = 0, size_ = 0;
};

// The provided-buffer ring (buffer group 0). Its entries are sized for
// max_buffers; buffers are made a chunk at a time, the first at setup and
// one more each time a receive finds the ring empty.
class buffer_ring {
public:
    int setup(io_uring& ring, const uring_config& cfg) {
        size_ = cfg.buffer_size < 64 ? 64 : cfg.buffer_size;
        per_chunk_ = cfg.buffers == 0 ? 1 : cfg.buffers;
        entries_ = 1;
        while (entries_ < cfg.max_buffers || entries_ < per_chunk_) entries_ <<= 1;
        if (entries_ > 32768) entries_ = 32768;
        ring_bytes_ = (entries_ * sizeof(io_uring_buf) + 4095) & ~std::size_t{4095};
        void* mem = ::mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) return -errno;
        br_ = static_cast<io_uring_buf_ring*>(mem);
        io_uring_buf_ring_init(br_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(mem);
        reg.ring_entries = entries_;
        reg.bgid = 0;
        if (int r = io_uring_register_buf_ring(&ring, &reg, 0); r < 0) return r;
        return grow() ? 0 : -ENOMEM;
    }
    // Unmaps everything; only once no SQE can write into it any more.
    void release() noexcept {
        for (std::byte* c : chunks_) ::munmap(c, std::size_t{per_chunk_} * size_);
        chunks_.clear();
        if (br_) ::munmap(br_, ring_bytes_);
        br_ = nullptr;
    }
    // Adds a chunk of buffers; false at the cap (or out of memory).
    bool grow() noexcept {
        if (count_ + per_chunk_ > entries_) return false;
        void* mem = ::mmap(nullptr, std::size_t{per_chunk_} * size_, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mem == MAP_FAILED) return false;
        try {
            chunks_.push_back(static_cast<std::byte*>(mem));
        } catch (...) {
            ::munmap(mem, std::size_t{per_chunk_} * size_);
            return false;
        }
        for (unsigned i = 0; i < per_chunk_; ++i) {
            const auto bid = static_cast<std::uint16_t>(count_ + i);
            io_uring_buf_ring_add(br_, addr(bid), size_, bid, io_uring_buf_ring_mask(entries_), static_cast<int>(i));
        }
        io_uring_buf_ring_advance(br_, static_cast<int>(per_chunk_));
        count_ += per_chunk_;
        return true;
    }
    std::byte* addr(std::uint16_t bid) const noexcept {
        return chunks_[bid / per_chunk_] + std::size_t{bid % per_chunk_} * size_;
    }
    void recycle(std::uint16_t bid) noexcept {
        io_uring_buf_ring_add(br_, addr(bid), size_, bid, io_uring_buf_ring_mask(entries_), 0);
        io_uring_buf_ring_advance(br_, 1);
    }
    unsigned buffer_size() const noexcept { return size_; }

private:
    io_uring_buf_ring* br_ = nullptr;
    std::size_t ring_bytes_ = 0;
    std::vector<std::byte*> chunks_;
    unsigned size_ = 0, per_chunk_ = 0, entries_ = 0, count_ = 0;
};

}  // namespace pyco::detail::uring
