"""Real cross-compiled kernels on p4jit-sim: results, FPU, memory, the ROM
(printf, malloc, libm, cycle counter), faults, timeouts, determinism, CALL.

Every kernel is compiled here with Debian's riscv64-unknown-elf-gcc for the
address the device allocated (tests/sim_client.py: build_kernel/load_kernel).
"""
from __future__ import annotations

import struct

import pytest

from sim_client import (CAUSE_BREAKPOINT, CAUSE_ECALL_M, CAUSE_FETCH_ACCESS, CAUSE_ILLEGAL_INSN,
                        CAUSE_LOAD_ACCESS, CAUSE_MISALIGNED_LOAD, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS, CAUSE_TIMEOUT, ERR_FAULT,
                        ERR_TIMEOUT, MALLOC_CAP_INTERNAL, MALLOC_CAP_SPIRAM, PSRAM_BASE, ROM_BASE,
                        STACK_GUARD, STACK_TOP, DeviceError, SimClient, build_kernel, have_cross,
                        load_kernel, sim_paths)

pytestmark = pytest.mark.skipif(not have_cross(), reason="riscv64-unknown-elf-gcc not installed")

A0 = 10  # x10


@pytest.fixture(scope="module")
def dev():
    exe, rom = sim_paths()
    d = SimClient("--budget-ms", "400", exe=exe, rom=rom)
    yield d
    d.close()


def run(dev, source, **kw):
    return dev.exec(load_kernel(dev, source, **kw))


def fault_of(dev, entry, code=ERR_FAULT):
    with pytest.raises(DeviceError) as e:
        dev.exec(entry)
    assert e.value.code == code, e.value
    assert dev.ping(b"alive") == b"alive"  # the device keeps serving
    return e.value.fault


# ---- results ------------------------------------------------------------------------------


def test_integer_add(dev):
    assert run(dev, "ENTRY unsigned f(void){ volatile unsigned a = 40, b = 2; return a + b; }") == 42


def test_assembly_kernel(dev):
    src = """
    .section .text.entry
    .globl f
f:  li a0, 0x12345
    addi a0, a0, -5
    ret
"""
    assert run(dev, src, lang="S") == 0x12340


def test_float_math_uses_the_fpu(dev):
    src = """
ENTRY unsigned f(void){
    volatile float x = 1.5f, y = 2.25f;
    float r = x * y + x / y;            /* 3.375 + 0.6667 */
    r = __builtin_sqrtf(r * 100.0f);    /* fsqrt.s */
    return (unsigned)(r * 1000.0f);
}"""
    import math
    want = int(math.sqrt((1.5 * 2.25 + 1.5 / 2.25) * 100) * 1000)
    assert abs(run(dev, src) - want) <= 1


def test_memory_touching_kernel_sums_an_uploaded_array(dev):
    n = 10000
    data = struct.pack(f"<{n}i", *range(-5000, 5000))
    arr = dev.alloc(len(data), MALLOC_CAP_SPIRAM)
    dev.write(arr, data)
    src = f"""
ENTRY unsigned f(void){{
    const int *a = (const int *)0x{arr:08x};
    int s = 0;
    for (int i = 0; i < {n}; i++) s += a[i] * 3;
    ((int *)0x{arr:08x})[0] = s;        /* and write back */
    return (unsigned)s;
}}"""
    want = sum(range(-5000, 5000)) * 3
    assert run(dev, src) == want & 0xFFFFFFFF
    assert struct.unpack("<i", dev.read(arr, 4))[0] == want


def test_code_in_internal_ram(dev):
    assert run(dev, "ENTRY unsigned f(void){ return 77; }", caps=MALLOC_CAP_INTERNAL) == 77


def test_reuploaded_code_runs_new_code(dev):
    # Same address, same size, different instruction mix: no stale translation
    # or stale instruction count survives the WRITE_MEM (cache sync).
    addr = dev.alloc(256)
    first = build_kernel("ENTRY unsigned f(void){ return 1; }", addr)
    dev.write(addr, first)
    a0, _, _, _, n1, _ = dev.call(addr)
    assert a0 == 1
    src2 = ".section .text.entry\n.globl f\nf:\n c.li a0, 2\n c.nop\n c.nop\n ret\n"
    dev.write(addr, build_kernel(src2, addr, lang="S"))
    a0, _, _, _, n2, _ = dev.call(addr)
    assert (a0, n2) == (2, 4)


