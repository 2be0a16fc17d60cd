// loop.create_connection, create_unix_connection, connect_accepted_socket,
// create_server and create_unix_server (asyncio's base_events.py and
// unix_events.py): resolve, connect or bind, then hand the fd to a
// transport.
#include <pyco/net/connection.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <set>

#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/address.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/socket.hpp>
#include <pyco/net/transport.hpp>
#include <pyco/future.hpp>
#include <pyco/net/ssl.hpp>
#include <pyco/task.hpp>
#include <pyco/wait.hpp>

#include "socket_transport.hpp"

namespace pyco {

namespace {

// Python's str(OSError) starts "[Errno N] ..."; ours is what() of the
// system_error. Two errors "say the same" when their what() is equal.
std::string text_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "unknown error";
    }
}

int errno_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::system_error& x) {
        return x.code().value();
    } catch (...) {
        return EIO;
    }
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// asyncio's _interleave_addrinfos: the first `first_count` of the first
// family, then the families in turn.
std::vector<addrinfo_entry> interleave(std::vector<addrinfo_entry> infos, int first_count) {
    std::vector<int> order;
    std::vector<std::vector<addrinfo_entry>> by_family;
    for (addrinfo_entry& i : infos) {
        auto it = std::find(order.begin(), order.end(), i.family);
        if (it == order.end()) {
            order.push_back(i.family);
            by_family.emplace_back();
            it = order.end() - 1;
        }
        by_family[static_cast<std::size_t>(it - order.begin())].push_back(std::move(i));
    }
    std::vector<addrinfo_entry> out;
    std::vector<std::size_t> pos(by_family.size(), 0);
    if (first_count > 1 && !by_family.empty()) {
        for (int k = 0; k < first_count - 1 && pos[0] < by_family[0].size(); ++k) out.push_back(by_family[0][pos[0]++]);
    }
    for (bool any = true; any;) {
        any = false;
        for (std::size_t f = 0; f < by_family.size(); ++f) {
            if (pos[f] < by_family[f].size()) {
                out.push_back(by_family[f][pos[f]++]);
                any = true;
            }
        }
    }
    return out;
}

