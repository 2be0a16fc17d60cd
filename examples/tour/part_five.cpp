// Part five of the tour: subprocesses and TLS. The tour runs `openssl req`
// as a subprocess to make itself a certificate, serves TLS with it, upgrades
// a plaintext connection in place (STARTTLS), shows a client refusing a
// certificate it does not trust, and ends with a pipeline of two programs
// and pyco in the middle, with back-pressure end to end. Everything stays on
// 127.0.0.1 and in a temporary directory.
#include "tour.hpp"

#include <pyco/net/ssl.hpp>
#include <pyco/subprocess.hpp>

#include <stdlib.h>

#include <algorithm>
#include <any>
#include <filesystem>
#include <optional>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

using pyco::coroutine;
using reader_ptr = std::shared_ptr<pyco::stream_reader>;

std::uint16_t port_of(const pyco::server& srv) { return srv.sockets().at(0).port(); }

// --- 21. Subprocesses: create_subprocess_exec, communicate, signals --------------

coroutine<void> subprocesses(std::string dir) {
    tour::section("21. Subprocesses: asyncio.create_subprocess_exec and friends");
    // The shell form, output through a pipe (stdout=PIPE) and communicate().
    pyco::subprocess_options piped;
    piped.stdout = pyco::subprocess::PIPE;
    pyco::process sh = co_await pyco::create_subprocess_shell("echo $((6 * 7)); exit 3", piped);
    auto [out, err] = co_await sh.communicate();
    std::printf("  sh printed %s and exited: returncode %d\n", out.substr(0, out.size() - 1).c_str(),
                *sh.returncode());

    // A long-running child, then kill(): returncode is minus the signal.
    pyco::process sleeper = co_await pyco::create_subprocess_exec("sleep", "30");
    sleeper.kill();
    int code = co_await sleeper.wait();
    std::printf("  sleep 30 killed: returncode %d (-SIGKILL)\n", code);

    // openssl makes the certificate the TLS sections use; its chatter on
    // stderr is collected, not printed.
    pyco::subprocess_options quiet;
    quiet.stdout = pyco::subprocess::DEVNULL;
    quiet.stderr = pyco::subprocess::PIPE;
    std::vector<std::string> args;
    for (const char* a : {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                          "-days", "1", "-subj", "/CN=localhost", "-addext",
                          "subjectAltName=DNS:localhost,IP:127.0.0.1"}) {
        args.push_back(a);
    }
    for (const char* a : {"-keyout", "/key.pem", "-out", "/cert.pem"}) {
        args.push_back(a[0] == '/' ? dir + a : std::string(a));
    }
    pyco::process openssl = co_await pyco::create_subprocess_exec("openssl", std::move(args), quiet);
    auto [nothing, chatter] = co_await openssl.communicate();
    std::printf("  openssl req made a certificate for localhost: exit %d\n", *openssl.returncode());
}

// --- 22. TLS: ssl= on a server and a client, and a client that says no -----------

coroutine<void> greet(reader_ptr reader, pyco::stream_writer writer) {
    std::string name = co_await reader->readline();
    writer.write("hello over TLS, " + name);
    co_await writer.drain();
    writer.close();
}

coroutine<void> tls(std::string dir) {
    tour::section("22. TLS: the ssl= option of start_server and open_connection");
    pyco::ssl_context server_ctx = pyco::ssl_context::server();
    server_ctx.load_cert_chain(dir + "/cert.pem", dir + "/key.pem");
    pyco::start_server_options serve;
    serve.ssl = server_ctx;
    pyco::server srv = co_await pyco::start_server(greet, "127.0.0.1", 0, serve);

    // A client that trusts this certificate (and checks the name).
    pyco::ssl_context client_ctx = pyco::ssl_context::create_default_context();
    client_ctx.load_verify_locations(dir + "/cert.pem");
    pyco::open_connection_options connect;
    connect.ssl = client_ctx;
    connect.server_hostname = "localhost";
    auto [reader, writer] = co_await pyco::open_connection("127.0.0.1", port_of(srv), connect);
    auto tls_info = std::any_cast<pyco::ssl_object>(writer.get_extra_info("ssl_object"));
    std::printf("  connected: %s, peer certificate for %s\n", tls_info.version().c_str(),
                tls_info.getpeercert()->subject.at(0).second.c_str());
    writer.write("tour\n");
    std::string greeting = co_await reader->readline();
    std::printf("  %s", greeting.c_str());
    writer.close();
    co_await writer.wait_closed();

    // A client that trusts only the system's CAs refuses it: a typed error
    // with OpenSSL's reason, and the server goes on serving.
    pyco::open_connection_options strict;
    strict.ssl = pyco::ssl_context::create_default_context();
    strict.server_hostname = "localhost";
    try {
        (void)co_await pyco::open_connection("127.0.0.1", port_of(srv), strict);
    } catch (const pyco::ssl_cert_verification_error& e) {
        std::printf("  a client without our CA: ssl_cert_verification_error: %s\n", e.verify_message().c_str());
    }
    srv.close();
    co_await srv.wait_closed();
}

