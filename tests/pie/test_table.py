"""The PIE instruction table and everything generated from it.

Golden words come from Espressif's LLVM MC tests (tests/pie/golden_words.txt
cites them). The assembler macros are checked by assembling every golden line
with the real cross toolchain and comparing the bytes.
"""
from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest

from p4jit.toolchain.pie import table as pt
from p4jit.toolchain.pie.generate import C_DECODER_PATH, c_decoder_text, macros_text

HERE = Path(__file__).resolve().parent
GOLDEN = [(asm.strip(), int(word, 16))
          for asm, word in (line.split("|") for line in (HERE / "golden_words.txt").read_text().splitlines()
                            if line and not line.startswith("#"))]


def _args(asm: str):
    mnem, _, ops = asm.partition(" ")
    return mnem, [o.strip() for o in ops.split(",")] if ops.strip() else []


def test_every_table_entry_has_a_golden_word_or_is_listed_without():
    golden = {_args(a)[0] for a, _ in GOLDEN}
    # esp.lp.endi has no line in the MC tests: its layout is lp.starti's with bit 12 set
    assert set(pt.load_table()) - golden == {"esp.lp.endi"}
    assert pt.encode("esp.lp.endi", [0, 0]) == pt.encode("esp.lp.starti", [0, 0]) | (1 << 12)


@pytest.mark.parametrize("asm,word", GOLDEN, ids=[a for a, _ in GOLDEN])
def test_encoding_matches_golden_word(asm, word):
    mnem, args = _args(asm)
    assert pt.encode(mnem, args) == word
    insn, vals = pt.decode(word)
    assert insn.mnemonic == mnem
    assert pt.encode(mnem, vals) == word


def test_disassembly_labels_read_back_as_written():
    for asm, word in GOLDEN:
        if "lp." in asm:
            continue
        assert pt.format_insn(word).replace(" ", "") == asm.replace(" ", "")


def test_bad_operands_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="x8-x15"):
        pt.encode("esp.vld.128.ip", ["q0", "t0", 16])
    with pytest.raises(ValueError, match="multiple of 16"):
        pt.encode("esp.vld.128.ip", ["q0", "a0", 8])
    with pytest.raises(ValueError, match="q0..q7"):
        pt.encode("esp.vld.128.ip", [9, "a0", 16])


def test_generated_decoder_is_up_to_date():
    assert C_DECODER_PATH.read_text() == c_decoder_text(), \
        "firmware/sim/pie/pie_decode_gen.h is stale: python -m p4jit.toolchain.pie.generate"


def _toolchain():
    from p4jit.toolchain import Builder
    try:
        return Builder().toolchain
    except Exception:
        pytest.skip("no RISC-V cross compiler")


def test_macros_assemble_every_golden_line_byte_for_byte(tmp_path):
    tc = _toolchain()
    lines = [".text"]
    for asm, _ in GOLDEN:
        if asm.startswith(("esp.lp.setup ", "esp.lp.setupi ", "esp.lp.starti ")):
            asm = "1: " + asm.rsplit(",", 1)[0] + ", 1b"  # a label on itself: offset 0
        lines.append(asm)
    (tmp_path / "g.S").write_text("\n".join(lines) + "\n")
    (tmp_path / "m.s").write_text(macros_text())
    march = tc.march.replace("_xesppie", "")
    subprocess.run([tc.gcc, f"-march={march}", f"-mabi={tc.mabi}", "-mno-relax", "-c",
                    f"-Wa,{tmp_path / 'm.s'}", "g.S", "-o", "g.o"], cwd=tmp_path, check=True)
    subprocess.run([tc.tool("objcopy"), "-O", "binary", "-j", ".text", "g.o", "g.bin"], cwd=tmp_path,
                   check=True)
    data = (tmp_path / "g.bin").read_bytes()
    assert list(struct.unpack(f"<{len(data) // 4}I", data)) == [w for _, w in GOLDEN]


def test_macros_reject_a_register_pie_cannot_encode(tmp_path):
    tc = _toolchain()
    (tmp_path / "m.s").write_text(macros_text())
    (tmp_path / "bad.S").write_text(".text\nesp.vld.128.ip q0, t0, 16\n")
    r = subprocess.run([tc.gcc, f"-march={tc.march.replace('_xesppie', '')}", f"-mabi={tc.mabi}",
                        "-mno-relax", "-c", f"-Wa,{tmp_path / 'm.s'}", "bad.S", "-o", "bad.o"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode != 0
    assert re.search(r"register t0 cannot be encoded: PIE instructions take x8-x15", r.stderr)


def test_virtual_device_advertises_pie_and_the_table_version():
    from pie_support import PORT, _sim_built
    if not PORT.startswith("sim") or not _sim_built():
        pytest.skip("the virtual device's INFO")
    from p4jit import P4JIT, _core
    with P4JIT(port=PORT) as jit:
        info = jit.device.info
        assert info.has(_core.P4_CAP_PIE)
        assert info.pie_isa == pt.ISA_VERSION == 1
