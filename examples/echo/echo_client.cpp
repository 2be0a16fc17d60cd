// echo_client PORT [MESSAGE...]
//
// Connects to 127.0.0.1:PORT, sends each MESSAGE as a line (or the lines of
// standard input when none is given), prints each echoed line, and exits 0
// when everything came back.
#include <cstdio>
#include <exception>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <pyco/pyco.hpp>

namespace {

pyco::coroutine<int> talk(std::uint16_t port, std::vector<std::string> lines) {
    auto [reader, writer] = co_await pyco::open_connection("127.0.0.1", port);
    for (const std::string& line : lines) {
        writer.write(line + "\n");
        co_await writer.drain();
        std::string echoed = co_await reader->readline();
        if (echoed != line + "\n") {
            std::fprintf(stderr, "echo_client: expected %s, got %s\n", line.c_str(), echoed.c_str());
            co_return 1;
        }
        std::printf("%s", echoed.c_str());
    }
    writer.close();
    co_await writer.wait_closed();
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: echo_client PORT [MESSAGE...]\n");
        return 2;
    }
    std::vector<std::string> lines(argv + 2, argv + argc);
    if (lines.empty()) {
        for (std::string l; std::getline(std::cin, l);) lines.push_back(l);
    }
    // A port in use, a refused backend (PYCO_BACKEND=io_uring where the
    // kernel has none): said in one line, not an abort.
    try {
        return pyco::run(talk(static_cast<std::uint16_t>(std::atoi(argv[1])), lines));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_client: %s\n", e.what());
        return 1;
    }
}
