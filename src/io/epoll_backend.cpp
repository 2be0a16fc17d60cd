// The epoll backend. An eventfd, registered like any fd, makes wakeup()
// interrupt epoll_wait; its reads never reach the loop.
#include <pyco/detail/io_backend.hpp>
#include <pyco/detail/saturate.hpp>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace pyco::detail {

namespace {

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

std::uint32_t to_epoll(unsigned interest) {
    std::uint32_t ev = 0;
    if (interest & io_read) ev |= EPOLLIN;
    if (interest & io_write) ev |= EPOLLOUT;
    return ev;
}

class epoll_backend final : public io_backend {
public:
    epoll_backend() {
        epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0) throw_errno("epoll_create1");
        wakefd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (wakefd_ < 0) {
            int e = errno;
            ::close(epfd_);
            throw std::system_error(e, std::generic_category(), "eventfd");
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = wakefd_;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) < 0) throw_errno("epoll_ctl(wakeup fd)");
    }
    ~epoll_backend() override {
        ::close(wakefd_);
        ::close(epfd_);
    }

    const char* name() const noexcept override { return "epoll"; }

    void set_interest(int fd, unsigned before, unsigned after) override {
        epoll_event ev{};
        ev.events = to_epoll(after);
        ev.data.fd = fd;
        int op = before == io_none ? EPOLL_CTL_ADD : after == io_none ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
        if (::epoll_ctl(epfd_, op, fd, &ev) < 0) {
            // A closed fd leaves epoll by itself; removing it is not an error.
            if (op == EPOLL_CTL_DEL && (errno == EBADF || errno == ENOENT)) return;
            throw_errno(op == EPOLL_CTL_ADD ? "epoll_ctl(ADD)" : op == EPOLL_CTL_MOD ? "epoll_ctl(MOD)"
                                                                                   : "epoll_ctl(DEL)");
        }
    }

    void wait(std::optional<std::chrono::nanoseconds> timeout, std::vector<io_event>& out) override {
        int ms = -1;
        if (timeout) {
            // Round up, as CPython does: waking early only spins the loop.
            // Longer waits are cut at epoll's limit (about 24.8 days); the
            // loop then waits again.
            auto t = saturating_ceil<std::chrono::milliseconds>(*timeout).count();
            ms = t <= 0 ? 0 : t > 0x7fffffff ? 0x7fffffff : static_cast<int>(t);
        }
        epoll_event events[256];
        int n = ::epoll_wait(epfd_, events, 256, ms);
        if (n < 0) {
            if (errno == EINTR) return;
            throw_errno("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            const epoll_event& e = events[i];
            if (e.data.fd == wakefd_) {
                std::uint64_t drain;
                [[maybe_unused]] auto r = ::read(wakefd_, &drain, sizeof drain);
                continue;
            }
            unsigned ready = 0;
            if (e.events & (EPOLLIN | EPOLLPRI)) ready |= io_read;
            if (e.events & EPOLLOUT) ready |= io_write;
            if (e.events & (EPOLLERR | EPOLLHUP)) ready |= io_read | io_write;
            out.push_back({e.data.fd, ready});
        }
    }

    void wakeup() noexcept override {
        std::uint64_t one = 1;
        [[maybe_unused]] auto r = ::write(wakefd_, &one, sizeof one);
    }

private:
    int epfd_ = -1;
    int wakefd_ = -1;
};

}  // namespace

std::unique_ptr<io_backend> make_epoll_backend() { return std::make_unique<epoll_backend>(); }

}  // namespace pyco::detail
