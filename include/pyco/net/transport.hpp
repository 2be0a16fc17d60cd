// pyco/net/transport.hpp — asyncio's transports: what a protocol calls.
//
// A transport is a connection's I/O, written once over the operation seam
// (detail/io_backend.hpp), so it runs on every backend. It owns the
// receive side: it keeps one multishot receive armed whether or not anybody
// waits for data, and hands every chunk to the protocol. So a user's
// cancelled read (a stream_reader's readline) never cancels a kernel
// operation, and bytes already received are never lost: they went to the
// protocol.
//
// Flow control, as asyncio:
//   - write side: the write buffer has a high-water mark (64 KiB) and a
//     low-water mark (16 KiB, or high/4 when only high is given). The
//     protocol's pause_writing() is called when the buffer goes above high,
//     resume_writing() when it drains to low or below. write() itself never
//     blocks and never refuses bytes: a writer that ignores pause_writing
//     grows the buffer, and get_write_buffer_size() (O(1)) shows it.
//   - read side: pause_reading() stops receiving until resume_reading().
//     Bytes the kernel delivered after the pause (a backend that had a
//     receive in flight) are kept and delivered on resume, in order.
//
// Thread rule: loop thread only, like everything on a loop.
// Lifetime: transports are held by std::shared_ptr; an open transport keeps
// itself alive until connection_lost has run and its fd is closed. If its
// loop closes first, the loop closes the fd and lets go of the transport
// without calling connection_lost (as CPython's loop.close()); a handle the
// user still holds then refers to a closed transport whose calls do nothing.
#pragma once

#include <any>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace pyco {

class protocol;
class datagram_protocol;
class sock_address;

// asyncio.BaseTransport.
class base_transport {
public:
    virtual ~base_transport() = default;
    // "peername", "sockname" (sock_address), "socket" (int fd) and what else
    // the transport knows; an empty std::any if not.
    virtual std::any get_extra_info(std::string_view name) const = 0;
    virtual bool is_closing() const noexcept = 0;
    // Close after the buffered data is sent; connection_lost(null) follows
    // (from a later loop iteration).
    virtual void close() = 0;
};

// asyncio.Transport (ReadTransport + WriteTransport).
class transport : public base_transport, public std::enable_shared_from_this<transport> {
public:
    // --- read side ---
    virtual bool is_reading() const noexcept = 0;
    virtual void pause_reading() = 0;
    virtual void resume_reading() = 0;

    // --- write side ---
    // runtime_error("Cannot call write() after write_eof()") after write_eof
    // ("Cannot call writelines() ..." from writelines, as CPython).
    virtual void write(std::span<const std::byte> data) = 0;
    void write(std::string_view text) { write(std::as_bytes(std::span<const char>(text.data(), text.size()))); }
    virtual void writelines(std::span<const std::string_view> lines) = 0;
    // Close the write side after the buffer is sent (shutdown(SHUT_WR)).
    virtual void write_eof() = 0;
    virtual bool can_write_eof() const noexcept = 0;
    // Close at once, dropping the buffer; connection_lost(null) follows.
    virtual void abort() = 0;
    virtual std::size_t get_write_buffer_size() const noexcept = 0;
    // {low, high}
    virtual std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept = 0;
    // value_error("high (H) must be >= low (L) must be >= 0") when low > high.
    // high alone: low = high / 4; low alone: high = 4 * low (asyncio).
    virtual void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                                         std::optional<std::size_t> low = std::nullopt) = 0;

    virtual void set_protocol(std::shared_ptr<protocol> p) = 0;
    virtual std::shared_ptr<protocol> get_protocol() const = 0;
};

// asyncio.DatagramTransport.
class datagram_transport : public base_transport {
public:
    // To the connected peer (addr null) or to addr.
    virtual void sendto(std::span<const std::byte> data, const sock_address* addr = nullptr) = 0;
    void sendto(std::string_view text, const sock_address* addr = nullptr) {
        sendto(std::as_bytes(std::span<const char>(text.data(), text.size())), addr);
    }
    virtual void abort() = 0;
    virtual std::size_t get_write_buffer_size() const noexcept = 0;
};

}  // namespace pyco