// --- 23. STARTTLS: upgrading a connection in place ----------------------------------

coroutine<void> starttls_server(reader_ptr reader, pyco::stream_writer writer, pyco::ssl_context ctx) {
    std::string line = co_await reader->readline();  // "STARTTLS\n", in the clear
    writer.write("GO AHEAD\n");
    co_await writer.drain();
    co_await writer.start_tls(ctx);  // the same reader and writer, now encrypted
    std::string secret = co_await reader->readline();
    writer.write("got " + secret);
    co_await writer.drain();
    writer.close();
}

coroutine<void> starttls(std::string dir) {
    tour::section("23. STARTTLS: stream_writer.start_tls upgrades a connection in place");
    pyco::ssl_context server_ctx = pyco::ssl_context::server();
    server_ctx.load_cert_chain(dir + "/cert.pem", dir + "/key.pem");
    auto handler = [server_ctx](reader_ptr r, pyco::stream_writer w) { return starttls_server(r, w, server_ctx); };
    pyco::server srv = co_await pyco::start_server(handler, "127.0.0.1", 0);

    auto [reader, writer] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
    writer.write("STARTTLS\n");
    std::string go = co_await reader->readline();
    std::printf("  plaintext: %s", go.c_str());
    pyco::ssl_context client_ctx = pyco::ssl_context::create_default_context();
    client_ctx.load_verify_locations(dir + "/cert.pem");
    pyco::start_tls_options upgrade;
    upgrade.server_hostname = "localhost";
    co_await writer.start_tls(client_ctx, upgrade);
    std::printf("  upgraded: ssl_object present = %s\n",
                writer.get_extra_info("ssl_object").has_value() ? "yes" : "no");
    writer.write("the password\n");
    std::string answer = co_await reader->readline();
    std::printf("  encrypted: %s", answer.c_str());
    writer.close();
    co_await writer.wait_closed();
    srv.close();
    co_await srv.wait_closed();
}

// --- 24. A pipeline: producer | pyco | consumer, with back-pressure --------------------

coroutine<void> pipeline() {
    tour::section("24. A pipeline: seq | pyco | wc, with back-pressure");
    // producer: 200000 numbers, one per line, into a pipe to us.
    pyco::subprocess_options from_seq;
    from_seq.stdout = pyco::subprocess::PIPE;
    std::vector<std::string> seq_args;
    seq_args.push_back("1");
    seq_args.push_back("200000");
    pyco::process producer = co_await pyco::create_subprocess_exec("seq", std::move(seq_args), from_seq);
    // consumer: counts lines and bytes from a pipe we write to; its own
    // stdout comes back to us.
    pyco::subprocess_options to_wc;
    to_wc.stdin = pyco::subprocess::PIPE;
    to_wc.stdout = pyco::subprocess::PIPE;
    std::vector<std::string> wc_args;
    wc_args.push_back("-lc");
    pyco::process consumer = co_await pyco::create_subprocess_exec("wc", std::move(wc_args), to_wc);

    // The filter: every line that ends in 7, written on at once; drain()
    // waits whenever wc is behind (the write buffer is over 64 KiB), and
    // while it waits nothing is read, so seq blocks on its full pipe.
    std::size_t most = 0;
    for (;;) {
        std::string line = co_await producer.stdout->readline();
        if (line.empty()) break;  // seq is done
        if (line.size() < 2 || line[line.size() - 2] != '7') continue;
        consumer.stdin.write(line);
        most = std::max(most, consumer.stdin.get_write_buffer_size());
        co_await consumer.stdin.drain();
    }
    consumer.stdin.close();
    std::string counted = co_await consumer.stdout->read();
    std::printf("  wc -lc counted:%s", counted.c_str());
    const int seq_code = co_await producer.wait();
    const int wc_code = co_await consumer.wait();
    std::printf("  seq exited %d, wc exited %d\n", seq_code, wc_code);
    std::printf("  our write buffer stayed under the high-water mark plus a line: %s\n",
                most <= 64 * 1024 + 8 ? "yes" : "no");
}

coroutine<void> main_part_five(std::string dir) {
    co_await subprocesses(dir);
    co_await tls(dir);
    co_await starttls(dir);
    co_await pipeline();
}

}  // namespace

void tour::part_five() {
    std::printf("\n######## Part five: subprocesses and TLS\n"
                "######## examples/tour/part_five.cpp\n");
    std::string dir = (std::filesystem::temp_directory_path() / "pyco-tour.XXXXXX").string();
    if (::mkdtemp(dir.data()) == nullptr) {
        std::perror("mkdtemp");
        return;
    }
    pyco::run(main_part_five(dir));
    std::filesystem::remove_all(dir);
}