# Stores to RAM pages without translated code take Unicorn's inline fast path
# (sim_unicorn_fixes.c); a page that gets code must go back to the checked path,
# or a store that rewrites the code would leave a stale translation behind.
SMC_KERNEL = """
    .section .text.entry
    .globl f
f:  mv t6, ra
    li a1, 0x{page:08x}
    sw zero, 64(a1)        # first touch of the page is a store (fast TLB entry)
    li t0, 0x80824505      # c.li a0, 1 ; ret
    sw t0, 0(a1)
    jalr ra, 0(a1)         # translated here: the page now holds code
    mv t5, a0
    li t0, 0x80824509      # c.li a0, 2 ; ret
    sw t0, 0(a1)           # must drop the translation
    jalr ra, 0(a1)
    slli t5, t5, 4
    or a0, a0, t5
    mv ra, t6
    ret
"""


@pytest.mark.parametrize("caps", [MALLOC_CAP_SPIRAM, MALLOC_CAP_INTERNAL])
def test_device_code_rewriting_code_on_a_data_page(dev, caps):
    page = dev.alloc(4096, caps, 4096)
    entry = load_kernel(dev, SMC_KERNEL.format(page=page), lang="S")
    a0, _, _, _, n, _ = dev.call(entry)
    assert a0 == 0x12
    a0, _, _, _, n2, _ = dev.call(entry)  # again, with the page's TLB entry warm
    assert (a0, n2) == (0x12, n)
    dev.free(page)


def test_device_code_rewriting_code_on_its_own_page(dev):
    # The patched function sits right after the running one (same page).
    src = """
    .section .text.entry
    .globl f
f:  mv t6, ra
    call g
    mv t5, a0
    la a1, g
    li t0, 0x80824509      # c.li a0, 2 ; ret
    sw t0, 0(a1)
    call g
    slli t5, t5, 4
    or a0, a0, t5
    mv ra, t6
    ret
    .balign 4
g:  c.li a0, 1
    ret
"""
    assert run(dev, src, lang="S") == 0x12


def test_store_heavy_kernel_over_many_pages(dev):
    # Fast stores must still land in the memory the host reads back.
    n = 64 * 1024
    arr = dev.alloc(n * 4, MALLOC_CAP_SPIRAM)
    src = f"""
ENTRY unsigned f(void){{
    unsigned *a = (unsigned *)0x{arr:08x};
    for (unsigned i = 0; i < {n}; i++) a[i] = i * 2654435761u;
    unsigned s = 0;
    for (unsigned i = 0; i < {n}; i++) s += a[i] ^ i;
    return s;
}}"""
    want = sum(((i * 2654435761) & 0xFFFFFFFF) ^ i for i in range(n)) & 0xFFFFFFFF
    assert run(dev, src) == want
    got = struct.unpack(f"<{n}I", dev.read(arr, n * 4))
    assert got[:3] == (0, 2654435761, (2 * 2654435761) & 0xFFFFFFFF)
    assert got[-1] == ((n - 1) * 2654435761) & 0xFFFFFFFF
    dev.free(arr)


# ---- the ROM --------------------------------------------------------------------------------


def test_printf_malloc_libm_reach_stderr(dev):
    exe, rom = dev.exe, dev.rom
    with SimClient(exe=exe, rom=rom) as d:
        src = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
ENTRY unsigned f(void){
    char *p = malloc(64);
    if (!p) return 1;
    snprintf(p, 64, "sin(1)=%.4f", (double)sinf(1.0f));
    printf("[JIT] %s len=%u\n", p, (unsigned)strlen(p));
    puts("[JIT] puts");
    free(p);
    return 0;
}"""
        assert run(d, src, rom=rom) == 0
        d.close()
        err = d.stderr_text()
    assert "[JIT] sin(1)=0.8415 len=13\n" in err
    assert "[JIT] puts\n" in err


def test_console_events_after_console_ctl(dev):
    src = r"""
