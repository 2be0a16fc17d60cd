// fake_transport.hpp — an in-memory pyco::transport for the fuzz targets:
// it records what the protocol writes and whether it closed, and lets the
// target inject data_received / eof_received / connection_lost itself. No
// loop, no socket: a run is a few function calls.
//
// Invariant checked here: nothing is written after close() or abort() (a
// real transport drops or rejects it; a protocol that writes then has lost
// track of its state). A violation aborts with a message.
#pragma once

#include <any>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <pyco/net/protocol.hpp>
#include <pyco/net/transport.hpp>

namespace pyco_fuzz {

[[noreturn]] inline void fail(const char* what) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
}

class fake_transport : public pyco::transport {
public:
    std::string written;
    bool closed = false;   // close() or abort() was called
    bool aborted = false;
    bool eof_written = false;
    bool reading = true;
    std::shared_ptr<pyco::protocol> proto;
    // Called on every write (e.g. to forward the bytes to a peer).
    void (*on_write)(void* ctx, std::string_view bytes) = nullptr;
    void* on_write_ctx = nullptr;
    // Writes after close are a bug only for protocols that own the
    // transport's lifetime (HTTP); a layer may legitimately race.
    bool strict_after_close = true;

    std::any get_extra_info(std::string_view) const override { return {}; }
    bool is_closing() const noexcept override { return closed; }
    void close() override { closed = true; }
    bool is_reading() const noexcept override { return reading; }
    void pause_reading() override { reading = false; }
    void resume_reading() override { reading = true; }
    void write(std::span<const std::byte> data) override {
        if (closed) {
            if (strict_after_close) fail("write after close()");
            return;
        }
        if (eof_written) fail("write after write_eof()");
        std::string_view s(reinterpret_cast<const char*>(data.data()), data.size());
        written.append(s);
        if (on_write != nullptr) on_write(on_write_ctx, s);
    }
    using pyco::transport::write;
    void writelines(std::span<const std::string_view> lines) override {
        for (std::string_view l : lines) write(l);
    }
    void write_eof() override { eof_written = true; }
    bool can_write_eof() const noexcept override { return true; }
    void abort() override {
        closed = true;
        aborted = true;
    }
    std::size_t get_write_buffer_size() const noexcept override { return 0; }
    std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override { return {0, 0}; }
    void set_write_buffer_limits(std::optional<std::size_t>, std::optional<std::size_t>) override {}
    void set_protocol(std::shared_ptr<pyco::protocol> p) override { proto = std::move(p); }
    std::shared_ptr<pyco::protocol> get_protocol() const override { return proto; }
};

}  // namespace pyco_fuzz
