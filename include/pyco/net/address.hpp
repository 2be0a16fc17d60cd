// pyco/net/address.hpp — socket addresses, and what name resolution gives.
//
// A sock_address is what Python passes around as an address tuple: an IPv4
// ('127.0.0.1', 8080), an IPv6 ('::1', 8080, flowinfo, scope_id), or a Unix
// path ('/tmp/s', or b'\x00name' for the abstract namespace), held as the
// sockaddr the kernel takes (data()/size() go straight to a syscall).
// Building one never resolves a name: ipv4/ipv6/parse take numeric hosts
// only; names go through loop.getaddrinfo().
//
// An empty sock_address (size 0) is Python's None: what recvfrom gives for
// a sender without a name (an unbound Unix datagram socket).
//
// gaierror is socket.gaierror: a std::system_error whose code is the EAI_*
// value (negative on glibc, as in Python) in gai_category(), whose message
// is gai_strerror's. EAI_SYSTEM is reported as the errno it stands for, as
// Python does.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace pyco {

class sock_address {
public:
    // No address (Python's None).
    sock_address() noexcept;
    // A copy of what a syscall gave; value_error if len is larger than any
    // sockaddr.
    sock_address(const sockaddr* sa, socklen_t len);

    // Numeric hosts only. "" is the wildcard (INADDR_ANY / in6addr_any) and,
    // for IPv4, "<broadcast>" is INADDR_BROADCAST, as Python's socket
    // module reads them. An IPv6 host may end in "%scope" (an interface
    // name or number), which sets scope_id. Otherwise: std::system_error
    // (EINVAL) "illegal IP address string passed to inet_pton".
    static sock_address ipv4(std::string_view host, std::uint16_t port);
    static sock_address ipv6(std::string_view host, std::uint16_t port, std::uint32_t flowinfo = 0,
                             std::uint32_t scope_id = 0);
    // A Unix socket path; one starting with '\0' is in the abstract
    // namespace, and "" asks bind() for an automatic abstract name.
    // std::system_error (ENAMETOOLONG) "AF_UNIX path too long" when it does
    // not fit (a filesystem path needs room for its terminating NUL).
    static sock_address unix_path(std::string_view path);
    // An IPv4 or IPv6 literal (IPv4 tried first, as getaddrinfo orders an
    // AF_UNSPEC lookup of a literal); nullopt if host is not one.
    static std::optional<sock_address> parse(std::string_view host, std::uint16_t port);

    // AF_INET, AF_INET6, AF_UNIX, ...; AF_UNSPEC when empty.
    int family() const noexcept;
    // The numeric host of an IP address, without a scope suffix (as Python
    // shows it); "" for other families.
    std::string host() const;
    // The port of an IP address; 0 for other families.
    std::uint16_t port() const noexcept;
    std::uint32_t flowinfo() const noexcept;  // IPv6 only, else 0
    std::uint32_t scope_id() const noexcept;  // IPv6 only, else 0
    // A Unix address's path: the bytes of an abstract name with its leading
    // '\0'; "" for an unnamed socket or another family.
    std::string path() const;
    bool is_abstract() const noexcept;
    // Python's repr of the address: "('127.0.0.1', 8080)",
    // "('::1', 8080, 0, 0)", "'/tmp/s'", "b'\\x00name'", "''" for an
    // unnamed Unix socket, "None" when empty.
    std::string to_string() const;

    // For syscalls. To let one fill it in: pass data() and capacity(), then
    // resize() to the length it returned.
    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&ss_); }
    sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&ss_); }
    socklen_t size() const noexcept { return len_; }
    static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
    void resize(socklen_t len) noexcept { len_ = len <= capacity() ? len : capacity(); }
    bool empty() const noexcept { return len_ == 0; }

    // Equal when they name the same address (family and its fields).
    friend bool operator==(const sock_address& a, const sock_address& b) noexcept;

private:
    sockaddr_storage ss_;
    socklen_t len_ = 0;
};

// One row of getaddrinfo's answer (Python's 5-tuple).
struct addrinfo_entry {
    int family = 0;
    int type = 0;
    int proto = 0;
    std::string canonname;  // set on the first row with AI_CANONNAME, else ""
    sock_address address;
};

// The category of EAI_* codes; message() is gai_strerror's.
const std::error_category& gai_category() noexcept;

// socket.gaierror.
class gaierror : public std::system_error {
public:
    gaierror(int eai, const std::string& what) : std::system_error(eai, gai_category(), what) {}
};

}  // namespace pyco