void set_nodelay(int fd, int family) {
    if (family != AF_INET && family != AF_INET6) return;
    int one = 1;  // asyncio sets TCP_NODELAY on every TCP transport
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Connect one address (binding the local end first if asked); the socket
// is closed if this fails or is cancelled.
coroutine<socket> connect_one(event_loop& loop, addrinfo_entry info, std::vector<addrinfo_entry> local,
                              std::string local_repr) {
    socket sock(info.family, info.type, info.proto);
    if (!local.empty()) {
        std::exception_ptr last;
        bool bound = false;
        for (const addrinfo_entry& l : local) {
            if (l.family != info.family) continue;
            try {
                sock.bind(l.address);
                bound = true;
                break;
            } catch (const std::system_error& e) {
                last = make_os_error(e.code().value(), "error while attempting to bind on address " + local_repr +
                                                           ": " + lower(std::strerror(e.code().value())));
            }
        }
        if (!bound) {
            if (last) std::rethrow_exception(last);
            throw std::system_error(EADDRNOTAVAIL, std::generic_category(),
                                    "no matching local address with family=" + std::to_string(info.family) + " found");
        }
    }
    co_await loop.sock_connect(sock, info.address);
    co_return sock;
}

[[noreturn]] void raise_connect_errors(std::vector<std::exception_ptr> errors, bool all_errors) {
    if (all_errors) throw exception_group("create_connection failed", std::move(errors));
    if (errors.size() == 1) std::rethrow_exception(errors[0]);
    const std::string model = text_of(errors[0]);
    bool same = std::all_of(errors.begin(), errors.end(), [&](const auto& e) { return text_of(e) == model; });
    if (same) std::rethrow_exception(errors[0]);
    std::string msg = "Multiple exceptions: ";
    for (std::size_t i = 0; i < errors.size(); ++i) {
        if (i) msg += ", ";
        msg += text_of(errors[i]);
    }
    throw std::system_error(errno_of(errors.back()), std::generic_category(), msg);
}

// The staggered race (asyncio.staggered): start attempt i+1 when attempt i
// fails or `delay` passes, whichever is first; the first success wins and
// every other attempt is cancelled (its socket closed).
coroutine<socket> staggered(event_loop& loop, const std::vector<addrinfo_entry>& infos,
                            const std::vector<addrinfo_entry>& local, const std::string& local_repr,
                            std::chrono::milliseconds delay, std::vector<std::exception_ptr>& errors) {
    std::vector<task<socket>> running;
    std::vector<std::size_t> index;  // running[k] tries infos[index[k]]
    std::vector<std::exception_ptr> by_attempt(infos.size());
    std::optional<socket> winner;
    std::size_t next = 0;
    struct cancel_rest {
        std::vector<task<socket>>* r;
        ~cancel_rest() {
            for (task<socket>& t : *r) t.cancel();
        }
    } guard{&running};
    bool start_next = true;
    while (!winner) {
        if (start_next && next < infos.size()) {
            running.push_back(create_task(loop, connect_one(loop, infos[next], local, local_repr)));
            index.push_back(next);
            ++next;
        }
        start_next = false;
        if (running.empty()) break;
        std::vector<task<socket>> waiting = running;
        wait_result<task<socket>> r;
        if (next < infos.size()) {
            r = co_await wait(waiting, delay, first_completed);
        } else {
            r = co_await wait(waiting, first_completed);
        }
        if (r.done.empty()) {
            start_next = true;  // the delay passed: race the next address too
            continue;
        }
        for (task<socket>& d : r.done) {
            auto it = std::find(running.begin(), running.end(), d);
            const std::size_t k = static_cast<std::size_t>(it - running.begin());
            if (d.cancelled()) {
                by_attempt[index[k]] = std::make_exception_ptr(cancelled_error());
            } else if (std::exception_ptr e = d.exception()) {
                by_attempt[index[k]] = e;
                start_next = true;  // a failure starts the next at once
            } else if (!winner) {
                winner.emplace(std::move(d.result()));
            }
            running.erase(it);
            index.erase(index.begin() + static_cast<std::ptrdiff_t>(k));
        }
    }
    // Losers still connecting are cancelled (guard); wait for them so that
    // their sockets are closed before we return.
    for (task<socket>& t : running) t.cancel();
    if (!running.empty()) {
        std::vector<task<socket>> rest = running;
        co_await wait(rest);
        for (task<socket>& t : rest) {
            if (!t.cancelled() && !t.exception()) (void)t.result();  // a late winner: closed by its destructor
        }
    }
    running.clear();
    for (std::exception_ptr& e : by_attempt) {
        if (e) errors.push_back(e);
    }
    if (!winner) co_return socket();
    co_return std::move(*winner);
}

// What create_connection / create_server were asked for TLS (null: none).
struct tls_request {
    ssl_context ctx;
    detail::tls_options options;
};

std::string seconds_repr(std::chrono::milliseconds d) {
    std::string s = std::to_string(static_cast<double>(d.count()) / 1000.0);
    while (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
    return s;
}

// asyncio's checks of the TLS keyword arguments (base_events.py and
// sslproto.SSLProtocol.__init__), in its order.
std::optional<tls_request> tls_of(const std::optional<ssl_context>& ssl, std::optional<std::string> server_hostname,
                                  const std::string* host, std::optional<std::chrono::milliseconds> handshake,
                                  std::optional<std::chrono::milliseconds> shutdown, bool server_side) {
    if (server_hostname && !ssl) throw value_error("server_hostname is only meaningful with ssl");
    if (!server_side && ssl && !server_hostname) {
        if (!host || host->empty()) throw value_error("You must set server_hostname when using ssl without a host");
        server_hostname = *host;
    }
    if (handshake && !ssl) throw value_error("ssl_handshake_timeout is only meaningful with ssl");
    if (shutdown && !ssl) throw value_error("ssl_shutdown_timeout is only meaningful with ssl");
    if (!ssl) return std::nullopt;
    if (handshake && handshake->count() <= 0) {
        std::string m = "ssl_handshake_timeout should be a positive number, got ";
        m += seconds_repr(*handshake);
        throw value_error(m);
    }
    if (shutdown && shutdown->count() <= 0) {
        std::string m = "ssl_shutdown_timeout should be a positive number, got ";
        m += seconds_repr(*shutdown);
        throw value_error(m);
    }
    (void)ssl->engine();  // value_error on an empty handle
    tls_request r{*ssl, {}};
    r.options.server_side = server_side;
    r.options.server_hostname = server_hostname.value_or(std::string());
    if (handshake) r.options.handshake_timeout = *handshake;
    if (shutdown) r.options.shutdown_timeout = *shutdown;
    return r;
}

// Waits for a TLS layer's handshake; a failure or a cancellation aborts the
// connection (its socket is closed), and the error is raised.
coroutine<void> wait_handshake(event_loop& loop, std::shared_ptr<detail::tls_layer> layer) {
    future<void> f = create_future<void>(loop);
    layer->on_handshake([f](std::exception_ptr e) mutable {
        if (f.done()) return;
        if (e) {
            f.set_exception(e);
        } else {
            f.set_result();
        }
    });
    bool ok = false;
    struct abort_unless_ok {
        bool* ok;
        detail::tls_layer* l;
        ~abort_unless_ok() {
            if (!*ok) l->abort();
        }
    } guard{&ok, layer.get()};
    co_await f;
    ok = true;
}

// A server's factory: with TLS, each connection's protocol goes under a TLS
// layer of its own.
protocol_factory server_factory(event_loop& loop, protocol_factory factory, const std::optional<ssl_context>& ssl,
                                std::optional<std::chrono::milliseconds> handshake,
                                std::optional<std::chrono::milliseconds> shutdown) {
    std::optional<tls_request> tls = tls_of(ssl, std::nullopt, nullptr, handshake, shutdown, true);
    if (!tls) return factory;
    event_loop* lp = &loop;
    return [inner = std::move(factory), t = std::move(*tls), lp]() -> std::shared_ptr<protocol> {
        std::shared_ptr<protocol> app = inner();
        if (!app) throw type_error("protocol factory returned no protocol");
        return t.ctx.engine().make_layer(*lp, std::move(app), t.options)->as_protocol();
    };
}

coroutine<connection_pair> make_connection(event_loop& loop, protocol_factory factory, socket sock,
                                           std::optional<tls_request> tls = std::nullopt) {
    std::shared_ptr<protocol> proto = factory();
    if (!proto) throw type_error("protocol factory returned no protocol");
    set_nodelay(sock.fileno(), sock.family());
    detail::stream_transport_options o;
    o.defer_connection_made = false;  // made before create_connection returns, as asyncio's waiter ensures
    if (tls) {
        std::shared_ptr<detail::tls_layer> layer = tls->ctx.engine().make_layer(loop, proto, tls->options);
        const int fd = sock.release();
        std::shared_ptr<transport> raw = detail::make_stream_transport(loop, fd, layer->as_protocol(), std::move(o));
        co_await wait_handshake(loop, layer);
        co_return connection_pair{layer->app_transport(), std::move(proto)};
    }
    const int fd = sock.release();
    std::shared_ptr<transport> t = detail::make_stream_transport(loop, fd, proto, std::move(o));
    co_return connection_pair{std::move(t), std::move(proto)};
}

void check_stream_socket(const socket& sock) {
    if (!sock) throw value_error("sock is closed");
    if (sock.type() != SOCK_STREAM) throw value_error("A Stream Socket was expected, got " + std::to_string(sock.type()));
}

std::string addr_repr(const std::string& host, std::uint16_t port) {
    return "('" + host + "', " + std::to_string(port) + ")";
}

}  // namespace

coroutine<connection_pair> event_loop::create_connection(protocol_factory factory, std::string host,
                                                         std::uint16_t port) {
    return create_connection(std::move(factory), std::move(host), port, connection_options{});
}

coroutine<connection_pair> event_loop::create_connection(protocol_factory factory, std::string host,
                                                         std::uint16_t port, connection_options o) {
    std::optional<tls_request> tls =
        tls_of(o.ssl, o.server_hostname, &host, o.ssl_handshake_timeout, o.ssl_shutdown_timeout, false);
    std::vector<addrinfo_entry> infos = co_await getaddrinfo(host, port, o.family, SOCK_STREAM, o.proto, o.flags);
    if (infos.empty()) throw std::system_error(EINVAL, std::generic_category(), "getaddrinfo() returned empty list");
    std::vector<addrinfo_entry> local;
    std::string local_repr;
    if (o.local_addr) {
        local = co_await getaddrinfo(o.local_addr->first, o.local_addr->second, o.family, SOCK_STREAM, o.proto,
                                     o.flags);
        if (local.empty()) throw std::system_error(EINVAL, std::generic_category(), "getaddrinfo() returned empty list");
        local_repr = addr_repr(o.local_addr->first, o.local_addr->second);
    }
    std::optional<int> inter = o.interleave;
    if (o.happy_eyeballs_delay && !inter) inter = 1;
    if (inter) infos = interleave(std::move(infos), *inter);

    std::vector<std::exception_ptr> errors;
    socket sock;
    if (!o.happy_eyeballs_delay) {
        for (const addrinfo_entry& info : infos) {
            std::exception_ptr err;
            try {
                sock = co_await connect_one(*this, info, local, local_repr);
                break;
            } catch (const std::exception&) {
                err = std::current_exception();
            }
            errors.push_back(err);
        }
    } else {
        sock = co_await staggered(*this, infos, local, local_repr, *o.happy_eyeballs_delay, errors);
    }
    if (!sock) raise_connect_errors(std::move(errors), o.all_errors);
    co_return co_await make_connection(*this, std::move(factory), std::move(sock), std::move(tls));
}

coroutine<connection_pair> event_loop::create_connection(protocol_factory factory, socket sock) {
    return create_connection(std::move(factory), std::move(sock), unix_connection_options{});
}

coroutine<connection_pair> event_loop::create_connection(protocol_factory factory, socket sock,
                                                         unix_connection_options o) {
    std::optional<tls_request> tls =
        tls_of(o.ssl, o.server_hostname, nullptr, o.ssl_handshake_timeout, o.ssl_shutdown_timeout, false);
    check_stream_socket(sock);
    co_return co_await make_connection(*this, std::move(factory), std::move(sock), std::move(tls));
}

coroutine<connection_pair> event_loop::connect_accepted_socket(protocol_factory factory, socket sock) {
    return connect_accepted_socket(std::move(factory), std::move(sock), accepted_socket_options{});
}

coroutine<connection_pair> event_loop::connect_accepted_socket(protocol_factory factory, socket sock,
                                                               accepted_socket_options o) {
    std::optional<tls_request> tls =
        tls_of(o.ssl, std::nullopt, nullptr, o.ssl_handshake_timeout, o.ssl_shutdown_timeout, true);
    check_stream_socket(sock);
    co_return co_await make_connection(*this, std::move(factory), std::move(sock), std::move(tls));
}

coroutine<connection_pair> event_loop::create_unix_connection(protocol_factory factory, std::string path) {
    return create_unix_connection(std::move(factory), std::move(path), unix_connection_options{});
}

coroutine<connection_pair> event_loop::create_unix_connection(protocol_factory factory, std::string path,
                                                              unix_connection_options o) {
    // asyncio's own message here: there is no host to take the name from.
    if (o.ssl && !o.server_hostname) throw value_error("you have to pass server_hostname when using ssl");
    std::optional<tls_request> tls =
        tls_of(o.ssl, o.server_hostname, nullptr, o.ssl_handshake_timeout, o.ssl_shutdown_timeout, false);
    socket sock(AF_UNIX, SOCK_STREAM, 0);
    co_await sock_connect(sock, sock_address::unix_path(path));
    co_return co_await make_connection(*this, std::move(factory), std::move(sock), std::move(tls));
}

coroutine<server> event_loop::create_server(protocol_factory factory, std::string host, std::uint16_t port) {
    return create_server(std::move(factory), std::vector<std::string>{std::move(host)}, port, server_options{});
}

coroutine<server> event_loop::create_server(protocol_factory factory, std::string host, std::uint16_t port,
                                            server_options o) {
    return create_server(std::move(factory), std::vector<std::string>{std::move(host)}, port, std::move(o));
}

coroutine<server> event_loop::create_server(protocol_factory factory, std::vector<std::string> hosts,
                                            std::uint16_t port, server_options o) {
    factory = server_factory(*this, std::move(factory), o.ssl, o.ssl_handshake_timeout, o.ssl_shutdown_timeout);
    // asyncio: host None (here "") means every interface.
    std::vector<addrinfo_entry> infos;
    for (const std::string& h : hosts) {
        std::vector<addrinfo_entry> one = co_await getaddrinfo(h, port, o.family, SOCK_STREAM, 0, o.flags | AI_PASSIVE);
        infos.insert(infos.end(), one.begin(), one.end());
    }
    // The same address from two hosts is bound once (asyncio uses a set).
    std::vector<addrinfo_entry> unique;
    for (addrinfo_entry& i : infos) {
        bool seen = std::any_of(unique.begin(), unique.end(), [&](const addrinfo_entry& u) {
            return u.family == i.family && u.type == i.type && u.proto == i.proto && u.address == i.address;
        });
        if (!seen) unique.push_back(std::move(i));
    }
    std::vector<socket> socks;
    for (const addrinfo_entry& i : unique) {
        socket s(i.family, i.type, i.proto);
        if (o.reuse_address.value_or(true)) s.set_reuse_address(true);
        if (o.reuse_port) s.set_reuse_port(true);
        if (o.keep_alive) s.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1);
        // Bind IPv6 to IPv6 only, so that 0.0.0.0 and :: can both be bound.
        if (i.family == AF_INET6) s.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1);
        try {
            s.bind(i.address);
        } catch (const std::system_error& e) {
            throw_os_error(e.code().value(), "error while attempting to bind on address " + i.address.to_string() +
                                                 ": " + lower(std::strerror(e.code().value())));
        }
        socks.push_back(std::move(s));
    }
    if (socks.empty()) throw value_error("Neither host/port nor sock were specified");
    std::vector<int> fds;
    for (socket& s : socks) fds.push_back(s.release());
    server srv = detail::make_server(*this, std::move(factory), std::move(fds), o.backlog);
    if (o.start_serving) co_await srv.start_serving();
    co_return srv;
}

