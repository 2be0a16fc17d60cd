// pyco/net/streams.hpp — asyncio's streams: stream_writer, the protocol
// that joins a transport to a stream_reader, and the four entry points.
//
//   auto [reader, writer] = co_await pyco::open_connection("127.0.0.1", 8888);
//   writer.write("ping\n");
//   co_await writer.drain();
//   std::string line = co_await reader->readline();
//   writer.close();
//   co_await writer.wait_closed();
//
//   pyco::coroutine<void> handle(std::shared_ptr<pyco::stream_reader> r, pyco::stream_writer w);
//   pyco::server srv = co_await pyco::start_server(handle, "127.0.0.1", 8888);
//   co_await srv.serve_forever();
//
// The reader is shared (std::shared_ptr) between the protocol that feeds it
// and the code that reads it; the writer is a handle (copies share one
// writer). When the last copy of a writer goes while its transport is still
// open, the transport is closed, as CPython 3.12's StreamWriter.__del__ does
// (so a start_server callback that returns without close() does not leave
// the connection, and wait_closed(), hanging). start_server runs the callback as a task per connection; an
// exception escaping it is reported ("Unhandled exception in
// client_connected_cb") and the connection is closed, as asyncio does.
//
// drain(): returns at once unless the transport's write buffer is above its
// high-water mark; then waits until it drains to the low-water mark. Any
// number of tasks may drain at once; all wake (cpython #74116). Raises the
// reader's exception if it has one, and connection_reset_error("Connection
// lost") once the connection is lost.
// Cancel safety: a cancelled drain() loses nothing (the bytes stay in the
// transport's buffer); a cancelled wait_closed() leaves the writer as it was:
// a later wait_closed() still returns at connection_lost (CPython's cancels
// the shared closed future, and every later wait_closed() raises
// CancelledError; tests/net/cancel_sweep_test.cpp).
//
// Thread rule: loop thread only.
#pragma once

#include <sys/socket.h>

#include <any>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pyco/coroutine.hpp>
#include <pyco/net/address.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/server.hpp>
#include <pyco/net/stream_reader.hpp>
#include <pyco/net/transport.hpp>

namespace pyco {

class event_loop;
class stream_reader_protocol;

class stream_writer {
public:
    stream_writer() = default;
    stream_writer(std::shared_ptr<pyco::transport> t, std::shared_ptr<stream_reader_protocol> p,
                  std::shared_ptr<stream_reader> r);

    pyco::transport& transport() const noexcept { return *st_->transport; }
    void write(std::string_view data) { st_->transport->write(data); }
    void write(std::span<const std::byte> data) { st_->transport->write(data); }
    void writelines(std::span<const std::string_view> lines) { st_->transport->writelines(lines); }
    void write_eof() { st_->transport->write_eof(); }
    bool can_write_eof() const noexcept { return st_->transport->can_write_eof(); }
    void close() { st_->transport->close(); }
    bool is_closing() const noexcept { return st_->transport->is_closing(); }
    std::any get_extra_info(std::string_view name) const { return st_->transport->get_extra_info(name); }
    std::size_t get_write_buffer_size() const noexcept { return st_->transport->get_write_buffer_size(); }
    [[nodiscard]] coroutine<void> drain();
    // Until the connection is lost; raises the error it was lost with.
    [[nodiscard]] coroutine<void> wait_closed();
    // StreamWriter.start_tls (3.11): drain, then upgrade the connection in
    // place; every copy of this writer, and its reader, go on over TLS.
    // Server side when the stream came from start_server
    // (options.server_side is not used).
    [[nodiscard]] coroutine<void> start_tls(ssl_context ctx, start_tls_options options = {});

private:
    // One per writer, shared by every copy, so that start_tls moves them
    // all to the TLS transport. When the last copy goes while the transport
    // is still open, it is closed (CPython 3.12's StreamWriter.__del__);
    // after start_tls that is the TLS transport, with close_notify.
    struct shared {
        std::shared_ptr<pyco::transport> transport;
        std::shared_ptr<stream_reader_protocol> protocol;
        std::shared_ptr<stream_reader> reader;
        shared(std::shared_ptr<pyco::transport> t, std::shared_ptr<stream_reader_protocol> p,
               std::shared_ptr<stream_reader> r) noexcept
            : transport(std::move(t)), protocol(std::move(p)), reader(std::move(r)) {}
        shared(const shared&) = delete;
        shared& operator=(const shared&) = delete;
        ~shared();
    };
    std::shared_ptr<shared> st_;
};

// The callback start_server runs (as a task) for each connection.
using client_connected_cb = std::function<coroutine<void>(std::shared_ptr<stream_reader>, stream_writer)>;

// asyncio.StreamReaderProtocol (with FlowControlMixin): feeds the reader,
// and keeps the drain waiters.
class stream_reader_protocol final : public protocol, private detail::reading_control {
public:
    explicit stream_reader_protocol(std::shared_ptr<stream_reader> reader, client_connected_cb cb = {});
    ~stream_reader_protocol() override;

