// fuzz_input.hpp — reads a fuzzer's bytes as a sequence of small choices.
// Past the end every choice is 0, so any input decodes to something and
// short inputs decode to small cases (libFuzzer starts short).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pyco_fuzz {

class input {
public:
    input(const std::uint8_t* data, std::size_t size) noexcept : p_(data), end_(data + size) {}

    std::uint8_t byte() noexcept { return p_ < end_ ? *p_++ : 0; }
    // 0 .. n-1 (n > 0).
    std::size_t below(std::size_t n) noexcept { return byte() % n; }
    bool flag() noexcept { return (byte() & 1) != 0; }
    // n bytes, each mapped through the alphabet (so separators are hit
    // often); or raw when alphabet is empty.
    std::string text(std::size_t n, const std::string& alphabet) {
        std::string s;
        s.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint8_t b = byte();
            s.push_back(alphabet.empty() ? static_cast<char>(b) : alphabet[b % alphabet.size()]);
        }
        return s;
    }
    // The rest, untouched.
    std::string rest() {
        std::string s(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(end_ - p_));
        p_ = end_;
        return s;
    }
    bool empty() const noexcept { return p_ >= end_; }

private:
    const std::uint8_t* p_;
    const std::uint8_t* end_;
};

}  // namespace pyco_fuzz
