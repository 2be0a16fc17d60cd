// Helpers the networking tests and the soak share.
#pragma once

#include <sys/resource.h>

#include <exception>
#include <memory>
#include <span>
#include <string>

#include <pyco/event_loop.hpp>
#include <pyco/net/protocol.hpp>
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

}  // namespace net_test
