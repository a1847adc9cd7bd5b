"""Session hygiene on the virtual device: what kernels malloc'ed is reclaimed
by FREE_ALL, a bad free() is reported with the call, the ROM's .data/.bss is
restored for a clean session. (The stack guard's INFO region: test_sim_exec.py.)

Raw protocol (tests/sim_client.py) and real cross-compiled kernels.
"""
from __future__ import annotations

import struct

import pytest

from sim_client import CALL, CAP_SESSION_HEAP, FREE_ALL, SimClient, have_cross, load_kernel, sim_paths

pytestmark = pytest.mark.skipif(not have_cross(), reason="riscv64-unknown-elf-gcc not installed")


@pytest.fixture
def dev():
    exe, rom = sim_paths()
    d = SimClient(exe=exe, rom=rom)
    yield d
    d.close()


def free_all(dev):
    """(host count, host bytes, kernel count, kernel bytes)."""
    return struct.unpack("<4I", dev.request(FREE_ALL))


def test_info_advertises_the_session_heap(dev):
    assert dev.info()["caps"] & CAP_SESSION_HEAP


def test_free_all_reclaims_what_kernels_leaked(dev):
    rom = dev.rom
    src = """#include <stdlib.h>
#include <string.h>
char *volatile kept[2];                /* so the compiler keeps the mallocs */
ENTRY unsigned f(void){
    kept[0] = malloc(5 << 20);         /* PSRAM */
    kept[1] = malloc(100);             /* internal */
    char *volatile gone = malloc(64);
    free(gone);                        /* freed by the kernel: not counted */
    memset(kept[0], 1, 5 << 20);
    return kept[0] != 0 && kept[1] != 0;
}"""
    entry = load_kernel(dev, src, rom=rom, size=8192)
    before = dev.heap_info()
    assert dev.exec(entry) == 1
    during = dev.heap_info()
    assert before[0] - during[0] >= 5 << 20
    host_count, host_bytes, kernel_count, kernel_bytes = free_all(dev)
    assert (host_count, host_bytes) == (1, 8192)
    assert kernel_count == 2 and (5 << 20) + 100 <= kernel_bytes < (5 << 20) + 100 + 256
    after = dev.heap_info()
    assert after[0] == before[0] + 8192 and after[2] == before[2]
    assert free_all(dev) == (0, 0, 0, 0)


def test_bad_free_is_reported_with_the_call_and_ignored(dev):
    rom = dev.rom
    host_block = dev.alloc(256)
    dev.write(host_block, b"\x5a" * 256)
    src = f"""#include <stdlib.h>
ENTRY unsigned f(void){{
    free((void *)0x{host_block:08x});  /* a host allocation */
    free((void *)0x48000004);           /* and a wild pointer: only the first is named */
    free(0);                            /* legal */
    return 3;
}}"""
    entry = load_kernel(dev, src, rom=rom, size=4096)
    p = struct.pack("<3I2H", entry, 0, 0, 0, 0)
    reply = dev.request(CALL, p)
    a0, _, _, bad_free = struct.unpack_from("<4I", reply)
    assert (a0, bad_free) == (3, host_block)
    assert dev.read(host_block, 256) == b"\x5a" * 256  # still allocated, untouched
    clean = load_kernel(dev, "ENTRY unsigned f(void){ return 1; }")
    reply = dev.request(CALL, struct.pack("<3I2H", clean, 0, 0, 0, 0))
    assert struct.unpack_from("<4I", reply)[3] == 0  # per call


def test_free_all_restores_the_roms_data(dev):
    rom = dev.rom
    say = load_kernel(dev, '#include <stdio.h>\nENTRY unsigned f(void){ return printf("%d", 42); }',
                      rom=rom, size=8192)
    wreck = load_kernel(dev, """
ENTRY unsigned f(void){
    volatile unsigned *p = (volatile unsigned *)0x4FF00000;  /* the ROM's .data/.bss */
    for (unsigned i = 0; i < 0xF000 / 4; i++) p[i] = 0xA5A5A5A5u;
    return 0;
}""")
    assert dev.exec(say) == 2
    assert dev.exec(wreck) == 0
    assert dev.exec(say) == 0xFFFFFFFF  # printf's state is gone: EOF
    free_all(dev)
    say = load_kernel(dev, '#include <stdio.h>\nENTRY unsigned f(void){ return printf("%d", 42); }',
                      rom=rom, size=8192)
    assert dev.exec(say) == 2
