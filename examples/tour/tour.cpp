// The pyco tour: Python's coroutine model in C++20, one idea at a time.
#include <cstdio>

#include "tour.hpp"

int main() {
    std::printf("pyco tour: Python's coroutine model in C++20\n"
                "Read along in examples/tour/: each numbered section below is the\n"
                "function under the comment \"// --- N.\" in the part's file.\n");
    tour::part_one();
    tour::part_two();
    tour::part_three();
    tour::part_four();
    tour::part_five();
    return 0;
}