#include <stdio.h>
ENTRY unsigned f(void){ printf("line one\nline two %d\n", 2); printf("no newline"); return 5; }"""
    entry = load_kernel(dev, src, rom=dev.rom)
    assert dev.console_ctl(True) == 0
    dev.console.clear()
    assert dev.exec(entry) == 5
    assert b"".join(dev.console) == b"line one\nline two 2\nno newline"
    assert dev.console_ctl(False) == 1


def test_device_malloc_shows_in_heap_info(dev):
    src = """
#include <stdlib.h>
void *heap_caps_malloc(unsigned size, unsigned caps);
ENTRY unsigned f(void){ return (unsigned)heap_caps_malloc(100000, 1u << 10); }"""
    entry = load_kernel(dev, src, rom=dev.rom)
    before = dev.heap_info()
    ptr = dev.exec(entry)
    assert PSRAM_BASE <= ptr < PSRAM_BASE + (32 << 20)
    assert dev.heap_info()[0] == before[0] - 100000
    # Device memory is not the host's: it cannot be freed over the protocol.
    with pytest.raises(DeviceError):
        dev.free(ptr)


def test_cycle_counter_and_timer(dev):
    src = """
#include <stdint.h>
uint32_t esp_cpu_get_cycle_count(void);
int64_t esp_timer_get_time(void);
ENTRY unsigned f(void){
    uint32_t c0 = esp_cpu_get_cycle_count();
    volatile int x = 0;
    for (int i = 0; i < 36000; i++) x++;
    int64_t us = esp_timer_get_time();
    uint32_t c1 = esp_cpu_get_cycle_count();
    return (uint32_t)(us << 20) ^ (c1 - c0);
}"""
    entry = load_kernel(dev, src, rom=dev.rom)
    r1, r2 = dev.exec(entry), dev.exec(entry)
    assert r1 == r2  # deterministic
    cycles = r1 & 0xFFFFF
    assert 36000 * 4 < cycles < 36000 * 10
    assert (r1 >> 20) == cycles // 360 or (r1 >> 20) in (cycles // 360 - 1, cycles // 360 + 1)


def test_errno_from_the_rom_tls(dev):
    src = """
#include <errno.h>
#include <stdlib.h>
ENTRY unsigned f(void){
    errno = 0;
    long v = strtol("99999999999999", 0, 10);   /* overflows: ERANGE, in the ROM's TLS */
    return (v == 0x7fffffffL) ? (unsigned)errno : 0xBAD;
}"""
    import errno as host_errno
    src = src.replace("#include <errno.h>",
                      "#define __PICOLIBC_ERRNO_FUNCTION __errno\n#include <errno.h>")
    entry = load_kernel(dev, src, rom=dev.rom)
    assert dev.exec(entry) == host_errno.ERANGE


# ---- determinism, instret, CALL -------------------------------------------------------------


def test_rdcycle_rdinstret_are_deterministic(dev):
    src = """
ENTRY unsigned f(void){
    unsigned c0, c1, i0, i1, h;
    __asm__ volatile("rdcycle %0" : "=r"(c0));
    for (volatile int i = 0; i < 1000; i++) ;
    __asm__ volatile("rdinstret %0" : "=r"(i0));
    __asm__ volatile("nop\\n nop\\n nop");
    __asm__ volatile("rdinstret %0" : "=r"(i1));
    __asm__ volatile("rdcycle %0" : "=r"(c1));
    __asm__ volatile("rdcycleh %0" : "=r"(h));
    if (i1 - i0 != 4 || h != 0) return 0xBAD;
    return c1 - c0;
}"""
    entry = load_kernel(dev, src)
    results = {dev.exec(entry) for _ in range(3)}
    assert len(results) == 1
    (delta,) = results
    assert delta != 0xBAD and 5000 < delta < 20000
    a0, _, _, cycles, instret, _ = dev.call(entry)
    assert a0 == delta and cycles == instret and instret > delta


def test_batched_call(dev):
    src = """
