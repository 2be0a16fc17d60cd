// asyncio.subprocess: the stream protocol (SubprocessStreamProtocol),
// pyco::process and create_subprocess_exec / create_subprocess_shell.
//
// The streams reuse src/net's: each PIPE output is a stream_reader fed by a
// stream_reader_protocol whose transport is that pipe's transport (so the
// reader's flow control pauses the pipe); stdin is a stream_writer over the
// write pipe with a stream_reader_protocol of its own for drain() (its
// reader is never fed nor read: only its drain waiters are used).
//
// Invariant: the stream protocol forwards each pipe's loss exactly once to
// the matching stream_reader_protocol (pipe_connection_lost comes once per
// pipe), which feeds EOF (or the error) and wakes drain waiters.
#include <pyco/subprocess.hpp>

#include <signal.h>

#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/gather.hpp>
#include <pyco/task.hpp>

namespace pyco {

struct process_access {
    static process make(std::shared_ptr<subprocess_transport> t, std::shared_ptr<subprocess_protocol> p);
};

namespace {

class stream_protocol final : public subprocess_protocol {
public:
    explicit stream_protocol(std::size_t limit) : limit_(limit) {}

    void connection_made(subprocess_transport& t) override {
        for (int fd = 1; fd <= 2; ++fd) {
            std::shared_ptr<transport> pipe = t.get_pipe_transport(fd);
            if (!pipe) continue;
            auto reader = std::make_shared<stream_reader>(static_cast<std::ptrdiff_t>(limit_));
            readers_[fd] = std::make_shared<stream_reader_protocol>(reader);
            readers_[fd]->connection_made(*pipe);
        }
        if (std::shared_ptr<transport> pipe = t.get_pipe_transport(0)) {
            auto unused = std::make_shared<stream_reader>();
            stdin_proto_ = std::make_shared<stream_reader_protocol>(std::move(unused));
            stdin_proto_->connection_made(*pipe);
            stdin_ = stream_writer(pipe, stdin_proto_, nullptr);
        }
    }
    void pipe_data_received(int fd, std::span<const std::byte> data) override {
        if ((fd == 1 || fd == 2) && readers_[fd]) readers_[fd]->data_received(data);
    }
    void pipe_connection_lost(int fd, std::exception_ptr exc) override {
        if (fd == 0) {
            if (stdin_proto_) stdin_proto_->connection_lost(exc);
            return;
        }
        if ((fd == 1 || fd == 2) && readers_[fd]) readers_[fd]->connection_lost(exc);
    }
    void pause_writing() override {
        if (stdin_proto_) stdin_proto_->pause_writing();
    }
    void resume_writing() override {
        if (stdin_proto_) stdin_proto_->resume_writing();
    }

    std::shared_ptr<stream_reader> reader(int fd) const {
        return readers_[fd] ? readers_[fd]->reader() : nullptr;
    }
    const stream_writer& writer() const noexcept { return stdin_; }
    bool has_stdin() const noexcept { return stdin_proto_ != nullptr; }

private:
    std::size_t limit_;
    std::shared_ptr<stream_reader_protocol> readers_[3];
    std::shared_ptr<stream_reader_protocol> stdin_proto_;
    stream_writer stdin_;
};

coroutine<void> feed_stdin(stream_writer w, std::optional<std::string> input) {
    try {
        if (input) w.write(*input);
        co_await w.drain();
    } catch (const broken_pipe_error&) {
        // communicate() ignores these, as CPython.
    } catch (const connection_reset_error&) {
    }
    w.close();
}

coroutine<std::string> read_all(std::shared_ptr<stream_reader> r, std::shared_ptr<transport> pipe) {
    std::string out = co_await r->read();
    if (pipe) pipe->close();
    co_return out;
}

coroutine<std::string> nothing() { co_return std::string(); }
coroutine<void> nothing_void() { co_return; }

coroutine<process> make_process(std::vector<std::string> argv, subprocess_options options) {
    event_loop& loop = get_running_loop();
    const std::size_t limit = options.limit;
    subprocess_protocol_factory f = [limit] { return std::make_shared<stream_protocol>(limit); };
    subprocess_pair pr = co_await loop.subprocess_exec(std::move(f), std::move(argv), std::move(options));
    co_return process_access::make(std::move(pr.first), std::move(pr.second));
}

}  // namespace

process process_access::make(std::shared_ptr<subprocess_transport> t, std::shared_ptr<subprocess_protocol> p) {
    process out;
    auto* sp = static_cast<stream_protocol*>(p.get());
    out.stdin = sp->writer();
    out.stdout = sp->reader(1);
    out.stderr = sp->reader(2);
    out.has_stdin_ = sp->has_stdin();
    out.transport_ = std::move(t);
    out.protocol_ = std::move(p);
    return out;
}

int process::pid() const noexcept { return transport_ ? transport_->get_pid() : -1; }

std::optional<int> process::returncode() const noexcept {
    return transport_ ? transport_->get_returncode() : std::nullopt;
}

coroutine<int> process::wait() {
    std::shared_ptr<subprocess_transport> t = transport_;
    co_return co_await t->wait();
}

coroutine<std::pair<std::string, std::string>> process::communicate(std::optional<std::string> input) {
    std::shared_ptr<subprocess_transport> t = transport_;
    // As CPython: input is dropped when stdin is not PIPE.
    coroutine<void> in = has_stdin_ ? feed_stdin(stdin, std::move(input)) : nothing_void();
    coroutine<std::string> out = stdout ? read_all(stdout, t->get_pipe_transport(1)) : nothing();
    coroutine<std::string> err = stderr ? read_all(stderr, t->get_pipe_transport(2)) : nothing();
    auto [a, b, c] = co_await gather(std::move(in), std::move(out), std::move(err));
    (void)a;
    co_await t->wait();
    co_return std::pair<std::string, std::string>(std::move(b), std::move(c));
}

void process::send_signal(int sig) { transport_->send_signal(sig); }
void process::terminate() { send_signal(SIGTERM); }
void process::kill() { send_signal(SIGKILL); }

coroutine<process> create_subprocess_exec(std::string program, std::vector<std::string> args,
                                          subprocess_options options) {
    std::vector<std::string> argv;
    argv.reserve(args.size() + 1);
    argv.push_back(std::move(program));
    for (std::string& a : args) argv.push_back(std::move(a));
    return make_process(std::move(argv), std::move(options));
}

coroutine<process> create_subprocess_shell(std::string cmd, subprocess_options options) {
    std::vector<std::string> argv;
    argv.push_back("/bin/sh");
    argv.push_back("-c");
    argv.push_back(std::move(cmd));
    return make_process(std::move(argv), std::move(options));
}

}  // namespace pyco
