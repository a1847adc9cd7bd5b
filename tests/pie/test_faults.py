"""Faults inside PIE code: a PIE load or store outside device memory is an
access fault at the PIE instruction with the address, like a scalar one; the
device keeps serving; a custom word outside the table stays an illegal
instruction."""
from __future__ import annotations

import numpy as np
import pytest

from pie_support import jit, kernel, needs_device  # noqa: F401 (fixtures)

from p4jit.errors import ExecutionFaultError

pytestmark = needs_device

FAULTS_S = """
    .text
    .global load_from
    .type load_from, @function
load_from:                 # int32_t load_from(uint32_t addr)
    mv a4, a0
    esp.vld.128.ip q0, a4, 16
    li a0, 7
    ret

    .global store_to
    .type store_to, @function
store_to:                  # int32_t store_to(uint32_t addr)
    mv a4, a0
    esp.vst.128.ip q0, a4, 16
    li a0, 7
    ret

    .global walk
    .type walk, @function
walk:                      # int32_t walk(uint32_t addr, int32_t blocks): may load past the end
    mv a4, a0
    esp.zero.xacc
    esp.lp.setup 0, a1, 1f
    esp.vld.128.ip q0, a4, 16
1:  esp.vmulas.s8.xacc q0, q0
    li a5, 0
    esp.srs.s.xacc a0, a5
    ret

    .global not_in_table
    .type not_in_table, @function
not_in_table:
    .4byte 0xffffffdb
    ret
"""
PROTOS = """
#include <stdint.h>
int32_t load_from(uint32_t addr);
int32_t store_to(uint32_t addr);
int32_t walk(uint32_t addr, int32_t blocks);
void not_in_table(void);
"""


@pytest.fixture(scope="module")
def f(kernel):
    return kernel({"faults.c": PROTOS, "faults.S": FAULTS_S}, ["load_from", "store_to", "walk", "not_in_table"])


def _pc_of(fn, name, offset):
    return fn.binary.functions[name].address + offset


@pytest.mark.parametrize("addr", [0x0, 0x20000000, 0x4FF0F000])
def test_pie_load_outside_memory_faults_at_the_instruction(f, addr):
    with pytest.raises(ExecutionFaultError) as e:
        f["load_from"](addr)
    assert e.value.cause == 5  # load access fault
    assert e.value.tval == addr
    assert e.value.pc == _pc_of(f["load_from"], "load_from", 2)  # after the 2-byte mv
    assert f["load_from"](0x4FF40000) == 7  # the device keeps serving


def test_pie_store_into_rom_faults(f):
    with pytest.raises(ExecutionFaultError) as e:
        f["store_to"](0x40000100)
    assert e.value.cause == 7 and e.value.tval == 0x40000100
    assert e.value.pc == _pc_of(f["store_to"], "store_to", 2)


def test_fault_in_the_middle_of_a_hardware_loop(f):
    # the internal RAM ends at 0x4FF80000 (the L2 cache carve-out follows):
    # two blocks in range, the third load faults on the loop's third pass
    end = 0x4FF80000
    assert f["walk"](end - 32, 2) == f["walk"](end - 32, 2)
    with pytest.raises(ExecutionFaultError) as e:
        f["walk"](end - 32, 5)
    assert e.value.cause == 5 and e.value.tval == end
    assert e.value.pc == f["walk"].binary.functions["walk"].address + 10
    n_ok = f["walk"].stats.instructions
    assert f["walk"](end - 32, 1) is not None and f["walk"].stats.instructions < n_ok + 20


def test_custom_word_outside_the_table_is_an_illegal_instruction(f):
    with pytest.raises(ExecutionFaultError) as e:
        f["not_in_table"]()
    assert e.value.cause == 2 and e.value.tval == 0xffffffdb
    assert e.value.pc == f["not_in_table"].binary.functions["not_in_table"].address
