"""The generated wrappers against the real calling convention: kernels run in
Unicorn (libunicorn, through ctypes) and record the arguments they received.

Covers narrow integers (sign/zero extension from a slot with garbage in its
upper bytes), floats beyond fa7 (into a-registers, then the stack), 64-bit
values in register pairs, split across a7 and the stack, and on the stack,
and every return kind."""
from __future__ import annotations

import ctypes
import ctypes.util
import struct

import pytest

from toolchain_fixtures import builder, cache_dir, make_builder, rom_elf, src  # noqa: F401 (fixtures)

CODE = 0x48000000
ARGS = 0x4FF00000
STACK = 0x4FE00000
STACK_SIZE = 0x10000
RET_MAGIC = STACK  # a mapped address nothing jumps to but the wrapper's ret

UC_ARCH_RISCV, UC_MODE_RISCV32, UC_PROT_ALL = 8, 4, 7
REG_X0, REG_MSTATUS = 1, 116


def _load_unicorn():
    name = ctypes.util.find_library("unicorn") or "libunicorn.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.uc_open.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p)]
    lib.uc_mem_map.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_size_t, ctypes.c_uint32]
    lib.uc_mem_write.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t]
    lib.uc_mem_read.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t]
    lib.uc_reg_write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.uc_reg_read.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.uc_emu_start.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64,
                                 ctypes.c_size_t]
    lib.uc_close.argtypes = [ctypes.c_void_p]
    return lib


UC = _load_unicorn()
pytestmark = pytest.mark.skipif(UC is None, reason="libunicorn not installed (apt install libunicorn-dev)")


def _check(err: int, what: str) -> None:
    assert err == 0, f"unicorn {what} failed with error {err}"


def run(bo, slots, rec_words=0):
    """Run bo's entry with the 32 slot words; return (a0, slots after, the
    first rec_words words of the kernel's global ``rec``)."""
    uc = ctypes.c_void_p()
    _check(UC.uc_open(UC_ARCH_RISCV, UC_MODE_RISCV32, ctypes.byref(uc)), "open")
    try:
        size = (bo.total_size + 0xFFF) & ~0xFFF
        _check(UC.uc_mem_map(uc, CODE, size, UC_PROT_ALL), "map code")
        _check(UC.uc_mem_map(uc, ARGS, 0x1000, UC_PROT_ALL), "map args")
        _check(UC.uc_mem_map(uc, STACK, STACK_SIZE, UC_PROT_ALL), "map stack")
        _check(UC.uc_mem_write(uc, CODE, bo.data, len(bo.data)), "write code")
        raw = struct.pack("<32I", *slots)
        _check(UC.uc_mem_write(uc, ARGS, raw, len(raw)), "write args")
        for reg, val in ((REG_X0 + 1, RET_MAGIC), (REG_X0 + 2, STACK + STACK_SIZE - 64),
                         (REG_MSTATUS, 0x6000)):  # ra, sp, FS=dirty (FPU on)
            v = ctypes.c_uint64(val)
            _check(UC.uc_reg_write(uc, reg, ctypes.byref(v)), "reg write")
        _check(UC.uc_emu_start(uc, bo.entry_address, RET_MAGIC, 0, 100000), "emu_start")
        a0 = ctypes.c_uint64(0)
        UC.uc_reg_read(uc, REG_X0 + 10, ctypes.byref(a0))

        def read(addr, n):
            buf = ctypes.create_string_buffer(n)
            _check(UC.uc_mem_read(uc, addr, buf, n), "read")
            return buf.raw

        after = struct.unpack("<32I", read(ARGS, 128))
        rec = []
        if rec_words:
            sym = next(s for s in bo.symbols if s.name == "rec")
            rec = list(struct.unpack(f"<{rec_words}I", read(sym.address, 4 * rec_words)))
        return a0.value & 0xFFFFFFFF, after, rec
    finally:
        UC.uc_close(uc)


