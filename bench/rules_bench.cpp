// Placeholder; the real rules benchmark follows.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
