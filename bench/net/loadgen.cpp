// loadgen — the echo load generator the network benchmarks use.
//
//   loadgen HOST PORT [--conns N] [--size BYTES] [--seconds S] [--warmup S] [--spin]
//           [--tls] [--handshakes]
//
// One thread, epoll, strict ping-pong: each connection sends one message of
// SIZE bytes, waits for all of it to come back, checks every byte, and sends
// the next. With --spin the client polls epoll with a zero timeout instead of
// sleeping: in a VM, a sleeping client's wake-up latency makes every server
// look alike. Prints one line of key=value pairs (msgs, msgs_per_s, mib_per_s,
// p50_us, p99_us) after the timed window; exits 1 if any echo was wrong or a
// connection failed. Loopback only: it refuses any other address.
//
// --tls speaks TLS 1.3 (OpenSSL, no certificate check: loopback only, and
// the point is the server's cost): each connection's handshake is done
// before the timed window, then the same ping-pong runs through SSL_read /
// SSL_write. --handshakes (implies --tls) measures handshakes instead: one
// connection at a time connects, completes a full handshake (no session
// reuse), echoes one message and closes; msgs counts those handshakes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct conn {
    int fd = -1;
    SSL* ssl = nullptr;
    std::size_t sent = 0, received = 0;
    std::uint32_t seq = 0;
    clock_type::time_point started;
};

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "loadgen: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

bool is_loopback(const std::string& host) {
    in_addr a4{};
    if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    return host == "::1" || host == "localhost";
}

// The byte at offset i of message seq is 'a' + (seq * 7 + i) % 26: every
// message differs, so a misrouted or stale echo is caught. The pattern
// repeats every 26 bytes, so message seq is the run of `base` starting at
// (seq * 7) % 26, and both sending and checking are one memcpy/memcmp: a
// byte-at-a-time check made the client the bottleneck at 100 KiB.
std::vector<char> make_base(std::size_t size) {
    std::vector<char> base(size + 26);
    for (std::size_t j = 0; j < base.size(); ++j) base[j] = static_cast<char>('a' + j % 26);
    return base;
}

inline std::size_t pattern_start(std::uint32_t seq) { return (seq * 7u) % 26u; }

[[noreturn]] void die_tls(const char* what) {
    char buf[256] = "unknown error";
    if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof buf);
    std::fprintf(stderr, "loadgen: %s: %s\n", what, buf);
    std::exit(1);
}

SSL_CTX* make_tls_client() {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) die_tls("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

// send/recv through TLS when the connection has it: > 0 bytes, 0 at EOF,
// -1 with errno EAGAIN when it would block (either direction: a TLS write
// can need a read, and the other way round), -1 with errno set otherwise.
ssize_t conn_send(conn& c, const char* p, std::size_t n) {
    if (!c.ssl) return send(c.fd, p, n, MSG_NOSIGNAL);
    int r = SSL_write(c.ssl, p, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
    if (r > 0) return r;
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    die_tls("SSL_write");
}

ssize_t conn_recv(conn& c, char* p, std::size_t n) {
    if (!c.ssl) return recv(c.fd, p, n, 0);
    int r = SSL_read(c.ssl, p, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
    if (r > 0) return r;
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    die_tls("SSL_read");
}

// A blocking connect (and handshake when ctx is given); the socket is
// non-blocking afterwards.
void open_conn(conn& c, const sockaddr_storage& ss, socklen_t sslen, SSL_CTX* ctx) {
    c.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0) die("socket");
    if (connect(c.fd, reinterpret_cast<const sockaddr*>(&ss), sslen) != 0) die("connect");
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ctx) {
        c.ssl = SSL_new(ctx);
        SSL_set_fd(c.ssl, c.fd);
        if (SSL_connect(c.ssl) != 1) die_tls("handshake");
    }
    if (fcntl(c.fd, F_SETFL, O_NONBLOCK) != 0) die("fcntl");
}

void close_conn(conn& c) {
    if (c.ssl) SSL_free(c.ssl);
    c.ssl = nullptr;
    close(c.fd);
    c.fd = -1;
}

}  // namespace

