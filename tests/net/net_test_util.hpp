// Helpers the networking tests and the soak share. No OpenSSL here (the
// TLS tests' own helpers are in ssl_fixture.hpp): every test may include it.
#pragma once

#include <sys/resource.h>
#include <sys/socket.h>

#include <exception>
#include <memory>
#include <span>
#include <string>

#include <pyco/coroutine.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/address.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/socket.hpp>
#include <pyco/net/streams.hpp>
#include <pyco/net/transport.hpp>

namespace net_test {

// Raises RLIMIT_NOFILE's soft limit to the hard one; false, saying why, if
// the hard limit is below `need` (the caller skips: a machine's limit is
// not a failure of pyco).
inline bool raise_fd_limit(rlim_t need, std::string& why) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        why = "getrlimit failed";
        return false;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        why = "RLIMIT_NOFILE's hard limit is " + std::to_string(rl.rlim_max) + "; " + std::to_string(need) +
              " fds are needed per process";
        return false;
    }
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        why = "setrlimit failed";
        return false;
    }
    return true;
}

// Echoes what it gets, closes at EOF (eof_received's default), and counts
// the connections made and lost (one program per test binary: the counters
// are the test's to reset).
struct counting_echo_protocol : pyco::protocol {
    static inline int made = 0;
    static inline int lost = 0;
    pyco::transport* t = nullptr;
    void connection_made(pyco::transport& tr) override {
        t = &tr;
        ++made;
    }
    void data_received(std::span<const std::byte> d) override { t->write(d); }
    void connection_lost(std::exception_ptr) override { ++lost; }
};

inline pyco::protocol_factory counting_echo() {
    return [] { return std::make_shared<counting_echo_protocol>(); };
}

// A stream handler: echoes each line until EOF, then closes. An error
// (the peer reset, a TLS failure) propagates to the server.
inline pyco::coroutine<void> echo_lines(std::shared_ptr<pyco::stream_reader> r, pyco::stream_writer w) {
    for (;;) {
        std::string line = co_await r->readline();
        if (line.empty()) break;
        w.write(line);
        co_await w.drain();
    }
    w.close();
}

// A TCP socket listening on 127.0.0.1, port 0 (the loop's sock_* calls
// and raw peers).
inline pyco::socket loopback_listener(int backlog = pyco::socket::default_backlog) {
    pyco::socket l(AF_INET, SOCK_STREAM, 0);
    l.bind(pyco::sock_address::ipv4("127.0.0.1", 0));
    l.listen(backlog);
    return l;
}

}  // namespace net_test
