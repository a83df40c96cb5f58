"""The gateway's benchmark harness: ``python -m bench`` (or ``make bench``).

It starts three loopback upstreams (fixed response, fixed 50 ms delay, streaming), a gateway on
a fresh SQLite database pinned to CPU 0, drives both the upstream directly and the gateway with
``wrk`` pinned to CPU 1, and prints one table of ratios (also written as JSON under
``bench/results/``). The method, the targets and the latest results are in docs/benchmarks.md;
every option in ``python -m bench --help`` and bench/README.md."""
