"""Generated sources: the argument-slot wrappers and the linker script.

Both are pure functions of their inputs (text in, text out) and are written
only into the build cache.

Wrapper (v1 ABI, generated as assembly): ``int call_remote(void)`` reads parameter *i* from slot
*i* of the 32-slot args buffer ``p4jit_args`` (an absolute symbol the linker
script places at the args address), calls the entry function, stores the
return value in slot 31 (a 64-bit one in slots 30-31, low word first) and
returns 0. A module build gets one ``call_remote_<name>`` per entry function,
all sharing the buffer.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, List, Sequence, Tuple

from ..signature import SCALAR_TYPES

if TYPE_CHECKING:  # pragma: no cover - the parser is imported only when a signature is read
    from .cparse import EntryInfo

__all__ = ["ARGS_SYMBOL", "END_SYMBOL", "wrapper_symbol", "wrapper_source", "linker_script",
           "WRAPPER_VERSION"]

#: bump when the generated text changes, so cached builds are not reused
WRAPPER_VERSION = 2
ARGS_SYMBOL = "p4jit_args"
END_SYMBOL = "__p4jit_end"


def wrapper_symbol(name: str, single: bool) -> str:
    """Entry symbol of the wrapper for ``name``: ``call_remote`` for a
    single-function load (as the original), ``call_remote_<name>`` in a module."""
    return "call_remote" if single else f"call_remote_{name}"


# ---- the ilp32f calling convention, for the parameters the slots carry ----------------
#
# RISC-V psABI, ilp32f (FLEN = 32): integer-class scalars and pointers go in
# a0-a7, then on the stack (4 bytes each); float goes in fa0-fa7, then in a
# free a-register, then on the stack; 64-bit scalars (and double, wider than
# FLEN) take a pair a(n), a(n+1) (low word first, no even-register rule for
# named arguments), or split a7 + stack, or an 8-aligned stack pair. Scalars
# narrower than 32 bits are sign/zero-extended: the loads below do it.

INT_ARG_REGS = tuple(f"a{i}" for i in range(8))
FLOAT_ARG_REGS = tuple(f"fa{i}" for i in range(8))
# Which load/store instruction a type takes is the scalar type table's
# (p4jit._core.SCALAR_TYPES): flw/fsw mark float32, slots == 2 the 64-bit types.


def _place_args(params) -> Tuple[List[Tuple[str, str, int]], List[Tuple[str, int, int]], int]:
    """Assign each parameter's words to registers or stack.

    Returns (register loads [(insn, reg, slot)], stack words [(load insn, slot,
    sp offset)], stack bytes used)."""
    loads: List[Tuple[str, str, int]] = []
    stack: List[Tuple[str, int, int]] = []
    ni = nf = 0
    sp = 0
    for p in params:
        t = SCALAR_TYPES[p.dtype] if p.kind == "scalar" else None
        wide = t is not None and t.slots == 2
        if t is not None and t.load == "flw":
            if nf < 8:
                loads.append(("flw", FLOAT_ARG_REGS[nf], p.slot))
                nf += 1
            elif ni < 8:
                loads.append(("lw", INT_ARG_REGS[ni], p.slot))
                ni += 1
            else:
                stack.append(("lw", p.slot, sp))
                sp += 4
        elif wide:
            if ni <= 6:
                loads.append(("lw", INT_ARG_REGS[ni], p.slot))
                loads.append(("lw", INT_ARG_REGS[ni + 1], p.slot + 1))
                ni += 2
            elif ni == 7:
                loads.append(("lw", INT_ARG_REGS[7], p.slot))
                ni = 8
                stack.append(("lw", p.slot + 1, sp))
                sp += 4
            else:
                sp = (sp + 7) // 8 * 8
                stack.append(("lw", p.slot, sp))
                stack.append(("lw", p.slot + 1, sp + 4))
                sp += 8
        else:
            insn = "lw" if t is None else t.load
            if ni < 8:
                loads.append((insn, INT_ARG_REGS[ni], p.slot))
                ni += 1
            else:
                # a narrower scalar on the stack is still a widened 32-bit word
                stack.append((insn, p.slot, sp))
                sp += 4
    return loads, stack, sp


def _wrapper_asm(sig, sym: str) -> List[str]:
    """One wrapper in assembly: no compiler needed to build it."""
    loads, stack, stack_bytes = _place_args(sig.params)
    frame = (stack_bytes + 8 + 15) // 16 * 16
    out = [
        f"/* {sig.ret_c_type} {sig.name}({', '.join(p.c_type for p in sig.params) or 'void'}) */",
        f'    .section .text.{sym},"ax",@progbits',
        f"    .globl {sym}",
        f"    .type {sym}, @function",
        "    .p2align 1",
        f"{sym}:",
        f"    addi sp, sp, -{frame}",
        f"    sw ra, {frame - 4}(sp)",
        f"    sw s0, {frame - 8}(sp)",
        f"    lui s0, %hi({ARGS_SYMBOL})",
        f"    addi s0, s0, %lo({ARGS_SYMBOL})",
    ]
    for insn, slot, off in stack:  # stack words first, through t0
        out.append(f"    {insn} t0, {4 * slot}(s0)")
        out.append(f"    sw t0, {off}(sp)")
    for insn, reg, slot in loads:
        out.append(f"    {insn} {reg}, {4 * slot}(s0)")
    out.append(f"    call {sig.name}")
    rs = sig.ret_slot
    if rs is not None:
        t = SCALAR_TYPES[sig.ret_dtype] if sig.ret_kind == "scalar" else SCALAR_TYPES["uint32"]
        regs = ("fa0",) if t.store == "fsw" else ("a0", "a1")[:t.slots]
        for k, reg in enumerate(regs):
            out.append(f"    {t.store} {reg}, {4 * (rs + k)}(s0)")
    out += [
        f"    lw ra, {frame - 4}(sp)",
        f"    lw s0, {frame - 8}(sp)",
        f"    addi sp, sp, {frame}",
        "    li a0, 0",
        "    ret",
        f"    .size {sym}, .-{sym}",
        "",
    ]
    return out


def wrapper_source(entries: Sequence[EntryInfo]) -> str:
    """Assembly source (``.s``) of the wrappers for ``entries``.

    Assembly, not C, so that the pass-1 link needs no compiler run (it
    assembles this in the same gcc process): the wrapper is pure data movement
    between slots and the ilp32f argument registers."""
    single = len(entries) == 1
    out = ["/* Generated by p4jit (build cache only): argument-slot wrappers, ABI v1. */",
           "    .option nopic", "    .option norelax", ""]
    for e in entries:
        out += _wrapper_asm(e.signature, wrapper_symbol(e.signature.name, single))
    return "\n".join(out)


def linker_script(code_addr: int, args_addr: int, entry_symbols: Iterable[str]) -> str:
    """Linker script placing everything in one block from ``code_addr``:
    .text (wrappers first), .rodata, .data, .bss; ``p4jit_args`` at
    ``args_addr``; ``__p4jit_end`` at the 16-aligned end."""
    syms = list(entry_symbols)
    keep = " ".join(f"*(.text.{s})" for s in syms)
    return f"""/* Generated by p4jit: one contiguous block at the allocated address. */
