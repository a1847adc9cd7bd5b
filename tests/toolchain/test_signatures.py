"""Signature parsing on real preprocessed sources: every C scalar type,
typedefs, enums, const pointers, arrays, 64-bit slots — and the rejections."""
from __future__ import annotations

import pytest

from toolchain_fixtures import builder, cache_dir, make_builder, rom_elf, src  # noqa: F401 (fixtures)

from p4jit.toolchain import SignatureError
from p4jit.toolchain.cparse import find_signature, parse_unit, sanitize
from p4jit._paths import default_config_dir


def sig_of(builder, src, code, name="f", fname="k.c"):
    return builder.prepare(src({fname: code}), name).signatures[name]


def shape(sig):
    return [(p.kind, p.dtype, p.const, p.slot) for p in sig.params]


SCALARS = [
    ("char", "uint8"),  # plain char is unsigned on RISC-V
    ("signed char", "int8"), ("unsigned char", "uint8"),
    ("short", "int16"), ("unsigned short", "uint16"), ("short int", "int16"),
    ("int", "int32"), ("unsigned", "uint32"), ("signed", "int32"),
    ("long", "int32"), ("unsigned long", "uint32"), ("long int", "int32"),
    ("long long", "int64"), ("unsigned long long", "uint64"),
    ("_Bool", "bool"), ("bool", "bool"),
    ("float", "float32"), ("double", "float64"),
    ("int8_t", "int8"), ("uint8_t", "uint8"), ("int16_t", "int16"), ("uint16_t", "uint16"),
    ("int32_t", "int32"), ("uint32_t", "uint32"), ("int64_t", "int64"), ("uint64_t", "uint64"),
    ("size_t", "uint32"), ("intptr_t", "int32"), ("uintptr_t", "uint32"),
]


def test_every_scalar_type(builder, src):
    params = ", ".join(f"{t} p{i}" for i, (t, _) in enumerate(SCALARS[:15]))
    code = f"#include <stdint.h>\n#include <stdbool.h>\n#include <stddef.h>\nvoid f({params}) {{}}\n"
    sig = sig_of(builder, src, code)
    assert [p.dtype for p in sig.params] == [d for _, d in SCALARS[:15]]
    params = ", ".join(f"{t} p{i}" for i, (t, _) in enumerate(SCALARS[15:]))
    code = f"#include <stdint.h>\n#include <stdbool.h>\n#include <stddef.h>\nvoid g({params}) {{}}\n"
    sig = builder.prepare(src({"k2.c": code}, folder="k2"), "g").signatures["g"]
    assert [p.dtype for p in sig.params] == [d for _, d in SCALARS[15:]]


@pytest.mark.parametrize("ctype,dtype,slot", [
    ("int8_t", "int8", 31), ("uint16_t", "uint16", 31), ("float", "float32", 31),
    ("double", "float64", 30), ("int64_t", "int64", 30), ("uint64_t", "uint64", 30), ("_Bool", "bool", 31),
])
def test_return_types(builder, src, ctype, dtype, slot):
    sig = sig_of(builder, src, f"#include <stdint.h>\n{ctype} f(void) {{ return 1; }}\n")
    assert sig.params == () and sig.ret_dtype == dtype and sig.ret_slot == slot


def test_void_and_pointer_returns(builder, src):
    sig = sig_of(builder, src, "void f(int *p) { *p = 1; }\n")
    assert sig.ret_dtype == "void" and sig.ret_slot is None
    sig = sig_of(builder, src, "static int x; int *g(void) { return &x; }\n", name="g", fname="g.c")
    assert (sig.ret_kind, sig.ret_dtype, sig.ret_slot) == ("pointer", "uint32", 31)


def test_wide_values_take_two_slots(builder, src):
    sig = sig_of(builder, src, "#include <stdint.h>\n"
                 "int f(int8_t a, double b, int c, uint64_t d, float e) { return 0; }\n")
    assert [p.slot for p in sig.params] == [0, 1, 3, 4, 6]
    assert [p.slots for p in sig.params] == [1, 2, 1, 2, 1]


