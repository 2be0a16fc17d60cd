// pyco/net/datagram.hpp — loop.create_datagram_endpoint's options.
//
//   auto [t, p] = co_await loop.create_datagram_endpoint(factory, {.local_addr = {{"127.0.0.1", 0}}});
//
// The endpoint's transport (asyncio's _SelectorDatagramTransport) receives
// datagrams whether or not anybody waits and hands each to the protocol's
// datagram_received with its sender; a failed receive or send (an ICMP
// error on a connected socket: ECONNREFUSED) goes to error_received and the
// endpoint stays open. sendto() tries at once; what the kernel does not
// take waits in a buffer, counted by get_write_buffer_size() and flow
// controlled with the same water marks as stream transports. Empty
// datagrams are dropped, as asyncio drops them.
//
// Thread rule: loop thread only.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <pyco/event_loop.hpp>

namespace pyco {


struct datagram_options {
    // Bind here (Python's local_addr=(host, port)).
    std::optional<std::pair<std::string, std::uint16_t>> local_addr;
    // Connect to here: sendto() then takes no address (or this one).
    std::optional<std::pair<std::string, std::uint16_t>> remote_addr;
    // AF_UNIX datagram sockets: paths instead of (host, port).
    std::optional<std::string> local_path;
    std::optional<std::string> remote_path;
    int family = AF_UNSPEC;
    int proto = 0;
    int flags = 0;
    bool reuse_port = false;
    bool allow_broadcast = false;
};

}  // namespace pyco
