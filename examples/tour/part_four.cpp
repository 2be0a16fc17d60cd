// Part four of the tour: networking and files. A server started inside the
// tour, a client talking to it, and the seeds' own example for real: a main
// coroutine that reads a file and then makes an HTTP request, each a
// sub-coroutine — first in the generator-based style, then with co_await.
// Everything stays on 127.0.0.1 (ports the kernel picks) and in a temporary
// directory: no internet.
#include "tour.hpp"

#include <stdlib.h>

#include <cctype>
#include <filesystem>
#include <memory>
#include <string>

namespace {

using pyco::coroutine;
using reader_ptr = std::shared_ptr<pyco::stream_reader>;

std::uint16_t port_of(const pyco::server& srv) { return srv.sockets().at(0).port(); }

// --- 18. A server inside the program, and a client for it -------------------

// start_server runs this as a task per connection (asyncio's
// client_connected_cb): it shouts every line back.
coroutine<void> shout(reader_ptr reader, pyco::stream_writer writer) {
    for (;;) {
        std::string line = co_await reader->readline();
        if (line.empty()) break;  // EOF: the client is done
        for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        writer.write(line);
        co_await writer.drain();
    }
    writer.close();
}

coroutine<void> server_and_client() {
    tour::section("18. A server inside the program: start_server and open_connection");
    pyco::server srv = co_await pyco::start_server(shout, "127.0.0.1", 0);  // port 0: the kernel picks one
    std::printf("  serving on 127.0.0.1 (a port the kernel chose), is_serving() = %s\n",
                srv.is_serving() ? "true" : "false");
    auto [reader, writer] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
    for (std::string word : {"hello", "from pyco"}) {
        writer.write(word + "\n");
        co_await writer.drain();  // back-pressure: waits only above the high-water mark
        std::string reply = co_await reader->readline();
        std::printf("  sent \"%s\", got back %s", word.c_str(), reply.c_str());
    }
    writer.write_eof();  // our half is done; the handler sees EOF and closes
    std::printf("  after write_eof the server closed its side: read() -> \"%s\" (EOF)\n",
                (co_await reader->read()).c_str());
    writer.close();
    co_await writer.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    std::printf("  server closed\n");
}

// The tour's own tiny HTTP server for 19 and 20: it answers every request
// with what it received (the request line and the size of the body).
coroutine<void> tiny_http(reader_ptr reader, pyco::stream_writer writer) {
    std::string request_line = co_await reader->readline();
    std::size_t length = 0;
    for (;;) {
        std::string header = co_await reader->readline();
        if (header == "\r\n" || header.empty()) break;
        if (header.rfind("Content-Length:", 0) == 0) length = std::stoul(header.substr(15));
    }
    std::string body = co_await reader->readexactly(static_cast<std::ptrdiff_t>(length));
    request_line.resize(request_line.size() - 2);  // the CRLF
    std::string answer = "got \"" + request_line + "\" with " + std::to_string(body.size()) + " bytes";
    writer.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(answer.size()) +
                 "\r\nConnection: close\r\n\r\n" + answer);
    co_await writer.drain();
    writer.close();
}

std::string post_request(const std::string& target, const std::string& body) {
    return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
}

// --- 19. File, then HTTP: the generator-based style --------------------------

// Each co_yield hands the driving task something to wait for, and the
// result comes back as the value of the co_yield (Python 3.4's
// `data = yield from f.read()` under @asyncio.coroutine). Every step here
// is a coroutine<std::string>, the one type the generator yields.
using step = coroutine<std::string>;
using sub = pyco::generator<step, std::string, std::string>;

step open_into(std::shared_ptr<pyco::async_file> f, std::string path) {
    *f = co_await pyco::open_file(path, "rb");
    co_return "";
}
step close_file(std::shared_ptr<pyco::async_file> f) {
    co_await f->close();
    co_return "";
}

sub read_file_gen(std::string path) {
    auto f = std::make_shared<pyco::async_file>();
    co_yield open_into(f, path);
    std::string data = co_yield f->read();  // the whole file
    co_yield close_file(f);
    std::printf("  read_file: %zu bytes from %s\n", data.size(), std::filesystem::path(path).filename().c_str());
    co_return data;
}

