"""The pieces of the original API its t01 tutorial uses: the metadata in the
original's shape (next to ours), ``device.disconnect()``, the generated
wrapper, ``stats['code_size']`` and a disassembly written to a file."""
from __future__ import annotations

import numpy as np

from api_support import PORT, needs_device
from p4jit import MALLOC_CAP_8BIT, MALLOC_CAP_SPIRAM, P4JIT  # noqa: F401 - the tutorial's import

pytestmark = needs_device

ASM = """    .text
    .align 4
    .global vector_scale_asm
    .type vector_scale_asm, @function
vector_scale_asm:
    beqz    a2, .done
.loop:
    flw     ft0, 0(a0)
    fmul.s  ft0, ft0, fa0
    fsw     ft0, 0(a1)
    addi    a0, a0, 4
    addi    a1, a1, 4
    addi    a2, a2, -1
    bnez    a2, .loop
.done:
    ret
"""
ENTRY = """#include <stdint.h>
extern void vector_scale_asm(float* in, float* out, int len, float scale);
uint32_t process_audio(float* input, float* output, int32_t len, float gain) {
    vector_scale_asm(input, output, len, gain);
    return (uint32_t)len;
}
"""


def test_tutorial_01_flow(sources, tmp_path):
    path = sources(ENTRY, "audio_dsp.c", extra={"vector_ops.S": ASM})
    jit = P4JIT(port=PORT)
    before = jit.get_heap_stats(print_s=False)
    func = jit.load(source=path, function_name="process_audio", optimization="O3", use_firmware_elf=True)

    meta = func.binary.metadata
    assert meta["name"] == "process_audio"
    assert meta["return_type"] == "uint32_t"
    assert [(p["type"], p["name"], p["category"]) for p in meta["parameters"]] == [
        ("float *", "input", "pointer"), ("float *", "output", "pointer"),
        ("int32_t", "len", "value"), ("float", "gain", "value")]
    assert meta["addresses"] == {"code_base": f"0x{func.code_addr:08x}", "arg_base": f"0x{func.args_addr:08x}",
                                 "args_array_size": 32, "args_array_bytes": 128}
    assert meta["result"]["index"] == 31
    assert meta["function"] == "process_audio" and meta["entry_address"] == f"0x{func.entry_addr:08X}"
    assert func.stats["code_size"] == func.binary.total_size and func.stats["args_size"] == 128

    wrapper = func.binary.wrapper_source
    assert "call_remote:" in wrapper and "process_audio" in wrapper

    x = np.linspace(-1, 1, 480, dtype=np.float32)
    y = np.zeros_like(x)
    assert func(x, y, np.int32(480), np.float32(0.5)) == 480
    np.testing.assert_array_equal(y, x * np.float32(0.5))

    listing = tmp_path / "disassembly.txt"
    func.binary.disassemble(output=str(listing), source_intermix=False)
    assert "<vector_scale_asm>:" in listing.read_text()

    func.free()
    assert jit.get_heap_stats(print_s=False)["free_spiram"] == before["free_spiram"]
    jit.session.device.disconnect()
    assert jit.session.device.closed
    jit.close()
