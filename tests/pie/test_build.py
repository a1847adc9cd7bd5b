"""PIE through the build: .S files, inline asm in C and C++, LTO, the errors
for what the table lacks or cannot encode, and the disassembly."""
from __future__ import annotations

import numpy as np
import pytest

from pie_support import jit, kernel, needs_device  # noqa: F401 (fixtures)

from p4jit.toolchain import BuildError

pytestmark = needs_device

DOT_S = """
    .text
    .global dot_s8
    .type dot_s8, @function
    # int32_t dot_s8(const int8_t *a, const int8_t *b, int32_t blocks)
    dot_s8:
        mv a4, a0
        mv a5, a1
        esp.zero.xacc
        esp.vld.128.ip q0, a4, 16
        esp.lp.setup 0, a2, 1f
        esp.vld.128.ip q1, a5, 16
    1:  esp.vmulas.s8.xacc.ld.ip q0, a4, 16, q0, q1
        li a3, 0
        esp.srs.s.xacc a0, a3
        ret
"""

DOT_PROTO = "#include <stdint.h>\nint32_t dot_s8(const int8_t *a, const int8_t *b, int32_t blocks);\n"

INLINE_C = """
    #include <stdint.h>
    int32_t helper_scale(int32_t v);
    int32_t dot_inline(const int8_t *a, const int8_t *b, int32_t blocks) {
        register const int8_t *pa asm("a4") = a;
        register const int8_t *pb asm("a5") = b;
        register int32_t n asm("a3") = blocks;
        register int32_t r asm("a2");
        register int32_t sh asm("a1") = 0;
        __asm__ volatile(
            "esp.zero.xacc\\n"
            "esp.lp.setup 1, %[n], 2f\\n"
            "esp.vld.128.ip q2, %[pa], 16\\n"
            "esp.vld.128.ip q3, %[pb], 16\\n"
            "2: esp.vmulas.s8.xacc q2, q3\\n"
            "esp.srs.s.xacc %[r], %[sh]\\n"
            : [r] "=r"(r), [pa] "+r"(pa), [pb] "+r"(pb) : [n] "r"(n), [sh] "r"(sh) : "memory");
        return helper_scale(r);
    }
"""
HELPER_C = "#include <stdint.h>\nint32_t helper_scale(int32_t v) { return v * 2; }\n"


def _ref(a, b):
    return int(a.astype(np.int64) @ b.astype(np.int64))


def test_assembly_file_with_pie(kernel):
    f = kernel({"entry.c": DOT_PROTO, "dot.S": DOT_S}, "dot_s8")
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, 64, dtype=np.int8)
    b = rng.integers(-128, 128, 64, dtype=np.int8)
    assert f(a, b, 4) == _ref(a, b)


@pytest.mark.parametrize("lto", [True, False], ids=["two C files, LTO", "one C file"])
def test_inline_asm_in_c_with_and_without_lto(kernel, lto):
    files = {"dot.c": INLINE_C, "helper.c": HELPER_C} if lto else {"dot.c": INLINE_C + HELPER_C}
    f = kernel(files, "dot_inline")
    assert f.binary.metadata_all is not None
    rng = np.random.default_rng(2)
    a = rng.integers(-128, 128, 48, dtype=np.int8)
    b = rng.integers(-128, 128, 48, dtype=np.int8)
    assert f(a, b, 3) == 2 * _ref(a, b)


def test_inline_asm_in_cpp(kernel):
    src = INLINE_C.replace("int32_t helper_scale(int32_t v);", 'extern "C" int32_t helper_scale(int32_t v);') \
                  .replace("int32_t dot_inline(", 'extern "C" int32_t dot_inline(')
    f = kernel({"dot.cpp": src, "helper.c": HELPER_C}, "dot_inline")
    a = np.arange(-16, 16, dtype=np.int8)
    b = np.arange(32, dtype=np.int8)
    assert f(a, b, 2) == 2 * _ref(a, b)


def test_instruction_outside_the_table_is_a_clear_build_error(kernel):
    src = DOT_S.replace("esp.zero.xacc", "esp.vmax.s8 q0, q1, q2")
    with pytest.raises(BuildError) as e:
        kernel({"entry.c": DOT_PROTO, "dot.S": src}, "dot_s8")
    msg = str(e.value)
    assert "esp.vmax.s8" in msg and "dot.S:8:" in msg and "docs/PIE.md" in msg


def test_register_pie_cannot_encode_is_a_clear_build_error(kernel):
    src = DOT_S.replace("esp.vld.128.ip q1, a5, 16", "esp.vld.128.ip q1, t1, 16")
    with pytest.raises(BuildError) as e:
        kernel({"entry.c": DOT_PROTO, "dot.S": src}, "dot_s8")
    assert "register t1 cannot be encoded: PIE instructions take x8-x15" in str(e.value)


def test_disassembly_shows_pie_mnemonics(kernel):
    f = kernel({"entry.c": DOT_PROTO, "dot.S": DOT_S}, "dot_s8")
    text = f.binary.disassemble(source_intermix=False)
    assert "esp.vmulas.s8.xacc.ld.ip q0, a4, 16, q0, q1" in text
    assert "esp.lp.setup 0, a2, 0x" in text
    assert ".word" not in text.split("<dot_s8>:")[1].split("\n\n")[0]


def test_text_that_only_looks_like_pie_is_left_alone(kernel):
    src = """
        #include <stdint.h>
        struct { int count; } esp;
        const char *label(void) { return "esp.vmax.s8 is not asm here"; }
        int32_t touch(int32_t x) { esp.count = x; __asm__ volatile("esp.zero.q q0"); return esp.count; }
    """
    assert kernel(src, "touch")(5) == 5


def test_unknown_pie_in_inline_asm_is_found(kernel):
    src = """
        #include <stdint.h>
        int32_t f(int32_t x) {
            __asm__ volatile("esp.zero.xacc\\n\\t"
                             "esp.vsat.s8 q0, q1, a0, a1" ::: "memory");
            return x;
        }
    """
    with pytest.raises(BuildError, match=r"kernel.c:4: PIE instruction esp.vsat.s8 is not in"):
        kernel(src, "f")