ENTRY unsigned f(void){
    volatile unsigned *slots = (volatile unsigned *)ARGS;
    float x; unsigned u = slots[1];
    __builtin_memcpy(&x, &u, 4);
    slots[31] = slots[0] * 3;
    x = x * 2.0f; __builtin_memcpy(&u, &x, 4);
    slots[30] = u;
    return 99;
}"""
    args = dev.alloc(128, MALLOC_CAP_SPIRAM)
    entry = load_kernel(dev, src.replace("ARGS", f"0x{args:08x}"))
    out = dev.alloc(16)
    for k in (1, 7, 1000):
        a0, lo, hi, cycles, instret, reads = dev.call(
            entry, args, 0, writes=[(args, struct.pack("<If", k, 1.25)), (out, b"abcdefghij")],
            reads=[(args + 120, 8), (out, 10)])
        assert a0 == 99 and hi == 3 * k and struct.unpack("<f", struct.pack("<I", lo))[0] == 2.5
        assert reads[0] == struct.pack("<fI", 2.5, 3 * k) and reads[1] == b"abcdefghij"
        assert cycles == instret and 5 < instret < 100


# ---- faults -----------------------------------------------------------------------------------


def test_null_pointer_load(dev):
    entry = load_kernel(dev, "ENTRY unsigned f(void){ return *(volatile unsigned *)0; }")
    f = fault_of(dev, entry)
    assert f.cause == CAUSE_LOAD_ACCESS and f.pc == entry and f.tval == 0 and f.instret == 0


def test_null_pointer_store_with_registers(dev):
    src = """
    .section .text.entry
    .globl f
f:  li a0, 0x5151
    li a1, 0x10
    nop
    sw a0, 8(a1)
    ret
"""
    entry = load_kernel(dev, src, lang="S")
    f = fault_of(dev, entry)
    assert f.cause == CAUSE_STORE_ACCESS and f.tval == 0x18
    assert f.pc == entry + 10  # c.lui + addi (6), c.li (2), c.nop (2), then the sw
    assert f.regs[A0] == 0x5151 and f.regs[11] == 0x10 and f.regs[0] == 0
    assert f.regs[2] == STACK_TOP  # sp
    assert f.instret == 4  # c.lui, addi, c.li, c.nop


def test_wild_pointer_and_rom_write(dev):
    entry = load_kernel(dev, "ENTRY unsigned f(void){ return *(volatile unsigned *)0x90000010; }")
    f = fault_of(dev, entry)
    assert (f.cause, f.tval) == (CAUSE_LOAD_ACCESS, 0x90000010)
    # The ROM is read/execute: reading works, writing faults.
    rom_read = f"ENTRY unsigned f(void){{ return *(volatile unsigned *)0x{ROM_BASE:08x} != 0; }}"
    assert run(dev, rom_read) == 1
    src = f"""
    .section .text.entry
    .globl f
f:  li a1, 0x{ROM_BASE + 0x100:08x}
    li a0, 7
    sw a0, 0(a1)
    ret
"""
    entry = load_kernel(dev, src, lang="S")
    f = fault_of(dev, entry)
    assert f.cause == CAUSE_STORE_ACCESS and f.tval == ROM_BASE + 0x100
    assert f.pc == entry + 10  # lui + addi (8), c.li (2), then the sw


def test_jump_to_nowhere(dev):
    entry = load_kernel(dev, "ENTRY unsigned f(void){ return ((unsigned (*)(void))0x10)(); }")
    f = fault_of(dev, entry)
    assert f.cause == CAUSE_FETCH_ACCESS and f.pc == 0x10 and f.tval == 0x10
    assert f.regs[1] != 0  # ra: back into the kernel


def test_ebreak(dev):
    src = ".section .text.entry\n.globl f\nf:\n li a0, 3\n ebreak\n ret\n"
    entry = load_kernel(dev, src, lang="S")
    f = fault_of(dev, entry)
    assert f.cause == CAUSE_BREAKPOINT and f.pc == entry + 2 and f.regs[A0] == 3


def test_illegal_instruction(dev):
    src = ".section .text.entry\n.globl f\nf:\n li a0, 1\n .word 0x00000000\n ret\n"
    entry = load_kernel(dev, src, lang="S")
    f = fault_of(dev, entry)
    assert f.cause == CAUSE_ILLEGAL_INSN and f.pc == entry + 2 and f.tval == 0


def test_csr_write_to_read_only_counter_is_illegal(dev):
    src = ".section .text.entry\n.globl f\nf:\n csrw cycle, a0\n ret\n"
    entry = load_kernel(dev, src, lang="S")
    f = fault_of(dev, entry)
    assert f.cause == CAUSE_ILLEGAL_INSN and f.pc == entry


def test_ecall_from_device_code(dev):
    src = ".section .text.entry\n.globl f\nf:\n li a7, 93\n ecall\n ret\n"
    entry = load_kernel(dev, src, lang="S")
    f = fault_of(dev, entry)
    assert f.cause == CAUSE_ECALL_M and f.pc == entry + 4


def test_stack_overflow_hits_the_guard(dev):
    src = """