def test_typedefs_enums_and_const_pointers(builder, src):
    sig = sig_of(builder, src, """
        #include <stdint.h>
        typedef int16_t sample_t;
        typedef sample_t frame_t;
        typedef const float *coeffs_t;
        enum mode { MODE_A, MODE_B };
        typedef enum { LOW, HIGH } level_t;
        int f(frame_t *out, const sample_t *in, coeffs_t c, enum mode m, level_t l,
              const void *raw, void *scratch, uint8_t * const fixed) { return 0; }
    """)
    assert shape(sig) == [
        ("pointer", "int16", False, 0), ("pointer", "int16", True, 1),
        ("pointer", "float32", True, 2), ("scalar", "int32", False, 3), ("scalar", "int32", False, 4),
        ("pointer", "void", True, 5), ("pointer", "void", False, 6), ("pointer", "uint8", False, 7)]
    assert sig.params[0].c_type == "frame_t *"
    assert sig.params[1].c_type == "const sample_t *"


def test_arrays_structs_unions_and_pointers_to_pointers(builder, src):
    sig = sig_of(builder, src, """
        #include <stdint.h>
        struct hdr { uint8_t tag; uint32_t len; double when; };
        union u { int i; float f; };
        typedef struct node node_t;  /* incomplete */
        int f(float m[][4], int v[8], struct hdr *h, union u *x, node_t *n, float **rows,
              int (*cb)(int)) { return 0; }
    """)
    assert shape(sig) == [
        ("pointer", "float32", False, 0), ("pointer", "int32", False, 1),
        ("pointer", "struct", False, 2), ("pointer", "struct", False, 3), ("pointer", "struct", False, 4),
        ("pointer", "uint32", False, 5), ("scalar", "uint32", False, 6)]
    assert [p.struct_size for p in sig.params[2:5]] == [16, 4, 0]


def test_user_headers_resolve(builder, src):
    path = src({"k.c": '#include "types.h"\nvec3_t f(const particle_t *p) { return p->pos.x; }\n',
                "types.h": "typedef float vec3_t;\ntypedef struct { struct { vec3_t x, y, z; } pos; "
                           "int id; } particle_t;\n"})
    sig = builder.prepare(path, "f").signatures["f"]
    assert sig.ret_dtype == "float32"
    assert (sig.params[0].dtype, sig.params[0].const, sig.params[0].struct_size) == ("struct", True, 16)


def test_gcc_extensions_in_the_source(builder, src):
    sig = sig_of(builder, src, """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <math.h>
        typedef struct __attribute__((packed)) { char a; int b; } packed_t;
        static inline int sq(int x) { return ({ int y = x; y * y; }); }
        __attribute__((noinline)) int f(packed_t *p, float x) {
            __asm__ volatile ("nop");
            return sq(p->b) + (int)sqrtf(x) + (int)strlen("x") + (__typeof__(x))0;
        }
    """)
    assert shape(sig) == [("pointer", "struct", False, 0), ("scalar", "float32", False, 1)]
    assert sig.params[0].struct_size == 0  # packed: layout unknown to the parser, not guessed


def test_definition_in_another_file(builder, src):
    path = src({"main.c": "extern int helper(int);\nint unused_main(int x) { return helper(x); }\n",
                "helper.c": "int helper(int x) { return x + 1; }\n"})
    sig = builder.prepare(path, "helper").signatures["helper"]
    assert shape(sig) == [("scalar", "int32", False, 0)]


# ---- rejections -------------------------------------------------------------------------


