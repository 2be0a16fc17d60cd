// pyco/net/protocol.hpp — asyncio's protocols: what a transport calls.
//
// The callbacks run on the loop's thread, from the loop's ready phase, in
// asyncio's order: connection_made first (exactly once), then any number of
// data_received (or get_buffer/buffer_updated), at most one eof_received,
// then connection_lost exactly once. pause_writing/resume_writing come in
// pairs between connection_made and connection_lost.
//
// Lifetime: the transport given to connection_made stays valid until
// connection_lost returns; keep a pointer, or `transport.shared_from_this()`
// to keep it longer. A transport keeps its protocol alive (shared_ptr) for
// as long as it lives.
//
// A callback that throws is reported through the loop's exception handler as
// a fatal error of the transport, which is then closed (asyncio's
// _fatal_error), and the loop goes on.
#pragma once

#include <cstddef>
#include <exception>
#include <span>
#include <string_view>

namespace pyco {

class transport;
class datagram_transport;
class sock_address;

// asyncio.BaseProtocol: flow control of the transport's write side.
class base_protocol {
public:
    virtual ~base_protocol() = default;
    // The transport's write buffer went above its high-water mark.
    virtual void pause_writing() {}
    // ...and is back to its low-water mark or below.
    virtual void resume_writing() {}
};

// asyncio.Protocol: a byte stream.
class protocol : public base_protocol {
public:
    virtual void connection_made(transport& t) { (void)t; }
    // The bytes are valid during the call only.
    virtual void data_received(std::span<const std::byte> data) { (void)data; }
    // The peer sent EOF. Return true to keep the transport open (half-close:
    // you may still write); false closes it.
    virtual bool eof_received() { return false; }
    // Null: closed normally (EOF, close(), abort()); else the error.
    virtual void connection_lost(std::exception_ptr exc) { (void)exc; }

    // Helper for text protocols.
    static std::string_view as_text(std::span<const std::byte> data) noexcept {
        return {reinterpret_cast<const char*>(data.data()), data.size()};
    }
};

// asyncio.BufferedProtocol: the zero-copy read path. The transport asks for
// room and the kernel's bytes land there (on epoll directly; io_uring copies
// from its buffer ring). data_received is not called.
class buffered_protocol : public protocol {
public:
    // Room for at least one byte; size_hint is what the transport would like
    // (-1 in asyncio: any). Must not be empty.
    virtual std::span<std::byte> get_buffer(std::size_t size_hint) = 0;
    // n bytes were written at the start of the last buffer given.
    virtual void buffer_updated(std::size_t n) = 0;

private:
    void data_received(std::span<const std::byte>) final {}
};

// asyncio.DatagramProtocol.
class datagram_protocol : public base_protocol {
public:
    virtual void connection_made(datagram_transport& t) { (void)t; }
    virtual void datagram_received(std::span<const std::byte> data, const sock_address& addr) {
        (void)data;
        (void)addr;
    }
    // A send or receive failed (e.g. ECONNREFUSED from an ICMP message); the
    // endpoint stays open.
    virtual void error_received(std::exception_ptr exc) { (void)exc; }
    virtual void connection_lost(std::exception_ptr exc) { (void)exc; }
};

}  // namespace pyco
