"""The build cache is content-addressed: an identical copy of a kernel's folder
elsewhere (the quick start writes add.c to a new temporary folder each run)
is a cache hit — and only when nothing the compiler saw differs."""
from __future__ import annotations

import pytest

from toolchain_fixtures import builder, cache_dir, make_builder, rom_elf, src  # noqa: F401 (fixtures)

from p4jit.toolchain import SignatureError

CODE, ARGS = 0x48010000, 0x4FF00200
ADD = "int add(int a, int b) {\n    return a + b;\n}\n"


def _fresh(make_builder):
    b = make_builder()
    b.toolchain  # compiler facts are not what is measured
    b.cache.stats.reset()
    return b


def test_copy_in_another_folder_is_a_cache_hit(make_builder, src):
    a = src({"add.c": ADD}, folder="one")
    b1 = _fresh(make_builder)
    x = b1.link(b1.prepare(a, "add"), CODE, ARGS)
    b = src({"add.c": ADD}, folder="two")
    b2 = _fresh(make_builder)
    prep = b2.prepare(b, "add")
    y = b2.link(prep, CODE, ARGS)
    assert b2.cache.stats.as_dict() == {"compiles": 0, "links": 0, "hits": 2, "processes": 0}
    assert x.data == y.data
    assert prep.source == str(b.resolve()) and prep.sources == [str(b.resolve())]
    assert "return a + b;" in y.disassemble()  # DWARF relative to the kernel's folder


def test_included_header_of_the_folder_is_compared_by_content(make_builder, src):
    k = '#include "g.h"\nint g(int x) { return x * G; }\n'
    b1 = _fresh(make_builder)
    b1.prepare(src({"k.c": k, "g.h": "#define G 3\n"}, folder="one"), "g")
    b2 = _fresh(make_builder)
    b2.prepare(src({"k.c": k, "g.h": "#define G 3\n"}, folder="two"), "g")
    assert b2.cache.stats.compiles == 0
    b3 = _fresh(make_builder)
    b3.prepare(src({"k.c": k, "g.h": "#define G 4\n"}, folder="three"), "g")
    assert b3.cache.stats.compiles == 1


def test_a_new_file_beside_it_is_a_miss(make_builder, src):
    b1 = _fresh(make_builder)
    b1.prepare(src({"add.c": ADD}, folder="one"), "add")
    b2 = _fresh(make_builder)
    b2.prepare(src({"add.c": ADD, "stdint.h": "#error shadowed\n"}, folder="two"), "add")
    assert b2.cache.stats.compiles == 1


def test_file_macro_keeps_objects_per_folder(make_builder, src):
    k = "const char *where(void) { return __FILE__; }\n"
    b1 = _fresh(make_builder)
    x = b1.link(b1.prepare(src({"f.c": k}, folder="one"), "where"), CODE, ARGS)
    b2 = _fresh(make_builder)
    y = b2.link(b2.prepare(src({"f.c": k}, folder="two"), "where"), CODE, ARGS)
    assert b2.cache.stats.compiles == 1
    assert b"/two/f.c" in y.data and b"/one/f.c" in x.data


def test_messages_name_the_copy(make_builder, src):
    k = "static int s(int x) { return x; }\nint add(int a, int b) { return s(a) + b; }\n"
    _fresh(make_builder).prepare(src({"st.c": k}, folder="one"), "add")
    copy = src({"st.c": k}, folder="two")
    b2 = _fresh(make_builder)
    with pytest.raises(SignatureError) as ei:
        b2.prepare(copy, "s")
    assert b2.cache.stats.compiles == 0
    assert f"{copy.resolve()}:1" in str(ei.value)