def f32(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def words64(fmt, x):
    return list(struct.unpack("<2I", struct.pack("<" + fmt, x)))


def build(builder, src, code, name="f"):
    path = src({"k.c": "#include <stdint.h>\n#include <string.h>\n"
                       "uint32_t rec[48];\n"
                       "#define PUT(i, v) do { __typeof__(v) t_ = (v); memcpy(&rec[i], &t_, sizeof t_); } while (0)\n"
                       + code})
    return builder.link(builder.prepare(path, name, use_firmware_elf=False), CODE, ARGS)


def test_narrow_integers_are_extended(builder, src):
    bo = build(builder, src, """
        int32_t f(int8_t a, uint8_t b, int16_t c, uint16_t d, _Bool e, char g, int32_t h, uint32_t i) {
            PUT(0, (int32_t)a); PUT(1, (uint32_t)b); PUT(2, (int32_t)c); PUT(3, (uint32_t)d);
            PUT(4, (int32_t)e); PUT(5, (uint32_t)g); PUT(6, h); PUT(7, i);
            return a + c;
        }
    """)
    garbage = 0xABCDEF00
    slots = [0] * 32
    slots[0] = garbage | 0xFE          # int8 -2
    slots[1] = garbage | 0xFE          # uint8 254
    slots[2] = 0xABCD0000 | 0x8001     # int16 -32767
    slots[3] = 0xABCD0000 | 0x8001     # uint16 32769
    slots[4] = garbage | 0x01          # bool true
    slots[5] = garbage | 0xC8          # char (unsigned) 200
    slots[6] = 0xFFFFFFF6              # -10
    slots[7] = 0xDEADBEEF
    a0, after, rec = run(bo, slots, 8)
    assert a0 == 0
    assert rec == [0xFFFFFFFE, 254, (-32767) & 0xFFFFFFFF, 32769, 1, 200,
                                     0xFFFFFFF6, 0xDEADBEEF]
    assert after[31] == (-2 - 32767) & 0xFFFFFFFF


def test_floats_spill_to_integer_registers_then_stack(builder, src):
    params = ", ".join(f"float f{i}" for i in range(10)) + ", " + \
        ", ".join(f"int i{i}" for i in range(8)) + ", float f10, int i8"
    body = " ".join(f"PUT({i}, f{i});" for i in range(10)) + " " + \
        " ".join(f"PUT({10 + i}, i{i});" for i in range(8)) + " PUT(18, f10); PUT(19, i8);"
    bo = build(builder, src, f"float f({params}) {{ {body} return f0 + f9 + f10; }}\n")
    sig = bo.signature
    assert [p.slot for p in sig.params] == list(range(20))
    fl = [1.5 * (i + 1) for i in range(10)]
    ints = [100 + i for i in range(8)]
    slots = [f32(x) for x in fl] + ints + [f32(-7.25), 4242] + [0] * 12
    _, after, rec = run(bo, slots, 20)
    assert rec == slots[:20]
    assert struct.unpack("<f", struct.pack("<I", after[31]))[0] == pytest.approx(1.5 + 15.0 - 7.25)


def test_64bit_pairs_split_and_stack(builder, src):
    bo = build(builder, src, """
        double f(int a, int64_t b, double c, int d, int e, int64_t g, int64_t h, float x, uint64_t u) {
            PUT(0, a); PUT(1, b); PUT(3, c); PUT(5, d); PUT(6, e); PUT(7, g); PUT(9, h); PUT(11, x);
            PUT(12, u);
            return c * 2.0;
        }
    """)
    sig = bo.signature
    assert [p.slot for p in sig.params] == [0, 1, 3, 5, 6, 7, 9, 11, 12]
    # a0=a, a1a2=b, a3a4=c, a5=d, a6=e, a7+stack=g, stack(8-aligned)=h, fa0=x, stack=u
    slots = ([7] + words64("q", -123456789012345) + words64("d", 3.25) + [11, 12]
             + words64("q", 0x1122334455667788) + words64("q", -2) + [f32(0.5)]
             + words64("Q", 0xF0E0D0C0B0A09080))
    slots += [0] * (32 - len(slots))
    _, after, rec = run(bo, slots, 14)
    assert rec == slots[:14]
    assert [after[30], after[31]] == words64("d", 6.5)


@pytest.mark.parametrize("ret,expr,expect", [
    ("uint64_t", "0x0102030405060708ull", words64("Q", 0x0102030405060708)),
    ("int64_t", "-3", words64("q", -3)),
    ("int8_t", "-3", [0, 0xFFFFFFFD]),
    ("_Bool", "2", [0, 1]),
    ("uint16_t", "0xFFFF", [0, 0xFFFF]),
    ("uint32_t *", "&rec[3]", None),
])
def test_returns(builder, src, ret, expr, expect):
    bo = build(builder, src, f"{ret} f(void) {{ return {expr}; }}\n")
    _, after, _ = run(bo, [0] * 32)
    if expect is None:
        rec = next(s for s in bo.symbols if s.name == "rec")
        assert after[31] == rec.address + 12
    else:
        assert [after[30], after[31]] == expect


def test_void_function_and_module_entries(builder, src):
    path = src({"m.c": "static int state;\nvoid init(int v) { state = v * 3; }\n"
                       "int get(void) { return state; }\n"})
    bo = builder.link(builder.prepare(path, ["init", "get"], use_firmware_elf=False), CODE, ARGS)
    slots = [5] + [0x77777777] * 31
    a0, after, _ = run(bo, slots)
    assert a0 == 0 and after[31] == 0x77777777  # void: slot 31 untouched
    # state lives in .bss, which this fresh emulator zeroed; run get() after init()
    # in one emulator instance is the runtime's business; here get() alone sees 0.
    bo_get = type(bo)(data=bo.data, base_address=bo.base_address, args_address=bo.args_address,
                      entry_points={"get": bo.entry("get")}, signatures={"get": bo.signatures["get"]},
                      sections=bo.sections, symbols=bo.symbols)
    _, after, _ = run(bo_get, [0] * 32)
    assert after[31] == 0


ROM_BASE = 0x40000000

FAKE_ROM = r"""
#include <stddef.h>
#include <stdarg.h>
static char heap[256];
static size_t used;
int printed;
void *malloc(size_t n) { void *p = heap + used; used += (n + 7) & ~(size_t)7; return p; }
void free(void *p) { (void)p; }
size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
void *memset(void *d, int c, size_t n) { char *p = d; while (n--) *p++ = (char)c; return d; }
int printf(const char *fmt, ...) { printed++; return (int)strlen(fmt); }
"""


def _link_fake_rom(builder, tmp_path):
    """A stand-in firmware ELF at ROM_BASE, built with the same toolchain."""
    from p4jit.toolchain._common import run_tool

    tc = builder.toolchain
    (tmp_path / "rom").mkdir()
    c = tmp_path / "rom" / "rom.c"
    c.write_text(FAKE_ROM)
    ld = tmp_path / "rom" / "rom.ld"
    ld.write_text(f"SECTIONS {{ . = 0x{ROM_BASE:08X}; .text : {{ *(.text*) }} "
                  ".rodata : { *(.rodata*) } .data : { *(.data* .sdata*) } .bss : { *(.bss* .sbss* COMMON) } }\n")
    elf = tmp_path / "rom" / "rom.elf"
    code, out = run_tool([tc.gcc, *tc.arch_flags, "-O2", "-fno-builtin", "-fno-tree-loop-distribute-patterns", "-nostdlib", "-mno-relax",
                          *(f"-isystem{d}" for d in tc.include_dirs), f"-Wl,-T,{ld}", "-Wl,--no-relax",
                          "-Wl,--no-warn-rwx-segments", str(c), "-o", str(elf)], None)
    assert code == 0, out
    return elf


def test_symbol_bridge_calls_the_firmware(builder, src, tmp_path):
    """Kernel calls malloc/strlen/printf resolved with -R against a firmware ELF;
    runs with that firmware mapped at its address."""
    from p4jit import _core

    rom = _link_fake_rom(builder, tmp_path)
    path = src({"k.c": """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        int use_fw(int n) {
            char *p = malloc(16);
            for (int i = 0; i < n; i++) p[i] = 'a';
            p[n] = 0;
            int len = (int)strlen(p);
            printf("len=%d\\n", len);
            free(p);
            return len * 10;
        }
    """})
    bo = builder.link(builder.prepare(path, "use_fw", firmware_elf=rom), CODE, ARGS)
    assert "malloc" not in bo.functions and "strlen" not in bo.functions
    rom_info = _core.elf_read(str(rom))
    rom_base, rom_image = rom_info.load_image()
    assert rom_base == ROM_BASE

    uc = ctypes.c_void_p()
    _check(UC.uc_open(UC_ARCH_RISCV, UC_MODE_RISCV32, ctypes.byref(uc)), "open")
    try:
        _check(UC.uc_mem_map(uc, ROM_BASE, 0x10000, UC_PROT_ALL), "map rom")
        _check(UC.uc_mem_write(uc, ROM_BASE, rom_image, len(rom_image)), "write rom")
        _check(UC.uc_mem_map(uc, CODE, 0x10000, UC_PROT_ALL), "map code")
        _check(UC.uc_mem_write(uc, CODE, bo.data, len(bo.data)), "write code")
        _check(UC.uc_mem_map(uc, ARGS, 0x1000, UC_PROT_ALL), "map args")
        _check(UC.uc_mem_write(uc, ARGS, struct.pack("<I", 5), 4), "write args")
        _check(UC.uc_mem_map(uc, STACK, STACK_SIZE, UC_PROT_ALL), "map stack")
        for reg, val in ((REG_X0 + 1, RET_MAGIC), (REG_X0 + 2, STACK + STACK_SIZE - 64), (REG_MSTATUS, 0x6000)):
            v = ctypes.c_uint64(val)
            _check(UC.uc_reg_write(uc, reg, ctypes.byref(v)), "reg write")
        _check(UC.uc_emu_start(uc, bo.entry_address, RET_MAGIC, 0, 100000), "emu_start")
        buf = ctypes.create_string_buffer(4)
        _check(UC.uc_mem_read(uc, ARGS + 124, buf, 4), "read ret")
        assert struct.unpack("<I", buf.raw)[0] == 50
        printed = next(s for s in rom_info.symbols if s[0] == "printed")[1]
        _check(UC.uc_mem_read(uc, printed, buf, 4), "read printed")
        assert struct.unpack("<I", buf.raw)[0] == 1
    finally:
        UC.uc_close(uc)
