// https_client HOST PORT [CAFILE] [REQUESTS]
//
// GET / from https://HOST:PORT/ REQUESTS times (default 3) over one
// keep-alive TLS connection, verifying the server's certificate against
// CAFILE (default: the system's trust store) and HOST, and prints the
// negotiated protocol and cipher, then each response's status line and
// body. Exits 1 with the reason if the certificate is not trusted, the
// name does not match, or the connection fails.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <tuple>

#include <pyco/net/ssl.hpp>
#include <pyco/pyco.hpp>

namespace {

pyco::coroutine<int> fetch(std::string host, std::uint16_t port, std::string cafile, int requests) {
    pyco::ssl_context tls = pyco::ssl_context::create_default_context();
    if (!cafile.empty()) tls.load_verify_locations(cafile);
    pyco::open_connection_options opts;
    opts.ssl = tls;
    auto [reader, writer] = co_await pyco::open_connection(host, port, opts);
    auto info = std::any_cast<pyco::ssl_object>(writer.get_extra_info("ssl_object"));
    std::printf("%s, %s\n", info.version().c_str(), info.cipher() ? std::get<0>(*info.cipher()).c_str() : "?");
    for (int i = 0; i < requests; ++i) {
        const bool last = i + 1 == requests;
        std::string request = "GET / HTTP/1.1\r\nHost: " + host + "\r\n";
        request += last ? "Connection: close\r\n\r\n" : "\r\n";
        writer.write(request);
        co_await writer.drain();
        std::string head = co_await reader->readuntil("\r\n\r\n");
        // Header names are case-insensitive (RFC 9110): look in a lower-case copy.
        std::string lower = head;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::size_t length = 0;
        if (std::size_t at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
            length = std::strtoull(head.c_str() + at + 17, nullptr, 10);
        }
        std::string body = co_await reader->readexactly(length);
        std::printf("%s -> %s\n", head.substr(0, head.find("\r\n")).c_str(), body.c_str());
    }
    writer.close();
    co_await writer.wait_closed();
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3 || argc > 5) {
        std::fprintf(stderr, "usage: https_client HOST PORT [CAFILE] [REQUESTS]\n");
        return 2;
    }
    const int port = std::atoi(argv[2]);
    const int requests = argc > 4 ? std::atoi(argv[4]) : 3;
    if (port <= 0 || port > 65535 || requests < 1) {
        std::fprintf(stderr, "usage: https_client HOST PORT [CAFILE] [REQUESTS]\n");
        return 2;
    }
    try {
        return pyco::run(fetch(argv[1], static_cast<std::uint16_t>(port), argc > 3 ? argv[3] : "", requests));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "https_client: %s\n", e.what());
        return 1;
    }
}
