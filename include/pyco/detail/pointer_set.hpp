// pyco/detail/pointer_set.hpp — the duplicate check of gather, wait and
// as_completed (CPython's `arg_to_fut` dict and `set(fs)`).
//
// Open addressing with linear probing in a power-of-two table kept at most
// half full, sized once for the number of pointers the caller will insert:
// one allocation (none up to 16 pointers), no rehash, O(1) expected per
// insert, so setting up a million awaitables is linear. (A scan of the
// ones seen so far made it quadratic: 92 s for gather of 10^6.) Heap
// addresses share their low bits, so they are hashed by a multiply that
// keeps the high bits (Fibonacci hashing).
//
// probes() counts the slots the pointer_sets of this thread have looked at
// (added up when each is destroyed); tests use it to check that set-up
// stays linear without timing it.
//
// Thread rule: one thread per set.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace pyco::detail {

class pointer_set {
public:
    // Room for `n` distinct pointers (more is a logic error: not checked).
    explicit pointer_set(std::size_t n) {
        std::size_t cap = inline_slots;
        unsigned bits = inline_bits;
        while (cap < 2 * n) {
            cap *= 2;
            ++bits;
        }
        if (cap > inline_slots) {
            heap_ = std::make_unique<const void*[]>(cap);  // value-initialised: null
            slots_ = heap_.get();
        } else {
            inline_.fill(nullptr);
            slots_ = inline_.data();
        }
        mask_ = cap - 1;
        shift_ = 64 - bits;
    }
    pointer_set(const pointer_set&) = delete;
    pointer_set& operator=(const pointer_set&) = delete;
    ~pointer_set() { total_probes() += probes_; }

    // Adds p (not null); true if it was not there yet.
    bool insert(const void* p) noexcept {
        const auto key = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
        auto i = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
        for (;;) {
            ++probes_;
            if (slots_[i] == nullptr) {
                slots_[i] = p;
                return true;
            }
            if (slots_[i] == p) return false;
            i = (i + 1) & mask_;
        }
    }

    // Slots looked at by every pointer_set of this thread destroyed so far.
    static std::uint64_t probes() noexcept { return total_probes(); }

private:
    static constexpr std::size_t inline_slots = 32;
    static constexpr unsigned inline_bits = 5;
    static std::uint64_t& total_probes() noexcept {
        static thread_local std::uint64_t n = 0;
        return n;
    }

    const void** slots_;
    std::size_t mask_;
    unsigned shift_;
    std::uint64_t probes_ = 0;
    std::unique_ptr<const void*[]> heap_;
    std::array<const void*, inline_slots> inline_;
};

}  // namespace pyco::detail
