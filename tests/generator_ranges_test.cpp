// A generator is a std::ranges::input_range and a view: range-for, the
// standard views and algorithms work on it.
#include <pyco/generator.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <ranges>
#include <string>
#include <vector>

namespace {

using pyco::generator;

static_assert(std::ranges::input_range<generator<int>>);
static_assert(std::ranges::view<generator<int>>);
static_assert(std::ranges::viewable_range<generator<int>>);
static_assert(std::input_iterator<generator<int>::iterator>);
static_assert(std::sentinel_for<std::default_sentinel_t, generator<int>::iterator>);
static_assert(!std::ranges::forward_range<generator<int>>);
static_assert(!std::copyable<generator<int>>);
static_assert(std::movable<generator<int>>);
static_assert(std::same_as<std::ranges::range_reference_t<generator<std::string>>, std::string&>);

generator<int> naturals() {
    for (int i = 0;; ++i) co_yield i;
}

generator<int> count_to(int n, int* resumes = nullptr) {
    for (int i = 0; i < n; ++i) {
        if (resumes) ++*resumes;
        co_yield i;
    }
}

TEST(GeneratorRanges, RangeForVisitsEveryValue) {
    std::vector<int> got;
    for (int x : count_to(4)) got.push_back(x);
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3}));
}

TEST(GeneratorRanges, RangeForOverAnEmptyGenerator) {
    int n = 0;
    for ([[maybe_unused]] int x : count_to(0)) ++n;
    EXPECT_EQ(n, 0);
}

TEST(GeneratorRanges, ReferenceLetsTheBodyAvoidCopies) {
    auto body = []() -> generator<std::string> { co_yield std::string(100, 'x'); };
    for (std::string& s : body()) {
        std::string taken = std::move(s);
        EXPECT_EQ(taken.size(), 100u);
    }
}

TEST(GeneratorRanges, TakeOfAnInfiniteGenerator) {
    std::vector<int> got;
    for (int x : naturals() | std::views::take(5)) got.push_back(x);
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(GeneratorRanges, FilterTransformTake) {
    auto odd_squares = naturals() | std::views::filter([](int i) { return i % 2 == 1; }) |
                       std::views::transform([](int i) { return i * i; }) | std::views::take(4);
    std::vector<int> got;
    for (int x : odd_squares) got.push_back(x);
    EXPECT_EQ(got, (std::vector<int>{1, 9, 25, 49}));
}

TEST(GeneratorRanges, TakeWhileAndDrop) {
    std::vector<int> got;
    for (int x : naturals() | std::views::drop(3) |
                     std::views::take_while([](int i) { return i < 7; })) {
        got.push_back(x);
    }
    EXPECT_EQ(got, (std::vector<int>{3, 4, 5, 6}));
}

TEST(GeneratorRanges, RangesAlgorithms) {
    auto g = count_to(10);
    auto it = std::ranges::find(g, 6);
    ASSERT_NE(it, g.end());
    EXPECT_EQ(*it, 6);
    std::vector<int> rest;
    std::ranges::copy(std::ranges::subrange(it, g.end()), std::back_inserter(rest));
    EXPECT_EQ(rest, (std::vector<int>{6, 7, 8, 9}));
}

TEST(GeneratorRanges, IterationIsLazy) {
    int resumes = 0;
    auto g = count_to(100, &resumes);
    // A generator is a move-only view (as std::generator is): an lvalue goes
    // into a pipeline through ref_view, or by std::move.
    for (int x : std::ranges::ref_view(g) | std::views::take(3)) (void)x;
    // C++20's take over an input range steps its iterator once more after
    // the last item (counted_iterator; P2406), so a fourth value is made and
    // dropped. Python's islice does not; std::generator does the same as us.
    EXPECT_EQ(resumes, 4);
    EXPECT_EQ(g.next(), 4);  // still ours, and it goes on from there
    // next() in a loop takes exactly what it asks for.
    auto h = count_to(100, &resumes);
    resumes = 0;
    for (int i = 0; i < 3; ++i) h.next();
    EXPECT_EQ(resumes, 3);
}

TEST(GeneratorRanges, BeginContinuesAStartedGenerator) {
    // iter() of a started generator is the generator: it goes on from there.
    auto g = count_to(5);
    EXPECT_EQ(g.next(), 0);
    EXPECT_EQ(g.next(), 1);
    std::vector<int> rest;
    for (int x : g) rest.push_back(x);
    EXPECT_EQ(rest, (std::vector<int>{2, 3, 4}));
    int again = 0;
    for ([[maybe_unused]] int x : g) ++again;
    EXPECT_EQ(again, 0);
}

TEST(GeneratorRanges, ExceptionsComeOutOfTheLoop) {
    auto body = []() -> generator<int> {
        co_yield 1;
        throw pyco::value_error("mid-iteration");
    };
    std::vector<int> got;
    try {
        for (int x : body()) got.push_back(x);
        FAIL();
    } catch (const pyco::value_error& e) {
        EXPECT_STREQ(e.what(), "mid-iteration");
    }
    EXPECT_EQ(got, std::vector<int>{1});
}

TEST(GeneratorRanges, MovingTheGeneratorKeepsIteratorsValid) {
    auto g = count_to(4);
    auto it = g.begin();
    generator<int> moved = std::move(g);
    ++it;
    EXPECT_EQ(*it, 1);
}

TEST(GeneratorRanges, GeneratorOfGeneratorsFlattensWithJoin) {
    auto rows = []() -> generator<std::vector<int>> {
        for (int r = 0; r < 3; ++r) {
            std::vector<int> row;
            for (int c = 0; c < r + 1; ++c) row.push_back(r * 10 + c);
            co_yield std::move(row);
        }
    };
    std::vector<int> flat;
    for (int x : rows() | std::views::join) flat.push_back(x);
    EXPECT_EQ(flat, (std::vector<int>{0, 10, 11, 20, 21, 22}));
}

}  // namespace