double percentile_us(std::vector<std::uint32_t>& lat_ns, double p) {
    if (lat_ns.empty()) return 0.0;
    std::sort(lat_ns.begin(), lat_ns.end());
    return lat_ns[std::min(lat_ns.size() - 1, static_cast<std::size_t>(p * static_cast<double>(lat_ns.size())))] /
           1000.0;
}

void report(std::uint64_t msgs, double seconds, std::size_t size, std::vector<std::uint32_t>& lat_ns) {
    std::printf("msgs=%llu msgs_per_s=%.0f mib_per_s=%.2f p50_us=%.1f p99_us=%.1f\n",
                static_cast<unsigned long long>(msgs), static_cast<double>(msgs) / seconds,
                static_cast<double>(msgs) * static_cast<double>(size) / seconds / (1024.0 * 1024.0),
                percentile_us(lat_ns, 0.50), percentile_us(lat_ns, 0.99));
}

// --handshakes: connect, full TLS handshake, one echo of `size` bytes (so the
// server has finished its side), close; one at a time. Latency is per
// handshake.
int run_handshakes(const sockaddr_storage& ss, socklen_t sslen, SSL_CTX* ctx, std::size_t size, double seconds,
                   double warmup) {
    const std::vector<char> base = make_base(size);
    std::vector<char> in(std::max<std::size_t>(size, 65536));
    const auto t0 = clock_type::now();
    const auto measure_from = t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(warmup));
    const auto end = measure_from + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
    std::vector<std::uint32_t> lat_ns;
    std::uint64_t count = 0;
    bool measuring = false;
    for (;;) {
        const auto start = clock_type::now();
        if (!measuring && start >= measure_from) {
            measuring = true;
            std::printf("window-start\n");
            std::fflush(stdout);
        }
        if (start >= end) break;
        conn c;
        open_conn(c, ss, sslen, ctx);
        // Blocking again: one message there and back.
        if (fcntl(c.fd, F_SETFL, 0) != 0) die("fcntl");
        if (SSL_write(c.ssl, base.data(), static_cast<int>(size)) != static_cast<int>(size)) die_tls("SSL_write");
        std::size_t got = 0;
        while (got < size) {
            int r = SSL_read(c.ssl, in.data() + got, static_cast<int>(size - got));
            if (r <= 0) die_tls("SSL_read");
            got += static_cast<std::size_t>(r);
        }
        if (std::memcmp(in.data(), base.data(), size) != 0) {
            std::fprintf(stderr, "loadgen: wrong echo byte\n");
            return 1;
        }
        SSL_shutdown(c.ssl);
        close_conn(c);
        if (measuring) {
            ++count;
            lat_ns.push_back(static_cast<std::uint32_t>(std::min<long long>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - start).count(), 0xffffffffLL)));
        }
    }
    std::printf("window-end\n");
    std::fflush(stdout);
    report(count, seconds, size, lat_ns);
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: loadgen HOST PORT [--conns N] [--size BYTES] [--seconds S] [--warmup S] [--spin]\n");
        return 2;
    }
    std::string host = argv[1];
    int port = std::atoi(argv[2]);
    int nconns = 1;
    std::size_t size = 64;
    double seconds = 5, warmup = 1;
    bool spin = false, tls = false, handshakes = false;
    for (int i = 3; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&] { return i + 1 < argc ? argv[++i] : (std::fprintf(stderr, "loadgen: %s needs a value\n", a.c_str()), std::exit(2), ""); };
        if (a == "--conns") nconns = std::atoi(next());
        else if (a == "--size") size = std::strtoull(next(), nullptr, 10);
        else if (a == "--seconds") seconds = std::atof(next());
        else if (a == "--warmup") warmup = std::atof(next());
        else if (a == "--spin") spin = true;
        else if (a == "--tls") tls = true;
        else if (a == "--handshakes") tls = handshakes = true;
        else {
            std::fprintf(stderr, "loadgen: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    if (!is_loopback(host)) {
        std::fprintf(stderr, "loadgen: only loopback addresses are allowed\n");
        return 2;
    }
    if (host == "localhost") host = "127.0.0.1";

    sockaddr_storage ss{};
    socklen_t sslen;
    if (host.find(':') != std::string::npos) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(static_cast<std::uint16_t>(port));
        inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
        sslen = sizeof *a;
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(static_cast<std::uint16_t>(port));
        inet_pton(AF_INET, host.c_str(), &a->sin_addr);
        sslen = sizeof *a;
    }

    SSL_CTX* ctx = tls ? make_tls_client() : nullptr;
    if (handshakes) return run_handshakes(ss, sslen, ctx, size, seconds, warmup);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    std::vector<conn> conns(static_cast<std::size_t>(nconns));
    const std::vector<char> base = make_base(size);
    std::vector<char> in(std::max<std::size_t>(size, 65536));
    // Whether the r bytes just received are the next ones of c's message.
    auto echo_ok = [&](const conn& c, ssize_t r) {
        const std::size_t n = static_cast<std::size_t>(r);
        return c.received + n <= size &&
               std::memcmp(in.data(), base.data() + pattern_start(c.seq) + c.received, n) == 0;
    };
    for (int i = 0; i < nconns; ++i) {
        conn& c = conns[static_cast<std::size_t>(i)];
        open_conn(c, ss, sslen, ctx);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<std::uint32_t>(i);
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) != 0) die("epoll_ctl");
    }

    auto send_message = [&](conn& c) {
        const char* out = base.data() + pattern_start(c.seq);
        c.sent = 0;
        c.received = 0;
        c.started = clock_type::now();
        while (c.sent < size) {
            ssize_t n = conn_send(c, out + c.sent, size - c.sent);
            if (n > 0) {
                c.sent += static_cast<std::size_t>(n);
            } else if (n < 0 && errno == EAGAIN) {
                // Large messages: wait for room while draining the echo.
                ssize_t r = conn_recv(c, in.data(), in.size());
                if (r > 0) {
                    if (!echo_ok(c, r)) {
                        std::fprintf(stderr, "loadgen: wrong echo byte\n");
                        std::exit(1);
                    }
                    c.received += static_cast<std::size_t>(r);
                }
            } else {
                die("send");
            }
        }
    };

    for (conn& c : conns) send_message(c);

    const auto t0 = clock_type::now();
    const auto measure_from = t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(warmup));
    const auto end = measure_from + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
    std::vector<std::uint32_t> lat_ns;
    lat_ns.reserve(1 << 22);
    std::uint64_t msgs = 0;
    bool measuring = false;
    std::vector<epoll_event> evs(static_cast<std::size_t>(std::max(nconns, 1)));
    for (;;) {
        int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), spin ? 0 : 100);
        const auto now = clock_type::now();
        if (!measuring && now >= measure_from) {
            measuring = true;
            // Marker for the driver: the timed window starts now.
            std::printf("window-start\n");
            std::fflush(stdout);
        }
        if (now >= end) {
            std::printf("window-end\n");
            std::fflush(stdout);
            break;
        }
        for (int e = 0; e < n; ++e) {
            conn& c = conns[evs[static_cast<std::size_t>(e)].data.u32];
            for (;;) {
                ssize_t r = conn_recv(c, in.data(), in.size());
                if (r == 0) {
                    std::fprintf(stderr, "loadgen: server closed a connection\n");
                    return 1;
                }
                if (r < 0) {
                    if (errno == EAGAIN) break;
                    die("recv");
                }
                if (!echo_ok(c, r)) {
                    std::fprintf(stderr, "loadgen: wrong echo byte\n");
                    return 1;
                }
                c.received += static_cast<std::size_t>(r);
                if (c.received == size) {
                    if (measuring) {
                        ++msgs;
                        lat_ns.push_back(static_cast<std::uint32_t>(std::min<long long>(
                            std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - c.started).count(),
                            0xffffffffLL)));
                    }
                    ++c.seq;
                    send_message(c);
                }
                // A short read means the socket is empty; TLS may still hold
                // decrypted bytes of a record read whole, so ask it.
                if (static_cast<std::size_t>(r) < in.size() && !(c.ssl && SSL_pending(c.ssl) > 0)) break;
            }
        }
    }
    report(msgs, seconds, size, lat_ns);
    for (conn& c : conns) close_conn(c);
    return 0;
}