coroutine<server> event_loop::create_unix_server(protocol_factory factory, std::string path, unix_server_options o) {
    factory = server_factory(*this, std::move(factory), o.ssl, o.ssl_handshake_timeout, o.ssl_shutdown_timeout);
    const bool abstract = path.empty() || path[0] == '\0';
    if (!abstract) {
        // asyncio: a stale socket file left by an earlier server is removed.
        struct stat st{};
        if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
    }
    socket s(AF_UNIX, SOCK_STREAM, 0);
    try {
        s.bind(sock_address::unix_path(path));
    } catch (const std::system_error& e) {
        if (e.code().value() == EADDRINUSE) {
            throw_os_error(EADDRINUSE, "Address '" + path + "' is already in use");
        }
        throw;
    }
    std::vector<int> fds{s.release()};
    server srv = detail::make_server(*this, std::move(factory), std::move(fds), o.backlog,
                                     o.cleanup_socket && !abstract ? path : std::string());
    if (o.start_serving) co_await srv.start_serving();
    co_return srv;
}

coroutine<std::shared_ptr<transport>> event_loop::start_tls(std::shared_ptr<transport> t, std::shared_ptr<protocol> p,
                                                         ssl_context ctx) {
    return start_tls(std::move(t), std::move(p), std::move(ctx), start_tls_options{});
}

