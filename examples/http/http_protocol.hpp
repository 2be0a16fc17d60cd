// http_protocol.hpp — the HTTP/1.1 hello protocol of the http and https
// examples: every GET (and HEAD) gets "200 OK" with the 13-byte body
// "Hello, World!", other methods 405, a malformed head 400 and close.
// Keep-alive, pipelined requests, bodies skipped by Content-Length;
// HTTP/1.0 closes unless it asks for keep-alive. The same protocol runs
// over TCP (http_server) and TLS (https_server): it only sees a transport.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include <pyco/net/protocol.hpp>
#include <pyco/net/transport.hpp>

namespace http_example {

constexpr std::string_view ok_response =
    "HTTP/1.1 200 OK\r\nServer: pyco\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
constexpr std::string_view ok_head =
    "HTTP/1.1 200 OK\r\nServer: pyco\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n";
constexpr std::string_view not_allowed =
    "HTTP/1.1 405 Method Not Allowed\r\nServer: pyco\r\nContent-Length: 0\r\nAllow: GET, HEAD\r\n\r\n";
constexpr std::string_view bad_request =
    "HTTP/1.1 400 Bad Request\r\nServer: pyco\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
constexpr std::size_t max_head = 16 * 1024;

bool iequals_prefix(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
    }
    return true;
}

// One request head: "METHOD target HTTP/1.x\r\n" headers "\r\n".
struct request {
    std::string_view method;
    bool http10 = false;
    bool close = false;
    bool keep_alive = false;
    std::size_t content_length = 0;
};

bool parse_head(std::string_view head, request& r) {
    std::size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    std::size_t sp1 = line.find(' ');
    std::size_t sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return false;
    r.method = line.substr(0, sp1);
    std::string_view version = line.substr(sp2 + 1);
    if (version == "HTTP/1.0") {
        r.http10 = true;
    } else if (version != "HTTP/1.1") {
        return false;
    }
    while (eol != std::string_view::npos && eol + 2 < head.size()) {
        std::size_t next = head.find("\r\n", eol + 2);
        std::string_view h = head.substr(eol + 2, next - eol - 2);
        if (iequals_prefix(h, "connection:")) {
            std::string_view v = h.substr(11);
            if (v.find("close") != std::string_view::npos || v.find("Close") != std::string_view::npos) r.close = true;
            if (v.find("eep-alive") != std::string_view::npos) r.keep_alive = true;
        } else if (iequals_prefix(h, "content-length:")) {
            r.content_length = std::strtoull(std::string(h.substr(15)).c_str(), nullptr, 10);
        }
        eol = next;
    }
    return true;
}

struct http_protocol : pyco::protocol {
    pyco::transport* t = nullptr;
    std::string pending;  // an incomplete request head (rare: most arrive whole)
    std::size_t skip_body = 0;
    // How much of `pending` is known to hold no "\r\n\r\n": a head
    // trickled in byte by byte is searched once, not once per byte (that
    // was quadratic: 16 KiB sent a byte at a time cost ~10^8 compares).
    std::size_t searched = 0;

    void connection_made(pyco::transport& tr) override { t = &tr; }

    void data_received(std::span<const std::byte> data) override {
        std::string_view in = as_text(data);
        std::size_t search_from = 0;
        if (!pending.empty()) {
            search_from = searched > 3 ? searched - 3 : 0;
            pending.append(in);
            in = pending;
        }
        std::string out;
        std::size_t pos = 0;
        bool close = false;
        while (pos < in.size() && !close) {
            if (skip_body > 0) {
                std::size_t k = std::min(skip_body, in.size() - pos);
                skip_body -= k;
                pos += k;
                continue;
            }
            std::size_t end = in.find("\r\n\r\n", std::max(pos, search_from));
            if (end == std::string_view::npos) break;
            request r;
            // The same limit whether the head came in one piece or many:
            // cut anywhere, all but its last byte would have waited in
            // `pending`, which may not outgrow max_head.
            if (end + 3 - pos > max_head || !parse_head(in.substr(pos, end + 2 - pos), r)) {
                out.append(bad_request);
                close = true;
                break;
            }
            pos = end + 4;
            skip_body = r.content_length;
            if (r.method == "GET") {
                out.append(ok_response);
            } else if (r.method == "HEAD") {
                out.append(ok_head);
            } else {
                out.append(not_allowed);
            }
            close = r.close || (r.http10 && !r.keep_alive);
        }
        if (in.data() == pending.data()) {
            pending.erase(0, pos);  // in place: no copy of the whole head per read
        } else {
            pending.assign(in.substr(pos));
        }
        searched = pending.size();
        // After a response that closes, the rest is never read (the
        // transport stops reading): nothing may follow it.
        if (!close && pending.size() > max_head) {
            out.append(bad_request);
            close = true;
        }
        if (!out.empty()) t->write(std::string_view(out));
        if (close) t->close();
    }
};

}  // namespace http_example
