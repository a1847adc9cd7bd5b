"""Pass 1 and pass 2 lay a kernel out identically, whatever mix of C, C++,
assembly and link-time optimisation its folder holds.

Pass 1 measures the size to allocate; pass 2 relinks at the real address. An
assembly object holding ``.align`` placed elsewhere by pass 2 than by pass 1
shifts the padding, and the load fails with "pass 2 is N bytes, pass 1
measured M". Every case below links at several addresses and checks that the
image keeps the measured size and that the aligned function stays aligned.
"""
from __future__ import annotations

import pytest

from toolchain_fixtures import builder, cache_dir, src  # noqa: F401 (fixtures)

ENTRY_C = "int foo(int); int helper(int); int run(int x) { return foo(x) + helper(x); }\n"
HELPER_C = "int helper(int x) { return x * 3 + 1; }\n"
HELPER_CPP = 'extern "C" int helper(int x) { return x * 3 + 1; }\n'
FOO_S = ".text\n.align 4\n.global foo\n.type foo, @function\nfoo: addi a0, a0, 1\nret\n"
# a second assembly file, so two .S objects surround the compiled code
BAR_S = ".text\n.align 5\n.global bar\n.type bar, @function\nbar: addi a0, a0, 2\nret\n"
ENTRY_BAR_C = ("int foo(int); int bar(int); int helper(int);\n"
               "int run(int x) { return foo(x) + bar(x) + helper(x); }\n")

CASES = {
    # the reported layout: two C files (LTO on) and a .S with .align 4
    "c+c+asm (lto)": ({"entry.c": ENTRY_C, "helper.c": HELPER_C, "foo.S": FOO_S}, {}),
    "c+asm": ({"entry.c": ENTRY_C, "helper.c": HELPER_C, "foo.S": FOO_S}, {"lto": "off"}),
    "c+c++ +asm (lto)": ({"entry.c": ENTRY_C, "helper.cpp": HELPER_CPP, "foo.S": FOO_S}, {}),
    "c+asm+asm (lto)": ({"entry.c": ENTRY_BAR_C, "helper.c": HELPER_C, "foo.S": FOO_S,
                         "bar.S": BAR_S}, {}),
    "one c + asm, lto forced": ({"entry.c": ENTRY_C + HELPER_C, "foo.S": FOO_S}, {"lto": "on"}),
    "asm entry + c (lto)": ({"foo.S": FOO_S, "entry.c": ENTRY_C, "helper.c": HELPER_C}, {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_both_passes_lay_out_identically(cache_dir, src, case):
    from p4jit.toolchain import Builder

    files, compiler = CASES[case]
    b = Builder(config={"cache": {"dir": str(cache_dir)}, "compiler": compiler})
    entry = src(files)
    if entry.suffix == ".S":  # the signature comes from the C file
        entry = entry.with_name("entry.c")
    prep = b.prepare(entry, "run")
    assert prep.lto == ("lto" in case)
    for code in (0x48010000, 0x48010100, 0x4FF12300):
        bo = b.link(prep, code, 0x4FF00200)
        assert bo.total_size == prep.size
        foo = bo.functions["foo"].address
        assert foo % 16 == 0 and code <= foo < code + prep.size
        if "bar" in bo.functions:
            assert bo.functions["bar"].address % 32 == 0