// asyncio's start_tls: the transport is paused so that no byte reaches the
// TLS layer before its connection_made, which (like resume_reading) runs
// from the loop; both are cancelled if the wait ends first.
coroutine<std::shared_ptr<transport>> event_loop::start_tls(std::shared_ptr<transport> t, std::shared_ptr<protocol> p,
                                                         ssl_context ctx, start_tls_options o) {
    if (!t) throw type_error("start_tls: no transport");
    if (!p) throw type_error("start_tls: no protocol");
    std::optional<std::string> host = o.server_hostname;
    std::optional<tls_request> tls = tls_of(ctx, o.server_side ? host : std::optional<std::string>(host.value_or("")),
                                            nullptr, o.ssl_handshake_timeout, o.ssl_shutdown_timeout, o.server_side);
    tls->options.call_connection_made = false;
    std::shared_ptr<detail::tls_layer> layer = tls->ctx.engine().make_layer(*this, p, tls->options);
    std::shared_ptr<protocol> lp = layer->as_protocol();
    t->pause_reading();
    t->set_protocol(lp);
    handle made = call_soon([t, lp] { lp->connection_made(*t); });
    handle resume = call_soon([t] { t->resume_reading(); });
    bool ok = false;
    struct undo {
        bool* ok;
        transport* t;
        handle* made;
        handle* resume;
        ~undo() {
            if (*ok) return;
            made->cancel();
            resume->cancel();
            t->close();
        }
    } guard{&ok, t.get(), &made, &resume};
    co_await wait_handshake(*this, layer);
    ok = true;
    co_return layer->app_transport();
}

}  // namespace pyco
