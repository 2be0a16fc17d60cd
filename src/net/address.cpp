#include <pyco/net/address.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include <pyco/errors.hpp>

namespace pyco {

namespace {

constexpr socklen_t unix_header = offsetof(sockaddr_un, sun_path);

[[noreturn]] void throw_illegal_ip() {
    throw std::system_error(EINVAL, std::generic_category(), "illegal IP address string passed to inet_pton");
}

// Python's repr of a str (bytes = false) or of a bytes object.
std::string py_repr(std::string_view s, bool bytes) {
    const bool has_single = s.find('\'') != std::string_view::npos;
    const bool has_double = s.find('"') != std::string_view::npos;
    const char quote = has_single && !has_double ? '"' : '\'';
    std::string out = bytes ? "b" : "";
    out += quote;
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (ch == quote || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (ch == '\t') {
            out += "\\t";
        } else if (ch == '\n') {
            out += "\\n";
        } else if (ch == '\r') {
            out += "\\r";
        } else if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80)) {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    out += quote;
    return out;
}

}  // namespace

sock_address::sock_address() noexcept { std::memset(&ss_, 0, sizeof ss_); }

sock_address::sock_address(const sockaddr* sa, socklen_t len) : sock_address() {
    if (len > capacity()) throw value_error("address too long for a sockaddr_storage");
    if (len > 0) std::memcpy(&ss_, sa, len);
    len_ = len;
}

sock_address sock_address::ipv4(std::string_view host, std::uint16_t port) {
    sock_address a;
    auto* sin = reinterpret_cast<sockaddr_in*>(&a.ss_);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (host.empty()) {
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (host == "<broadcast>") {
        sin->sin_addr.s_addr = htonl(INADDR_BROADCAST);
    } else {
        const std::string h(host);
        if (::inet_pton(AF_INET, h.c_str(), &sin->sin_addr) != 1) throw_illegal_ip();
    }
    a.len_ = sizeof(sockaddr_in);
    return a;
}

sock_address sock_address::ipv6(std::string_view host, std::uint16_t port, std::uint32_t flowinfo,
                                std::uint32_t scope_id) {
    sock_address a;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.ss_);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_flowinfo = htonl(flowinfo);
    sin6->sin6_scope_id = scope_id;
    if (const auto pct = host.find('%'); pct != std::string_view::npos) {
        const std::string scope(host.substr(pct + 1));
        host = host.substr(0, pct);
        if (scope.empty()) throw_illegal_ip();
        char* end = nullptr;
        errno = 0;
        const unsigned long n = std::strtoul(scope.c_str(), &end, 10);
        if (*end == '\0' && errno == 0 && n <= 0xffffffffUL) {
            sin6->sin6_scope_id = static_cast<std::uint32_t>(n);
        } else if (unsigned idx = ::if_nametoindex(scope.c_str()); idx != 0) {
            sin6->sin6_scope_id = idx;
        } else {
            throw_illegal_ip();
        }
    }
    if (host.empty()) {
        sin6->sin6_addr = in6addr_any;
    } else {
        const std::string h(host);
        if (::inet_pton(AF_INET6, h.c_str(), &sin6->sin6_addr) != 1) throw_illegal_ip();
    }
    a.len_ = sizeof(sockaddr_in6);
    return a;
}

sock_address sock_address::unix_path(std::string_view path) {
    sock_address a;
    auto* sun = reinterpret_cast<sockaddr_un*>(&a.ss_);
    const bool abstract = !path.empty() && path[0] == '\0';
    // CPython's limits: an abstract name may fill sun_path; a filesystem
    // path needs its NUL.
    if (abstract ? path.size() > sizeof sun->sun_path : path.size() >= sizeof sun->sun_path) {
        throw std::system_error(ENAMETOOLONG, std::generic_category(), "AF_UNIX path too long");
    }
    sun->sun_family = AF_UNIX;
    std::memcpy(sun->sun_path, path.data(), path.size());
    a.len_ = static_cast<socklen_t>(unix_header + path.size());
    return a;
}

std::optional<sock_address> sock_address::parse(std::string_view host, std::uint16_t port) {
    if (host.empty() || host.size() >= INET6_ADDRSTRLEN + IF_NAMESIZE) return std::nullopt;
    const std::string h(host);
    in_addr a4{};
    if (::inet_pton(AF_INET, h.c_str(), &a4) == 1) return ipv4(host, port);
    const std::string bare = h.substr(0, h.find('%'));
    in6_addr a6{};
    if (::inet_pton(AF_INET6, bare.c_str(), &a6) != 1) return std::nullopt;
    try {
        return ipv6(host, port);
    } catch (const std::system_error&) {
        return std::nullopt;  // an unknown scope
    }
}

int sock_address::family() const noexcept { return len_ == 0 ? AF_UNSPEC : ss_.ss_family; }

std::string sock_address::host() const {
    char buf[INET6_ADDRSTRLEN] = {};
    switch (family()) {
    case AF_INET:
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr, buf, sizeof buf);
        return buf;
    case AF_INET6:
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr, buf, sizeof buf);
        return buf;
    default:
        return {};
    }
}