step connect_into(std::shared_ptr<pyco::stream_pair> conn, std::uint16_t port) {
    *conn = co_await pyco::open_connection("127.0.0.1", port);
    co_return "";
}
step drain(std::shared_ptr<pyco::stream_pair> conn) {
    co_await conn->second.drain();
    co_return "";
}

sub http_post_gen(std::uint16_t port, std::string target, std::string body) {
    auto conn = std::make_shared<pyco::stream_pair>();
    co_yield connect_into(conn, port);
    conn->second.write(post_request(target, body));
    co_yield drain(conn);
    std::string status = co_yield conn->first->readline();
    while ((co_yield conn->first->readline()) != "\r\n") {
    }  // the headers
    std::string answer = co_yield conn->first->read();  // to EOF (Connection: close)
    conn->second.close();
    status.resize(status.size() - 2);
    std::printf("  http_post: %s\n", status.c_str());
    co_return answer;
}

// The main generator delegates to each sub-generator in turn with
// `yield from` (co_yield pyco::from(...)); their return values come back.
sub upload_gen(std::string path, std::uint16_t port) {
    std::string data = co_yield pyco::from(read_file_gen(path));
    std::string answer = co_yield pyco::from(http_post_gen(port, "/upload", std::move(data)));
    co_return answer;
}

// --- 20. File, then HTTP: with co_await -----------------------------------------

coroutine<std::string> read_file(std::string path) {
    // async with open_file(path, "rb") as f: return await f.read()
    auto body = [](pyco::async_file& f) -> coroutine<std::string> { co_return co_await f.read(); };
    std::optional<std::string> data = co_await pyco::async_with(pyco::open_file(path, "rb"), body);
    std::printf("  read_file: %zu bytes from %s\n", data->size(), std::filesystem::path(path).filename().c_str());
    co_return std::move(*data);
}

coroutine<std::string> http_post(std::uint16_t port, std::string target, std::string body) {
    auto [reader, writer] = co_await pyco::open_connection("127.0.0.1", port);
    writer.write(post_request(target, body));
    co_await writer.drain();
    std::string status = co_await reader->readline();
    while (co_await reader->readline() != "\r\n") {
    }
    std::string answer = co_await reader->read();
    writer.close();
    status.resize(status.size() - 2);
    std::printf("  http_post: %s\n", status.c_str());
    co_return answer;
}

coroutine<std::string> upload(std::string path, std::uint16_t port) {
    std::string data = co_await read_file(path);
    co_return co_await http_post(port, "/upload", std::move(data));
}

coroutine<void> file_then_http(const std::string& dir) {
    const std::string path = dir + "/report.csv";
    {
        pyco::async_file f = co_await pyco::open_file(path, "wb");
        co_await f.write("name,kg\nalice,61.5\nbob,74.2\n");
        co_await f.close();
    }
    pyco::server http = co_await pyco::start_server(tiny_http, "127.0.0.1", 0);
    const std::uint16_t port = port_of(http);

    tour::section("19. A file read, then an HTTP request: generators driven by a task");
    // A task drives the generator: it awaits each yielded step and sends
    // the result back in (section 16 showed the idea).
    std::string old_way = co_await pyco::create_task(upload_gen(path, port));
    std::printf("  the server answered: %s\n", old_way.c_str());

    tour::section("20. The same with co_await (PEP 492): the sub-coroutines are awaited");
    std::string new_way = co_await upload(path, port);
    std::printf("  the server answered: %s\n", new_way.c_str());
    std::printf("  same answer both ways: %s\n", old_way == new_way ? "yes" : "no");

    http.close();
    co_await http.wait_closed();
}

coroutine<void> main_part_four(const std::string& dir) {
    co_await server_and_client();
    co_await file_then_http(dir);
}

}  // namespace

void tour::part_four() {
    std::printf("\n######## Part four: networking and files\n"
                "######## examples/tour/part_four.cpp\n");
    std::string dir = (std::filesystem::temp_directory_path() / "pyco-tour.XXXXXX").string();
    if (::mkdtemp(dir.data()) == nullptr) {
        std::perror("mkdtemp");
        return;
    }
    pyco::run(main_part_four(dir));
    std::filesystem::remove_all(dir);
}
