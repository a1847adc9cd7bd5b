"""One session used from eight threads at once.

Each round loads fresh functions (empty arenas), then eight threads make their
first calls together with growing arrays (so the arenas grow while other
threads call), create, use and free device arrays, and update a device array of
their own that lives across rounds. Every result is checked against NumPy, and
after each round the device holds exactly what is still alive: no orphaned
allocation, no stale address, no corrupted device array.
"""
import threading

import numpy as np
import pytest

from api_support import needs_device

pytestmark = needs_device

MIX_C = """
#include <stdint.h>
/* x[i] = x[i] * k + d[i] */
void mix(int32_t *x, int32_t n, int32_t k, const int32_t *d) {
    for (int32_t i = 0; i < n; i++) x[i] = x[i] * k + d[i];
}
"""
THREADS = 8


def _run_threads(work, n=THREADS):
    """Run ``work(t)`` in ``n`` threads started together; re-raise the first error."""
    errors = []

    def body(t):
        try:
            work(t)
        except BaseException as e:  # reported by the main thread below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(t,)) for t in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


def _addresses(jit):
    return sorted(a.addr for a in jit.device.allocations())


def test_first_calls_from_eight_threads_while_arenas_grow(fresh_jit, sources):
    jit = fresh_jit
    src = sources(MIX_C)
    heap_before = jit.get_heap_stats()
    # one device array per thread that lives through every round: each round
    # adds t + 1 to it through a kernel, from its own thread
    keepers = [jit.array(np.full(100 + t, 1000 * t, np.int32)) for t in range(THREADS)]
    expected = [np.full(100 + t, 1000 * t, np.int32) for t in range(THREADS)]
    for rnd in range(12):
        functions = [jit.load(src, "mix") for _ in range(THREADS // 2)]  # two threads share each
        start = threading.Barrier(THREADS)

        def work(t):
            rng = np.random.default_rng(rnd * THREADS + t)
            mix = functions[t % len(functions)]
            start.wait()
            for step in range(4):
                n = 64 * (t + 1) * (step + 1) + rnd  # every call needs a larger arena
                x = rng.integers(-1000, 1000, n, dtype=np.int32)
                d = rng.integers(-1000, 1000, n, dtype=np.int32)
                want = x * np.int32(3) + d
                if step % 2:
                    with jit.array(d) as dev_d:  # a device array made, used and freed meanwhile
                        mix(x, np.int32(n), np.int32(3), dev_d)
                        np.testing.assert_array_equal(dev_d.numpy(), d)
                else:
                    mix(x, np.int32(n), np.int32(3), d)
                np.testing.assert_array_equal(x, want)
            keeper = keepers[t]
            mix(keeper, np.int32(keeper.size), np.int32(1), np.full(keeper.size, t + 1, np.int32))
            expected[t] += t + 1

        _run_threads(work)
        for k, want in zip(keepers, expected):
            np.testing.assert_array_equal(k.numpy(), want)
        for f in functions:
            f.free()
        assert _addresses(jit) == sorted(k.address for k in keepers)
    for k in keepers:
        k.free()
    assert _addresses(jit) == []
    assert jit.get_heap_stats() == heap_before


def test_threads_loading_calling_and_freeing_together(fresh_jit, sources):
    jit = fresh_jit
    src = sources(MIX_C)
    jit.load(src, "mix").free()  # build once: the rounds below load from the cache
    heap_before = jit.get_heap_stats()
    for rnd in range(4):
        start = threading.Barrier(THREADS)

        def work(t):
            start.wait()
            with jit.load(src, "mix") as mix:
                n = 256 * (t + 1)
                x = np.arange(n, dtype=np.int32)
                d = np.full(n, rnd, np.int32)
                mix(x, np.int32(n), np.int32(-2), d)
                np.testing.assert_array_equal(x, np.arange(n, dtype=np.int32) * -2 + rnd)
                with jit.zeros(n, np.int32) as acc:
                    mix(acc, np.int32(n), np.int32(1), x)
                    np.testing.assert_array_equal(acc.numpy(), x)

        _run_threads(work)
        assert _addresses(jit) == []
    assert jit.get_heap_stats() == heap_before



def test_a_device_array_freed_by_another_thread_is_never_used_after(fresh_jit, sources):
    """One thread calls with a device array, another frees it meanwhile: each
    call either uses the live array (correct result) or refuses the freed one
    (ValueError), never the device memory it no longer owns."""
    jit = fresh_jit
    mix = jit.load(sources(MIX_C), "mix")
    n = 256
    d_host = np.arange(n, dtype=np.int32)
    d = jit.array(d_host)
    twenty = threading.Event()
    refused = []

    def caller(_):
        for i in range(10_000):
            x = np.full(n, i, np.int32)
            try:
                mix(x, np.int32(n), np.int32(2), d)
            except ValueError as e:
                refused.append(str(e))
                return
            np.testing.assert_array_equal(x, 2 * i + d_host)
            if i == 20:
                twenty.set()

    def freer(_):
        twenty.wait()
        d.free()

    _run_threads(lambda t: (caller if t == 0 else freer)(t), n=2)
    assert refused and "was freed" in refused[0]
    mix.free()
    assert _addresses(jit) == []