ENTRY({syms[0]})
{''.join(f'EXTERN({s})' + chr(10) for s in syms)}
SECTIONS
{{
  . = 0x{code_addr:08X};
  .text : ALIGN(4)
  {{
    {keep}
    *(.text.unlikely .text.unlikely.*)
    *(.text.startup .text.startup.*)
    *(.text.hot .text.hot.*)
    *(.text .text.* .gnu.linkonce.t.*)
  }}
  .rodata : ALIGN(4)
  {{
    *(.srodata.cst16) *(.srodata.cst8) *(.srodata.cst4) *(.srodata.cst2)
    *(.srodata .srodata.* .rodata .rodata.* .gnu.linkonce.r.*)
  }}
  .init_array : ALIGN(4)
  {{
    KEEP(*(.preinit_array)) KEEP(*(SORT_BY_INIT_PRIORITY(.init_array.*) .init_array .ctors .ctors.*))
  }}
  .data : ALIGN(4)
  {{
    *(.data .data.* .gnu.linkonce.d.*)
    *(.sdata .sdata.* .gnu.linkonce.s.*)
  }}
  .bss (NOLOAD) : ALIGN(4)
  {{
    *(.sbss .sbss.* .gnu.linkonce.sb.*)
    *(.bss .bss.* .gnu.linkonce.b.*)
    *(COMMON)
  }}
  . = ALIGN(16);
  {END_SYMBOL} = .;
  {ARGS_SYMBOL} = 0x{args_addr:08X};
  /DISCARD/ : {{ *(.comment) *(.note .note.*) *(.eh_frame .eh_frame_hdr .gcc_except_table*) *(.fini_array*) *(.dtors*) }}
}}
"""