unsigned deep(unsigned n) {
    volatile unsigned pad[60];
    pad[n % 60] = n;
    return n ? deep(n - 1) + pad[n % 60] : 0;
}
ENTRY unsigned f(void){ return deep(100000); }"""
    entry = load_kernel(dev, src, opt="-O1")
    f = fault_of(dev, entry)
    assert f.cause == CAUSE_STORE_ACCESS
    assert STACK_GUARD <= f.tval < STACK_GUARD + 0x1000
    # INFO names the guard, so a host can say "stack overflow in <function>".
    regions = {name: (base, size) for name, base, size, _ in dev.info()["regions"]}
    assert regions["stack-guard"] == (STACK_GUARD, 0x1000)
    assert STACK_GUARD - 0x100 < f.regs[2] < STACK_GUARD + 0x1000  # sp at the guard


def test_abort_is_a_breakpoint_fault(dev):
    src = "#include <stdlib.h>\nENTRY unsigned f(void){ abort(); }"
    entry = load_kernel(dev, src, rom=dev.rom)
    f = fault_of(dev, entry)
    assert f.cause == CAUSE_BREAKPOINT and ROM_BASE <= f.pc < ROM_BASE + (1 << 24)


def test_infinite_loop_times_out_and_device_answers(dev):
    entry = load_kernel(dev, "ENTRY unsigned f(void){ for (;;) __asm__ volatile(\"\"); }")
    f = fault_of(dev, entry, ERR_TIMEOUT)  # --budget-ms 400 (how soon: make bench)
    assert f.cause == CAUSE_TIMEOUT and entry <= f.pc < entry + 16 and f.instret > 1_000_000
    # A per-call budget ends it too.
    with pytest.raises(DeviceError) as e:
        dev.call(entry, 0, 100)
    assert e.value.code == ERR_TIMEOUT and e.value.fault.cause == CAUSE_TIMEOUT
    assert dev.exec(load_kernel(dev, "ENTRY unsigned f(void){ return 8; }")) == 8


def test_wfi_does_not_hang(dev):
    src = ".section .text.entry\n.globl f\nf:\n li a0, 6\n wfi\n addi a0, a0, 1\n ret\n"
    assert run(dev, src, lang="S") == 7


def test_every_call_starts_from_a_clean_register_file(dev):
    dirty = """.section .text.entry
.globl f
f:  li t0, -1
    li s1, -1
    li a5, -1
    fcvt.s.w fa5, t0
    li t1, 1
    fsrm t1
    ret
"""
    probe = """.section .text.entry
.globl f
f:  or a0, t0, s1
    or a0, a0, a5
    fmv.x.w t2, fa5
    or a0, a0, t2
    frcsr t2
    or a0, a0, t2
    ret
"""
    dev.exec(load_kernel(dev, dirty, lang="S"))
    assert dev.exec(load_kernel(dev, probe, lang="S")) == 0


@pytest.mark.parametrize("insn, cause", [("amoadd.w a0, a0, (a1)", CAUSE_MISALIGNED_STORE),
                                         ("amoswap.w a0, a0, (a1)", CAUSE_MISALIGNED_STORE),
                                         ("lr.w a0, (a1)", CAUSE_MISALIGNED_LOAD)])
def test_misaligned_amo_is_a_store_fault_and_lr_a_load_fault(dev, insn, cause):
    src = f"""
    .section .text.entry
    .globl f
f:  addi a1, sp, -6
    li a0, 1
    {insn}
    ret
"""
    entry = load_kernel(dev, src, lang="S")
    f = fault_of(dev, entry)
    assert f.cause == cause and f.tval == STACK_TOP - 6
    assert f.pc == entry + 6  # addi (4), c.li (2), then the atomic
