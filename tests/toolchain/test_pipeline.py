"""The two-pass build end to end: every example kind of the original README,
the build cache, determinism, diagnostics, and the user's folder left alone."""
from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

import kernels
from toolchain_fixtures import builder, cache_dir, make_builder, rom_elf, src  # noqa: F401 (fixtures)

from p4jit.toolchain import BinaryObject, Builder, BuildError, SignatureError

CODE = 0x48010000
ARGS = 0x4FF00200

ADD = """
int add(int a, int b) {
    return a + b;
}
"""


def build(builder: Builder, path: Path, names, code=CODE, args=ARGS, **kw) -> BinaryObject:
    prep = builder.prepare(path, names, **kw)
    return builder.link(prep, code, args)


def listing(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---- example kinds ----------------------------------------------------------------------


def test_single_file(builder, src):
    path = src({"add.c": ADD})
    prep = builder.prepare(path, "add")
    assert prep.size > 0 and prep.size % 16 == 0 and prep.alignment >= 16
    sig = prep.signatures["add"]
    assert [(p.name, p.kind, p.dtype, p.slot) for p in sig.params] == [
        ("a", "scalar", "int32", 0), ("b", "scalar", "int32", 1)]
    assert sig.ret_dtype == "int32" and sig.ret_slot == 31
    bo = builder.link(prep, CODE, ARGS)
    assert bo.total_size == prep.size == len(bo.data)
    assert bo.base_address == CODE and bo.args_address == ARGS
    assert bo.entry_address == bo.entry("add") == bo.functions["call_remote"].address
    assert set(bo.functions) >= {"call_remote", "add"}
    assert {s.name for s in bo.sections} >= {".text"}
    assert all(CODE <= s.address and s.end <= CODE + bo.total_size for s in bo.sections)
    # p4jit_args is where we said
    assert any(s.name == "p4jit_args" and s.address == ARGS for s in bo.symbols)
    meta = bo.metadata
    assert meta["function"] == "add" and meta["arg_address"] == f"0x{ARGS:08X}"
    assert meta["parameters"][1]["address"] == f"0x{ARGS + 4:08X}"
    assert meta["result"]["address"] == f"0x{ARGS + 124:08X}"


def test_multi_file_with_helpers_uses_lto(builder, src):
    path = src({
        "algorithm.c": """
            #include <stdint.h>
            extern int32_t square(int32_t x);
            int32_t compute(int32_t a, int32_t b) { return square(a) + square(b); }
        """,
        "helpers.c": """
            #include <stdint.h>
            int32_t square(int32_t x) { return x * x; }
        """,
    })
    prep = builder.prepare(path, "compute")
    assert prep.lto and len(prep.sources) == 2
    assert prep.sources[0].endswith("algorithm.c")
    bo = builder.link(prep, CODE, ARGS)
    # LTO inlined the helper across files: no separate square() left
    assert "square" not in bo.functions
    assert "compute" in bo.functions or bo.entry("compute")


def test_c_plus_assembly(builder, src):
    path = src({
        "main.c": """
            extern int asm_add3(int a, int b, int c);
            int kernel(int a, int b) { return asm_add3(a, b, 3); }
        """,
        "add3.S": """
            .section .text.asm_add3,"ax",@progbits
            .globl asm_add3
            .type asm_add3, @function
            asm_add3:
                add a0, a0, a1
                add a0, a0, a2
                ret
            .size asm_add3, .-asm_add3
        """,
    })
    bo = build(builder, path, "kernel")
    f = bo.functions["asm_add3"]
    assert f.size in (6, 12)  # three instructions, compressed or not
    assert bo.base_address <= f.address < bo.base_address + bo.total_size


def test_cpp_file(builder, src):
    path = src({
        "dsp.cpp": """
            #include <stdint.h>
            namespace {
            template <typename T> struct Acc {
                T sum{};
                void add(T v) { sum += v; }
            };
            }
            extern "C" int32_t total(const int32_t *data, int n) {
                Acc<int32_t> acc;
                for (int i = 0; i < n; i++) acc.add(data[i]);
                return acc.sum;
            }
        """,
    })
    prep = builder.prepare(path, "total")
    p0, p1 = prep.signatures["total"].params
    assert (p0.kind, p0.dtype, p0.const) == ("pointer", "int32", True)
    assert (p1.kind, p1.dtype) == ("scalar", "int32")
    builder.link(prep, CODE, ARGS)


def test_cpp_without_c_linkage_is_explained(builder, src):
    path = src({"k.cpp": "int scale(int x) { return 2 * x; }\n"})
    with pytest.raises(SignatureError, match='extern "C"'):
        builder.prepare(path, "scale")


def test_cpp_static_constructor_rejected(builder, src):
    path = src({"k.cpp": """
        struct Counter { int n; Counter() : n(42) {} };
        Counter counter;
        extern "C" int get(void) { return counter.n; }
    """})
    with pytest.raises(BuildError, match="static constructors"):
        build(builder, path, "get")


def test_struct_typedef_in_signature(builder, src):
    path = src({"geometry.c": kernels.source("geometry")})
    prep = builder.prepare(path, "sum_point")
    p, z, arr = prep.signatures["sum_point"].params
    assert (p.kind, p.dtype, p.struct_size, p.c_type) == ("pointer", "struct", 8, "Point *")
    assert (z.kind, z.dtype) == ("scalar", "int8")
    assert (arr.kind, arr.dtype) == ("pointer", "uint16")
    assert prep.signatures["sum_point"].ret_dtype == "float32"
    builder.link(prep, CODE, ARGS)


def test_module_with_several_entry_points(builder, src):
    path = src({"mod.c": """
        static int state;
        void init(int v) { state = v; }
        int process(int x) { return x + state; }
    """})
    prep = builder.prepare(path, ["init", "process"])
    assert prep.entry_symbols == {"init": "call_remote_init", "process": "call_remote_process"}
    bo = builder.link(prep, CODE, ARGS)
    assert bo.entry("init") != bo.entry("process")
    assert bo.functions["call_remote_init"].address == bo.entry("init")
    assert bo.signatures["init"].ret_dtype == "void"
    assert [m["function"] for m in bo.metadata_all["functions"]] == ["init", "process"]
    with pytest.raises(KeyError, match="entry functions: init, process"):
        bo.entry("nope")


def test_bss_is_zero_filled_in_the_image(builder, src):
    path = src({"k.c": """
        static int table[256];
        static const int k[4] = {1, 2, 3, 4};
        int touch(int i) { table[i & 255] += k[i & 3]; return table[i & 255]; }
    """})
    bo = build(builder, path, "touch")
    bss = next(s for s in bo.sections if s.name == ".bss")
    assert bss.type == "nobits" and bss.size >= 1024
    lo = bss.address - bo.base_address
    assert bo.data[lo:lo + bss.size] == bytes(bss.size)
    assert bo.total_size >= lo + bss.size


def test_alignment_follows_the_data(builder, src):
    path = src({"k.c": """
        static float buf[16] __attribute__((aligned(64)));
        float first(int i) { buf[i & 15] = 1.0f; return buf[0]; }
    """})
    prep = builder.prepare(path, "first")
    assert prep.alignment == 64
    with pytest.raises(ValueError, match="not aligned"):
        builder.link(prep, CODE + 16, ARGS)
    builder.link(prep, CODE, ARGS)


def test_firmware_calls_against_the_rom(builder, src, rom_elf):
    path = src({"dyn.c": r"""
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        int test_dynamic(void) {
            char *buffer = (char *)malloc(64);
            if (!buffer) return -1;
            snprintf(buffer, 64, "Hello from JIT Heap! (Magic: 0x%X)", 0xDEADBEEF);
            printf("[JIT] %s\n", buffer);
            int n = (int)strlen(buffer);
            free(buffer);
            return n;
        }
    """})
    prep = builder.prepare(path, "test_dynamic", firmware_elf=rom_elf)
    assert prep.firmware_elf == str(rom_elf.resolve())
    bo = builder.link(prep, CODE, ARGS)
    # printf/malloc come from the ROM: absolute symbols, not code in the image
    assert "malloc" not in bo.functions and "printf" not in bo.functions
    # the sim's ROM is also the default symbol-bridge target
    assert builder.prepare(path, "test_dynamic").firmware_elf == str(rom_elf.resolve())


def test_firmware_calls_without_firmware_say_why(builder, src):
    path = src({"p.c": '#include <stdio.h>\nint hello(void) { printf("hi %d\\n", 1); return 0; }\n'})
    with pytest.raises(BuildError) as ei:
        build(builder, path, "hello", use_firmware_elf=False)
    assert "undefined reference" in str(ei.value) and "use_firmware_elf=True" in str(ei.value)


def test_missing_firmware_elf_is_an_error(builder, src, tmp_path):
    path = src({"add.c": ADD})
    with pytest.raises(BuildError, match="does not exist"):
        builder.prepare(path, "add", firmware_elf=tmp_path / "nope.elf")


def test_soft_helpers_come_from_libgcc(builder, src):
    path = src({"k.c": """
        #include <stdint.h>
        int64_t mul_div(int64_t a, int64_t b, int64_t c) { return a * b / c; }
        double ratio(double x, double y) { return x / y; }
    """})
    # Without firmware the helpers are linked in from libgcc; with it they
    # would resolve to the firmware's own copies instead.
    bo = build(builder, path, ["mul_div", "ratio"], use_firmware_elf=False)
    assert "__divdi3" in bo.functions
    assert "__divdf3" in bo.functions
    sig = bo.signatures["mul_div"]
    assert [p.slot for p in sig.params] == [0, 2, 4] and sig.ret_slot == 30


# ---- the build cache ----------------------------------------------------------------------


def test_cache_hit_compiles_and_links_nothing(make_builder, src):
    path = src({"add.c": ADD})
    b1 = make_builder()
    bo1 = build(b1, path, "add")
    assert b1.cache.stats.compiles == 1 and b1.cache.stats.links == 2
    b2 = make_builder()  # a new process would start like this
    b2.toolchain
    b2.cache.stats.reset()
    bo2 = build(b2, path, "add")
    assert b2.cache.stats.as_dict() == {"compiles": 0, "links": 0, "hits": 2, "processes": 0}
    assert bo2.data == bo1.data


def test_relink_at_new_address_reuses_objects(builder, src):
    path = src({"add.c": ADD})
    prep = builder.prepare(path, "add")
    a = builder.link(prep, CODE, ARGS)
    builder.cache.stats.reset()
    prep2 = builder.prepare(path, "add")
    b = builder.link(prep2, CODE + 0x1000, ARGS + 0x80)
    assert builder.cache.stats.as_dict() == {"compiles": 0, "links": 1, "hits": 1, "processes": 1}
    assert b.total_size == a.total_size and b.entry_address == a.entry_address + 0x1000
    assert a.data != b.data  # the args address is baked into the wrapper


def test_cold_load_spawns_at_most_three_processes(builder, src):
    builder.toolchain  # facts probed once per compiler binary, not per load
    builder.cache.stats.reset()
    build(builder, src({"add.c": ADD}), "add")
    assert builder.cache.stats.processes <= 3


def test_header_change_recompiles(builder, src):
    path = src({"k.c": '#include "gain.h"\nint gain(int x) { return x * GAIN; }\n', "gain.h": "#define GAIN 2\n"})
    a = build(builder, path, "gain")
    (path.parent / "gain.h").write_text("#define GAIN 3\n")
    builder.cache.stats.reset()
    b = build(builder, path, "gain")
    assert builder.cache.stats.compiles == 1
    assert a.data != b.data


def test_one_changed_file_of_two_recompiles_alone(builder, src):
    path = src({"a.c": "extern int h(int);\nint f(int x) { return h(x) + 1; }\n",
                "b.c": "int h(int x) { return x * 7; }\n"})
    build(builder, path, "f")
    (path.parent / "a.c").write_text("extern int h(int);\nint f(int x) { return h(x) + 2; }\n")
    builder.cache.stats.reset()
    build(builder, path, "f")
    assert builder.cache.stats.compiles == 1


def test_deterministic_output(make_builder, src, tmp_path):
    path = src({"k.c": """
        #include <stdint.h>
        static const float taps[4] = {0.1f, 0.2f, 0.3f, 0.4f};
        float fir(const float *x, int n) {
            float acc = 0; for (int i = 0; i < n; i++) acc += x[i] * taps[i & 3]; return acc;
        }
    """})
    b1 = make_builder(cache={"dir": str(tmp_path / "c1")})
    b2 = make_builder(cache={"dir": str(tmp_path / "c2")})
    x1, x2 = build(b1, path, "fir"), build(b2, path, "fir")
    assert x1.data == x2.data
    assert Path(x1.elf_path).read_bytes() == Path(x2.elf_path).read_bytes()


def _concurrent_build(args):
    cache, path = args
    bo = build(Builder(config={"cache": {"dir": cache}}), Path(path), "add")
    return bo.data


def test_two_processes_share_one_cache(cache_dir, src):
    path = src({"add.c": ADD})
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        a, b = pool.map(_concurrent_build, [(str(cache_dir), str(path))] * 2)
    assert a == b
    assert not any((cache_dir / "v1" / "tmp").iterdir())


def test_clear_cache(builder, src):
    path = src({"add.c": ADD})
    build(builder, path, "add")
    builder.clear_cache()
    builder.cache.stats.reset()
    build(builder, path, "add")
    assert builder.cache.stats.compiles == 1


# ---- diagnostics and hygiene ---------------------------------------------------------------


def test_compiler_errors_have_file_and_line(builder, src):
    path = src({"broken.c": "int f(int x) {\n    return x +;\n}\n"})
    with pytest.raises(BuildError) as ei:
        builder.prepare(path, "f")
    msg = str(ei.value)
    assert f"{path}:2:" in msg and "error" in msg
    assert f"{path}:2:" in ei.value.output


def test_linker_errors_reach_the_user(builder, src):
    path = src({"k.c": "extern int nowhere(int);\nint f(int x) { return nowhere(x); }\n"})
    with pytest.raises(BuildError, match="undefined reference to `nowhere'"):
        build(builder, path, "f", use_firmware_elf=False)


def test_nothing_is_written_to_the_source_folder(builder, src):
    path = src({"algorithm.c": "extern int sq(int);\nint compute(int a) { return sq(a); }\n",
                "helpers.c": "int sq(int x) { return x * x; }\n",
                "mix.S": ".globl unused\nunused: ret\n",
                "algorithm.h": "/* the user's own header: never overwritten */\n"})
    folder = path.parent
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    names = listing(folder)
    bo = build(builder, path, "compute")
    bo.disassemble()
    assert listing(folder) == names
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_missing_source_and_bad_names(builder, src, tmp_path):
    with pytest.raises(BuildError, match="not found"):
        builder.prepare(tmp_path / "none.c", "f")
    path = src({"add.c": ADD})
    with pytest.raises(ValueError, match="not a C identifier"):
        builder.prepare(path, "add-1")
    with pytest.raises(ValueError, match="optimization"):
        builder.prepare(path, "add", optimization="O9")


def test_missing_compiler_names_the_fix(make_builder, tmp_path, src):
    b = make_builder(toolchain={"path": str(tmp_path)})
    with pytest.raises(BuildError) as ei:
        b.prepare(src({"add.c": ADD}), "add")
    msg = str(ei.value)
    assert "gcc-riscv64-unknown-elf" in msg and "picolibc-riscv64-unknown-elf" in msg
    assert "P4JIT_TOOLCHAIN_PATH" in msg


def test_environment_overrides(monkeypatch, tmp_path):
    from p4jit.toolchain.config import load_config
    monkeypatch.setenv("P4JIT_CACHE_DIR", str(tmp_path / "envcache"))
    monkeypatch.setenv("P4JIT_OPTIMIZATION", "Os")
    monkeypatch.setenv("P4JIT_TOOLCHAIN_PREFIX", "riscv64-unknown-elf")
    cfg = load_config()
    assert cfg.get("cache", "dir") == str(tmp_path / "envcache")
    assert cfg.get("compiler", "optimization") == "Os"
    assert Builder().cache.root == tmp_path / "envcache"
    assert Builder().toolchain.prefix == "riscv64-unknown-elf"


# ---- introspection ------------------------------------------------------------------------


def test_introspection_outputs(builder, src, tmp_path, capsys):
    bo = build(builder, src({"add.c": ADD}), "add")
    bo.print_sections()
    bo.print_symbols()
    bo.print_memory_map()
    out = capsys.readouterr().out
    assert ".text" in out and "call_remote" in out and f"0x{ARGS + 124:08X}" in out
    text = bo.disassemble(output=tmp_path / "dis.txt")
    assert "<call_remote>:" in text and "return a + b;" in text
    assert (tmp_path / "dis.txt").read_text() == text
    bo.save_bin(tmp_path / "k.bin")
    bo.save_elf(tmp_path / "k.elf")
    bo.save_metadata(tmp_path / "k.json")
    assert (tmp_path / "k.bin").read_bytes() == bo.data
    import json
    assert json.loads((tmp_path / "k.json").read_text())["function"] == "add"
    assert bo.function_at(bo.entry_address + 2).name == "call_remote"
    assert bo.function_at(CODE - 4) is None


def test_espressif_toolchain_preferred_when_found(tmp_path, cache_dir):
    """auto: a riscv32-esp-elf-gcc in toolchain.path wins, with xesppie."""
    from p4jit.toolchain import find_toolchain
    from p4jit.toolchain.config import load_config

    fake_lib = tmp_path / "libgcc.a"
    fake_lib.write_bytes(b"!<arch>\n")
    libc = tmp_path / "libc.a"
    libc.write_bytes(b"!<arch>\n")
    gcc = tmp_path / "riscv32-esp-elf-gcc"
    gcc.write_text("#!/bin/sh\ncase \"$*\" in\n"
                   f"  *-print-libgcc-file-name*) echo {tmp_path}/13.2.0/libgcc.a ;;\n"
                   f"  *-print-file-name=*) echo {libc} ;;\nesac\n")
    gcc.chmod(0o755)
    (tmp_path / "13.2.0").mkdir()
    fake_lib.rename(tmp_path / "13.2.0" / "libgcc.a")
    cfg = load_config({"toolchain": {"path": str(tmp_path)}, "cache": {"dir": str(cache_dir)}})
    tc = find_toolchain(cfg, cache_dir)
    assert tc.profile == "espressif" and tc.prefix == "riscv32-esp-elf"
    assert "xesppie" in tc.march and tc.mabi == "ilp32f"
    assert tc.version == "13.2.0" and tc.libc == (str(libc), str(libc))
    assert tc.gcc == str(gcc)


def test_entry_function_written_in_assembly(builder, src):
    path = src({
        "decl.c": "int asm_mul3(int x);\n",
        "mul3.S": """
            .text
            .globl asm_mul3
            .type asm_mul3, @function
            asm_mul3:
                slli a1, a0, 1
                add a0, a0, a1
                ret
            .size asm_mul3, .-asm_mul3
        """,
    })
    prep = builder.prepare(path, "asm_mul3")
    assert [p.dtype for p in prep.signatures["asm_mul3"].params] == ["int32"]
    bo = builder.link(prep, CODE, ARGS)
    assert "asm_mul3" in bo.functions
