#include <pyco/detail/gather_base.hpp>

#include <pyco/detail/ensure_future.hpp>
#include <pyco/detail/pointer_set.hpp>

namespace pyco::detail {

std::exception_ptr cancellation_of(future_base& f) {
    try {
        f.raise_if_failed();
    } catch (...) {
        return std::current_exception();
    }
    return std::make_exception_ptr(cancelled_error());
}

std::string cancel_message(future_base& f) {
    try {
        f.raise_if_failed();
    } catch (const cancelled_error& e) {
        return e.what();
    } catch (...) {
    }
    return {};
}

bool is_cancellation(const std::exception_ptr& e) noexcept { return exception_is<cancelled_error>(e); }

gather_base::gather_base(event_loop& loop, bool return_exceptions)
    : future_base(loop), link_(intrusive_ptr<gather_link>::adopt(new gather_link(this))),
      return_exceptions_(return_exceptions) {}

gather_base::~gather_base() {
    link_->gather = nullptr;
    link_->gather_was_done = done();
}

void gather_base::watch(std::vector<future_base*> children) {
    children_ = std::move(children);
    pointer_set seen(children_.size());
    for (future_base* c : children_) {
        if (!seen.insert(c)) continue;  // a duplicate: one callback, counted once
        ++nfuts_;
        link_->add_ref();  // the callback's
        try {
            c->add_callback(&child_done, link_.get());
        } catch (...) {
            link_->release();
            throw;
        }
    }
    if (children_.empty()) set_results();
}

void gather_base::child_done(void* link, void* fut, bool run) {
    auto l = intrusive_ptr<gather_link>::adopt(static_cast<gather_link*>(link));
    if (fut == nullptr) return;
    auto f = intrusive_ptr<future_base>::adopt(static_cast<future_base*>(fut));
    if (!run) return;
    if (l->gather == nullptr) {
        if (l->gather_was_done && !f->cancelled()) f->mark_retrieved();
        return;
    }
    intrusive_ptr<future_base> keep(l->gather);  // set_* may drop the last handle's waiter
    l->gather->on_child_done(*f);
}

void gather_base::on_child_done(future_base& child) {
    ++nfinished_;
    if (done()) {
        if (!child.cancelled()) child.mark_retrieved();
        return;
    }
    if (!return_exceptions_) {
        if (child.cancelled()) {
            // A cancelled child fails the gather; the gather itself is not
            // cancelled, so one child's cancel does not cancel the others.
            set_exception(cancellation_of(child));
            return;
        }
        if (std::exception_ptr e = child.exception()) {
            set_exception(std::move(e));
            return;
        }
    }
    if (nfinished_ < nfuts_) return;
    if (cancel_requested_) {
        // CPython builds the results first, which marks every exception
        // retrieved, then raises the cancellation made from the last child.
        for (future_base* c : children_) {
            if (!c->cancelled()) c->mark_retrieved();
        }
        future_base& last = *children_.back();
        set_exception(last.cancelled() ? cancellation_of(last) : std::make_exception_ptr(cancelled_error()));
        return;
    }
    try {
        set_results();
    } catch (...) {  // a result that could not be copied
        if (!done()) set_exception(std::current_exception());
    }
}

bool gather_base::cancel(std::string msg) {
    if (done()) return false;
    // Each child in turn (duplicates too, as CPython); the walk sets
    // cancel_requested_ if any took it.
    return cancel_walk::run(this, cancel_walk::kind::gather, msg);
}

}  // namespace pyco::detail
