"""Cell sources without a device: which functions a cell exports, where its
file lives, how build messages are rewritten to point into cells."""
from pathlib import Path

from p4jit.notebook.cell import (CellMessages, cell_text, exported_functions, first_global_label,
                                 global_labels, materialise)

C_CELL = r'''
#include <stdint.h>
#include <stdio.h>
#define SQUARE(x) ((x) * (x))
static inline uint32_t cycles_now(void) { uint32_t c; __asm__ volatile ("rdcycle %0" : "=r"(c)); return c; }
extern void scale_floats(const float *src, float *dst, int32_t count, float factor);
struct point { int x, y; };
int table[3] = {1, 2, 3};
/* int commented_out(void) { return 0; } */
uint32_t apply_gain(const float *input, float *output, int32_t count, float gain)
{
    printf("not a function: f(x) { }\n");
    if (count) { return cycles_now(); }
    return 0;
}
float __attribute__((noinline)) square(float x) { return SQUARE(x); }
void
spread(int a,
       int b)
{
}
'''

CPP_CELL = r'''
#include <cmath>
namespace dsp { int inner(int a) { return a; } }
static int hidden(int) { return 0; }
int mangled(int a) { return a; }
extern "C" int exported(int a) { return dsp::inner(a); }
extern "C" {
int also_exported(int a) { return a + 1; }
}
template <typename T> T generic(T x) { return x; }
class Box { int get(int x) { return x; } };
'''


def test_c_cells_export_their_non_static_functions_in_order():
    assert exported_functions(C_CELL) == ["apply_gain", "square", "spread"]


def test_cpp_cells_export_only_functions_with_c_linkage():
    assert exported_functions(CPP_CELL, "c++") == ["exported", "also_exported"]


def test_declarations_and_prototypes_are_not_definitions():
    assert exported_functions("int f(int);\nextern int g(void);\nint (*fp)(int) = 0;\n") == []


def test_assembly_cells_are_named_after_their_global_labels():
    asm = "    .text\n    .global scale_floats\nscale_floats:\n    ret\n    .globl helper\nhelper: ret\n"
    assert global_labels(asm) == ["scale_floats", "helper"]
    assert first_global_label(asm) == "scale_floats"
    assert first_global_label("nop\n") is None


def test_a_cell_file_starts_with_a_line_for_the_magic_line():
    text = cell_text("int f(void) { return 1; }\n\n\n")
    assert text == "\nint f(void) { return 1; }\n"
    assert text.splitlines()[1] == "int f(void) { return 1; }"   # cell line 2 is file line 2


def test_a_cell_folder_is_named_by_its_content_and_reused(tmp_path):
    files = {"cell.c": "\nint f(void) { return 1; }\n", "ops.S": "\n  .global g\ng: ret\n"}
    first = materialise(tmp_path, files)
    again = materialise(tmp_path, dict(reversed(list(files.items()))))
    other = materialise(tmp_path, {"cell.c": "\nint f(void) { return 2; }\n"})
    assert first == again and first != other
    assert sorted(p.name for p in first.iterdir()) == ["cell.c", "ops.S"]
    assert (first / "cell.c").read_text() == files["cell.c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, other.name])  # no leftovers


def test_compiler_messages_point_into_cells():
    folder = Path("/home/u/.cache/p4jit/v1/cells/0123abcd")
    m = CellMessages({"cell.c": "Cell In[7]", "vector_ops.S": "vector_ops.S (Cell In[3])"})
    out = (f"{folder}/cell.c: In function 'add':\n"
           f"{folder}/cell.c:4:16: error: 'y' undeclared (first use in this function)\n"
           f"{folder}/vector_ops.S:12: Error: unrecognized opcode `addx a0,a0,a1'\n"
           f"/usr/bin/riscv64-unknown-elf-ld: /home/u/.cache/p4jit/v1/obj/99/cell.o: in function `add':\n"
           f"./cell.c:5: undefined reference to `missing'\n"
           f"add() at {folder}/cell.c:3 is static\n")
    assert m.lines(out) == [
        "Cell In[7]: In function 'add':",
        "Cell In[7], line 4, column 16: error: 'y' undeclared (first use in this function)",
        "vector_ops.S (Cell In[3]), line 12: Error: unrecognized opcode `addx a0,a0,a1'",
        "riscv64-unknown-elf-ld: cell.o: in function `add':",
        "Cell In[7], line 5: undefined reference to `missing'",
        "add() at Cell In[7], line 3 is static",
    ]