@pytest.mark.parametrize("code,name,match", [
    ("int g(int x) { return x; }\n", "f", "function 'f' not found"),
    ("int F(int x) { return x; }\n", "f", "did you mean 'F'"),
    ("int f(int x);\nint g(int x) { return f(x); }\n", "f", r"declared at .*k\.c:1 but defined in none"),
    ("#include <stdarg.h>\nint f(int n, ...) { return n; }\n", "f", "variadic"),
    ("struct s { int a; };\nint f(struct s v) { return v.a; }\n", "f", r"struct s passed by value"),
    ("union u { int a; };\nint f(union u v) { return v.a; }\n", "f", r"union u passed by value"),
    ("typedef struct { int a; } S;\nS f(int a) { S s = {a}; return s; }\n", "f", "returns a struct"),
    ("int f(long double x) { return (int)x; }\n", "f", "cannot carry"),
    ("long double f(int x) { return x; }\n", "f", "cannot be returned"),
    ("int f(long double *x) { return (int)*x; }\n", "f", "element type"),
    ("static int f(int x) { return x; }\n", "f", "static"),
    ("int f(" + ", ".join(f"int a{i}" for i in range(32)) + ") { return a0; }\n", "f", "argument slots"),
    ("#include <stdint.h>\nint f(" + ", ".join(f"int64_t a{i}" for i in range(16)) + ") { return 0; }\n",
     "f", "need 32 argument slots"),
])
def test_rejections(builder, src, code, name, match):
    with pytest.raises(SignatureError, match=match):
        builder.prepare(src({"k.c": code}), name)


def test_thirty_one_slots_fit(builder, src):
    code = "int f(" + ", ".join(f"int a{i}" for i in range(31)) + ") { return a30; }\n"
    sig = sig_of(builder, src, code)
    assert sig.params[-1].slot == 30
    code = "#include <stdint.h>\nint64_t f(" + ", ".join(f"int a{i}" for i in range(31)) + ") { return 0; }\n"
    with pytest.raises(SignatureError):
        sig_of(builder, src, code, fname="w.c")


def test_signature_error_is_a_value_error():
    assert issubclass(SignatureError, ValueError)


# ---- the parser alone (no compiler) ---------------------------------------------------------


def test_sanitize_keeps_line_numbers():
    text = ('# 1 "k.c"\nint __attribute__((aligned(4),\n section(".x"))) a;\n'
            'static __inline int f(int x) {\n  return ({ x; });\n}\nint g(void);\n')
    out = sanitize(text).text
    assert out.count("\n") == text.count("\n")
    assert "__attribute__" not in out and "({" not in out
    assert out.splitlines()[6] == "int g(void);"


def test_prototype_fallback_for_unparsable_c():
    std = (default_config_dir() / "std_types.h").read_text()
    raw = ('# 1 "k.c"\n'
           "typedef float gain_t;\n"
           "int weird = __builtin_choose_expr(1, 2, 3) @@@;\n"
           "gain_t f(Widget *w, const uint8_t *px, gain_t g) { return g; }\n")
    unit = parse_unit("k.c", raw, "c", ["f"])
    assert unit.fallback
    sig = find_signature([unit], "f", std).signature
    assert shape(sig) == [("pointer", "struct", False, 0), ("pointer", "uint8", True, 1),
                          ("scalar", "float32", False, 2)]
    assert sig.ret_dtype == "float32"


def test_cpp_extern_c_block_and_class_pointers(builder, src):
    path = src({"k.cpp": """
        #include <stdint.h>
        class Widget { public: int v; int get() const { return v; } };
        typedef uint16_t sample_t;
        extern "C" {
        int32_t poke(Widget *w, const sample_t *s, float g, bool on) {
            return on ? w->get() + (int32_t)(s[0] * g) : 0;
        }
        }
    """})
    sig = builder.prepare(path, "poke").signatures["poke"]
    assert shape(sig) == [("pointer", "struct", False, 0), ("pointer", "uint16", True, 1),
                          ("scalar", "float32", False, 2), ("scalar", "bool", False, 3)]
    assert sig.ret_dtype == "int32"
