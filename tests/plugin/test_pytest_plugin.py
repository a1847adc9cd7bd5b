"""The pytest plugin: a user's kernel test suite, run by pytest itself."""
import pytest

from hostcore_fakes import needs_sim

pytest_plugins = ["pytester"]

KERNEL = "int add(int a, int b) { return a + b; }\n"


@needs_sim
def test_a_user_suite_runs_on_the_virtual_device(pytester):
    pytester.makefile(".c", add=KERNEL)
    pytester.makepyfile(test_user="""
        import numpy as np

        def test_add(jit):
            f = jit.load("add.c", "add")
            assert f(np.int32(40), 2) == 42
            f.free()
    """)
    result = pytester.runpytest_subprocess("--p4jit-port", "sim")
    result.assert_outcomes(passed=1)


@needs_sim
def test_a_test_that_leaks_device_memory_fails_and_is_cleaned_up(pytester):
    pytester.makefile(".c", add=KERNEL)
    pytester.makepyfile(test_user="""
        def test_leaks(jit):
            jit.load("add.c", "add")          # never freed

        def test_next_one_starts_clean(jit):
            assert jit.session.device.allocations() == []
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2, errors=1)  # the leak is a teardown error of test_leaks
    result.stdout.fnmatch_lines(["*left 2 device allocation(s)*call .free()*"])
