"""Hardware loops on the virtual device: a compressed or a 4-byte scalar
last instruction, a PIE last instruction, counts 1 and 0, both loop ids,
nesting, the immediate forms, exact instruction counts, and no state left
for the next call."""
from __future__ import annotations

import pytest

from pie_support import jit, kernel, needs_device  # noqa: F401 (fixtures)

pytestmark = needs_device

LOOPS_S = """
    .text
    # int32_t sum_c(int32_t n): a0 += 1 per iteration, the last body
    # instruction compressed (c.addi)
    .global sum_c
    .type sum_c, @function
sum_c:
    mv a3, a0
    li a0, 0
    esp.lp.setup 0, a3, 1f
    addi a1, a1, 3
1:  c.addi a0, 1
    ret

    # the same with a 4-byte scalar last instruction, loop id 1
    .global sum_w
    .type sum_w, @function
sum_w:
    mv a3, a0
    li a0, 0
    esp.lp.setup 1, a3, 1f
    nop
1:  addi a0, a0, 1
    ret

"""

# a PIE last instruction: q0 = 16 ones, XACC += 16 per pass
SUM_PIE = """
    .global sum_pie
    .type sum_pie, @function
sum_pie:
    mv a3, a0
    mv a4, a1
    esp.zero.xacc
    esp.vld.128.ip q0, a4, 0
    esp.lp.setup 0, a3, 1f
    addi a5, a5, 0
1:  esp.vmulas.s8.xacc q0, q0
    li a4, 0
    esp.srs.s.xacc a0, a4
    ret

    # nested: outer id 1 (a0 times), inner id 0 (a1 times), a2 counts
    .global nested
    .type nested, @function
nested:
    mv a3, a0
    mv a4, a1
    li a0, 0
    esp.lp.setup 1, a3, 2f
    esp.lp.setup 0, a4, 1f
1:  addi a0, a0, 1
2:  addi a0, a0, 100
    ret

    # immediate forms: counti/starti/endi, then setupi
    .global immediates
    .type immediates, @function
immediates:
    li a0, 0
    esp.lp.counti 0, 5
    esp.lp.starti 0, 1f
    esp.lp.endi 0, 2f
1:  addi a0, a0, 1
2:  addi a0, a0, 10
    esp.lp.setupi 1, 3, 3f
    nop
3:  addi a0, a0, 1000
    ret
"""

PROTOS = """
#include <stdint.h>
int32_t sum_c(int32_t n);
int32_t sum_w(int32_t n);
int32_t sum_pie(int32_t n, const int8_t *ones);
int32_t nested(int32_t outer, int32_t inner);
int32_t immediates(void);
"""


@pytest.fixture(scope="module")
def loops(kernel):
    return kernel({"loops.c": PROTOS, "loops.S": LOOPS_S + SUM_PIE}, ["sum_c", "sum_w", "sum_pie", "nested", "immediates"])


@pytest.mark.parametrize("fn", ["sum_c", "sum_w"])
@pytest.mark.parametrize("n", [1, 2, 3, 10, 1000])
def test_scalar_last_instruction(loops, fn, n):
    assert loops[fn](n) == n


@pytest.mark.parametrize("fn", ["sum_c", "sum_w"])
def test_count_zero_runs_the_body_once(loops, fn):
    # an assumption (docs/PIE.md): count 0 behaves as count 1
    assert loops[fn](0) == 1


@pytest.mark.parametrize("n", [0, 1, 2, 17, 500])
def test_pie_last_instruction(loops, n):
    import numpy as np
    ones = np.ones(16, np.int8)
    assert loops["sum_pie"](n, ones) == 16 * max(n, 1)


@pytest.mark.parametrize("outer,inner", [(1, 1), (3, 4), (5, 1), (2, 50)])
def test_nested_loops_with_both_ids(loops, outer, inner):
    assert loops["nested"](outer, inner) == outer * (inner + 100)


def test_immediate_forms(loops):
    # counti/starti/endi: 5 passes over [+1, +10]; setupi: 3 passes over [nop, +1000]
    assert loops["immediates"]() == 5 * 11 + 3 * 1000


def test_instruction_count_is_exact(loops):
    base = None
    for n in (1, 2, 10, 100):
        loops["sum_w"](n)
        count = loops["sum_w"].stats.instructions
        if base is None:
            base = count - 2  # two body instructions per iteration
        assert count == base + 2 * n


def test_no_loop_state_survives_a_call(loops):
    assert loops["sum_c"](5) == 5
    # the same code again with count 1: a stale count would loop back
    assert loops["sum_c"](1) == 1