std::uint16_t sock_address::port() const noexcept {
    switch (family()) {
    case AF_INET: return ntohs(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_port);
    case AF_INET6: return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_port);
    default: return 0;
    }
}

std::uint32_t sock_address::flowinfo() const noexcept {
    return family() == AF_INET6 ? ntohl(reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_flowinfo) : 0;
}

std::uint32_t sock_address::scope_id() const noexcept {
    return family() == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_scope_id : 0;
}

std::string sock_address::path() const {
    if (family() != AF_UNIX || len_ <= unix_header) return {};
    const char* p = reinterpret_cast<const sockaddr_un*>(&ss_)->sun_path;
    const std::size_t n = len_ - unix_header;
    if (p[0] == '\0') return std::string(p, n);  // abstract: every byte counts
    return std::string(p, ::strnlen(p, n));      // a path: up to its NUL
}

bool sock_address::is_abstract() const noexcept {
    return family() == AF_UNIX && len_ > unix_header && reinterpret_cast<const sockaddr_un*>(&ss_)->sun_path[0] == '\0';
}

std::string sock_address::to_string() const {
    // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, a false
    // positive) on "literal" + std::string&&, which inserts at the front.
    std::string s;
    switch (family()) {
    case AF_UNSPEC:
        return "None";
    case AF_INET:
        s = "(";
        s += py_repr(host(), false);
        s += ", ";
        s += std::to_string(port());
        s += ")";
        return s;
    case AF_INET6:
        s = "(";
        s += py_repr(host(), false);
        s += ", ";
        s += std::to_string(port());
        s += ", ";
        s += std::to_string(flowinfo());
        s += ", ";
        s += std::to_string(scope_id());
        s += ")";
        return s;
    case AF_UNIX:
        return py_repr(path(), is_abstract());
    default: {
        // Python: (family, the raw sa_data bytes).
        const auto* sa = reinterpret_cast<const sockaddr*>(&ss_);
        const std::size_t n = len_ > offsetof(sockaddr, sa_data) ? len_ - offsetof(sockaddr, sa_data) : 0;
        s = "(";
        s += std::to_string(family());
        s += ", ";
        s += py_repr(std::string_view(sa->sa_data, n), true);
        s += ")";
        return s;
    }
    }
}

bool operator==(const sock_address& a, const sock_address& b) noexcept {
    if (a.family() != b.family()) return false;
    switch (a.family()) {
    case AF_UNSPEC:
        return true;
    case AF_INET: {
        const auto* x = reinterpret_cast<const sockaddr_in*>(&a.ss_);
        const auto* y = reinterpret_cast<const sockaddr_in*>(&b.ss_);
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    case AF_INET6: {
        const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.ss_);
        const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.ss_);
        return x->sin6_port == y->sin6_port && x->sin6_flowinfo == y->sin6_flowinfo &&
               x->sin6_scope_id == y->sin6_scope_id &&
               std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    case AF_UNIX:
        return a.is_abstract() == b.is_abstract() && a.path() == b.path();
    default:
        return a.len_ == b.len_ && std::memcmp(&a.ss_, &b.ss_, a.len_) == 0;
    }
}

namespace {

class gai_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "getaddrinfo"; }
    std::string message(int ev) const override { return ::gai_strerror(ev); }
};

}  // namespace

const std::error_category& gai_category() noexcept {
    static const gai_category_impl cat;
    return cat;
}

}  // namespace pyco