    void connection_made(pyco::transport& t) override;
    void data_received(std::span<const std::byte> data) override;
    bool eof_received() override;
    void connection_lost(std::exception_ptr exc) override;
    void pause_writing() override;
    void resume_writing() override;

    const std::shared_ptr<stream_reader>& reader() const noexcept { return reader_; }
    // For stream_writer::start_tls.
    bool server_side() const noexcept { return static_cast<bool>(cb_); }
    void replace_transport(pyco::transport& t) noexcept;
    // For stream_writer.
    [[nodiscard]] coroutine<void> drain_helper();
    [[nodiscard]] coroutine<void> closed();

private:
    void pause_reading() override;
    void resume_reading() override;
    struct state;
    std::shared_ptr<stream_reader> reader_;
    client_connected_cb cb_;
    std::unique_ptr<state> st_;
};

struct open_connection_options {
    std::size_t limit = stream_reader::default_limit;
    int family = AF_UNSPEC;
    int flags = 0;
    // Bind the local end first (Python's local_addr=(host, port)).
    std::optional<std::pair<std::string, std::uint16_t>> local_addr;
    // RFC 8305 Happy Eyeballs (Python 3.8+): start the next address this
    // long after the previous one, without waiting for it to fail.
    std::optional<std::chrono::milliseconds> happy_eyeballs_delay;
    // Reorder addresses so that families alternate (1: the first family
    // first, then alternate). Defaults to 1 with happy_eyeballs_delay.
    std::optional<int> interleave;
    // TLS (Python's ssl=, server_hostname=, ...): see <pyco/net/ssl.hpp>.
    // server_hostname defaults to host; "" turns SNI and the host name check
    // off (the certificate chain is still verified), as asyncio. The value_errors
    // of asyncio: "server_hostname is only meaningful with ssl", "You must
    // set server_hostname when using ssl without a host",
    // "ssl_handshake_timeout is only meaningful with ssl", and the same for
    // ssl_shutdown_timeout.
    std::optional<ssl_context> ssl;
    std::optional<std::string> server_hostname;
    std::optional<std::chrono::milliseconds> ssl_handshake_timeout;  // 60 s
    std::optional<std::chrono::milliseconds> ssl_shutdown_timeout;   // 30 s
};

struct start_server_options {
    std::size_t limit = stream_reader::default_limit;
    int family = AF_UNSPEC;
    int flags = 0;
    int backlog = 100;
    std::optional<bool> reuse_address;
    bool reuse_port = false;
    bool keep_alive = false;
    bool start_serving = true;
    // TLS (Python's ssl=): a server context (ssl_context::server() or
    // create_default_context(ssl_purpose::client_auth)) with its
    // certificate. Each connection's protocol gets connection_made after its
    // handshake; a failed handshake drops that connection only.
    std::optional<ssl_context> ssl;
    std::optional<std::chrono::milliseconds> ssl_handshake_timeout;  // 60 s
    std::optional<std::chrono::milliseconds> ssl_shutdown_timeout;   // 30 s
};

// open_unix_connection's keywords. TLS as loop.create_unix_connection's
// (<pyco/net/connection.hpp>): with ssl, server_hostname must be given.
struct open_unix_connection_options {
    std::size_t limit = stream_reader::default_limit;
    std::optional<ssl_context> ssl;
    std::optional<std::string> server_hostname;
    std::optional<std::chrono::milliseconds> ssl_handshake_timeout;  // 60 s
    std::optional<std::chrono::milliseconds> ssl_shutdown_timeout;   // 30 s
};

// start_unix_server's keywords (loop.create_unix_server's, and limit).
struct start_unix_server_options {
    std::size_t limit = stream_reader::default_limit;
    int backlog = 100;
    bool start_serving = true;
    bool cleanup_socket = true;  // 3.13
    std::optional<ssl_context> ssl;
    std::optional<std::chrono::milliseconds> ssl_handshake_timeout;  // 60 s
    std::optional<std::chrono::milliseconds> ssl_shutdown_timeout;   // 30 s
};

using stream_pair = std::pair<std::shared_ptr<stream_reader>, stream_writer>;

[[nodiscard]] coroutine<stream_pair> open_connection(std::string host, std::uint16_t port,
                                                     open_connection_options options = {});
[[nodiscard]] coroutine<stream_pair> open_unix_connection(std::string path,
                                                          std::size_t limit = stream_reader::default_limit);
[[nodiscard]] coroutine<stream_pair> open_unix_connection(std::string path, open_unix_connection_options options);
// host "" listens on every interface; several hosts: one listener each.
[[nodiscard]] coroutine<server> start_server(client_connected_cb cb, std::string host, std::uint16_t port,
                                             start_server_options options = {});
[[nodiscard]] coroutine<server> start_server(client_connected_cb cb, std::vector<std::string> hosts,
                                             std::uint16_t port, start_server_options options = {});
[[nodiscard]] coroutine<server> start_unix_server(client_connected_cb cb, std::string path,
                                                  std::size_t limit = stream_reader::default_limit,
                                                  int backlog = 100, bool start_serving = true);
[[nodiscard]] coroutine<server> start_unix_server(client_connected_cb cb, std::string path,
                                                  start_unix_server_options options);

}  // namespace pyco
