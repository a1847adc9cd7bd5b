"""p4jit._core.elf_read: the libelf reader the build pipeline inspects ELFs with."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from toolchain_fixtures import builder, cache_dir, make_builder, rom_elf, src  # noqa: F401 (fixtures)

from p4jit import _core

CODE = 0x48010000
ARGS = 0x4FF00200


@pytest.fixture
def kernel(builder, src):
    path = src({"k.c": """
        static int counter[8];
        static const char msg[] = "p4jit";
        int bump(int i) { counter[i & 7] += msg[i % 5]; return counter[i & 7]; }
    """})
    return builder.link(builder.prepare(path, "bump"), CODE, ARGS)


def test_sections_symbols_and_image(kernel):
    info = _core.elf_read(kernel.elf_path)
    assert (info.elf_class, info.machine) == (32, 243)  # EM_RISCV
    assert info.entry == kernel.entry_address
    names = {s[0]: s for s in info.sections}
    text = names[".text"]
    assert text[1] == CODE and text[3] == "progbits" and text[4] == "AX"
    assert names[".bss"][3] == "nobits" and names[".bss"][4] == "WA"
    syms = {s[0]: s for s in info.symbols}
    assert syms["bump"][3:5] == ("func", "global") and syms["bump"][5] == ".text"
    assert syms["counter"][3:6] == ("object", "local", ".bss") and syms["counter"][2] == 32
    assert syms["p4jit_args"][1] == ARGS and syms["p4jit_args"][5] == "ABS"
    base, image = info.load_image()
    assert base == CODE
    assert image == kernel.data[:len(image)]
    assert info.section_data(".text") == image[:text[2]]
    bss = names[".bss"]
    assert info.section_data(".bss") == bytes(bss[2])
    assert info.function_at(syms["bump"][1] + 2)[0] == "bump"
    assert info.function_at(0) is None
    assert "ELF32" in repr(info)


def test_bytes_and_pathlike_inputs(kernel):
    a = _core.elf_read(Path(kernel.elf_path))
    b = _core.elf_read(Path(kernel.elf_path).read_bytes())
    c = _core.elf_read(bytearray(Path(kernel.elf_path).read_bytes()))
    assert a.sections == b.sections == c.sections and a.symbols == b.symbols


def test_host_elf64():
    info = _core.elf_read(sys.executable if Path(sys.executable).resolve().read_bytes()[:4] == b"\x7fELF"
                          else "/bin/sh")
    assert info.elf_class == 64 and len(info.sections) > 5


def test_errors(tmp_path, kernel):
    with pytest.raises(ValueError, match="not an ELF"):
        _core.elf_read(b"MZ\x90\x00" * 8)
    with pytest.raises(ValueError):
        _core.elf_read(b"")
    with pytest.raises(FileNotFoundError):
        _core.elf_read(tmp_path / "missing.elf")
    with pytest.raises(TypeError):
        _core.elf_read(12)
    data = Path(kernel.elf_path).read_bytes()
    with pytest.raises(ValueError):
        _core.elf_read(data[:64])  # header only: section table out of range
    info = _core.elf_read(kernel.elf_path)
    with pytest.raises(KeyError, match="no section named '.nope'"):
        info.section_data(".nope")
    with pytest.raises(TypeError):
        _core.ElfInfo()


def test_truncations_never_crash(kernel):
    data = Path(kernel.elf_path).read_bytes()
    for n in range(0, len(data), max(1, len(data) // 97)):
        try:
            info = _core.elf_read(data[:n])
            info.load_image()
        except ValueError:
            pass
