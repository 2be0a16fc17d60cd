// pyco/detail/saturate.hpp — durations and deadlines that cannot overflow.
//
// Every delay a user gives (sleep, call_later, timeout, wait_for, wait,
// as_completed) becomes the loop's duration through saturating_ceil, and
// every deadline is made by saturating_add; the loop's wait is measured by
// saturating_sub. Nowhere else is a duration added to a time point.
//
// Why: std::chrono's conversions and sums are plain integer arithmetic. A
// delay beyond the clock's range (about 292 years of nanoseconds:
// hours::max(), seconds::max(), a double of 1e300) overflows, which is
// undefined behaviour and in practice wraps to a deadline in the past: the
// sleep returns at once, the timeout expires at once. CPython accepts any
// float and simply waits; here a delay too long for the clock means "the
// clock's last instant", which no program lives to see. NaN waits for ever
// too, as in CPython (its comparisons never make the timer due).
#pragma once

#include <chrono>
#include <cmath>
#include <limits>
#include <ratio>
#include <type_traits>
#include <utility>

namespace pyco::detail {

// d in To (an integral duration), rounded up, clamped to To's range.
template <class To, class Rep, class Period>
To saturating_ceil(std::chrono::duration<Rep, Period> d) noexcept {
    using R = typename To::rep;
    static_assert(std::is_integral_v<R> && std::is_signed_v<R>);
    constexpr R hi = std::numeric_limits<R>::max();
    constexpr R lo = std::numeric_limits<R>::min();
    // One unit of Period is num/den units of To.
    using cf = std::ratio_divide<Period, typename To::period>;
    if constexpr (std::is_floating_point_v<Rep>) {
        const long double v = std::ceil(static_cast<long double>(d.count()) * cf::num / cf::den);
        // 2^digits is exact in any floating type; R's range is [-2^digits, 2^digits).
        const long double edge = std::ldexp(1.0L, std::numeric_limits<R>::digits);
        if (std::isnan(v) || v >= edge) return To::max();
        if (v < -edge) return To::min();
        return To(static_cast<R>(v));
    } else {
        static_assert(std::is_integral_v<Rep>, "a duration with an arithmetic representation");
        static_assert(cf::num <= hi / cf::den, "a period this odd cannot be converted exactly");
        const Rep c = d.count();
        // Whole multiples of den first, so that nothing overflows on the way.
        const Rep q = static_cast<Rep>(c / cf::den);
        const Rep r = static_cast<Rep>(c % cf::den);  // |r| < den: fits R
        if (std::cmp_greater(q, hi / cf::num)) return To::max();
        if (std::cmp_less(q, lo / cf::num)) return To::min();
        const R whole = static_cast<R>(q) * cf::num;
        // The rest, rounded up (division truncates toward zero: that is the
        // ceiling of a negative quotient).
        const R rest = static_cast<R>(r) * cf::num;
        const R part = rest / cf::den + (rest > 0 && rest % cf::den != 0 ? 1 : 0);
        if (part > 0 && whole > hi - part) return To::max();
        if (part < 0 && whole < lo - part) return To::min();
        return To(whole + part);
    }
}

// t + d, clamped to the time point's range.
template <class Clock, class Dur>
std::chrono::time_point<Clock, Dur> saturating_add(std::chrono::time_point<Clock, Dur> t,
                                                  std::type_identity_t<Dur> d) noexcept {
    using tp = std::chrono::time_point<Clock, Dur>;
    const Dur since = t.time_since_epoch();
    if (d > Dur::zero() && since > Dur::max() - d) return tp::max();
    if (d < Dur::zero() && since < Dur::min() - d) return tp::min();
    return t + d;
}

// a - b, clamped to the duration's range.
template <class Clock, class Dur>
Dur saturating_sub(std::chrono::time_point<Clock, Dur> a, std::chrono::time_point<Clock, Dur> b) noexcept {
    const Dur x = a.time_since_epoch();
    const Dur y = b.time_since_epoch();
    if (y < Dur::zero() && x > Dur::max() + y) return Dur::max();
    if (y > Dur::zero() && x < Dur::min() + y) return Dur::min();
    return x - y;
}

}  // namespace pyco::detail
