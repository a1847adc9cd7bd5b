"""Device code calling firmware functions: printf, malloc, snprintf, free.

The symbol bridge links your code against the firmware's ELF (on the virtual
device: its ROM image), so these calls cost nothing extra. What the device
prints shows up right here, in your terminal or notebook, as if it ran locally
(turn that off with ``p4jit.set_console_echo(False)``).
"""
import tempfile
from pathlib import Path

from p4jit import P4JIT

c_source = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int test_dynamic(void) {
    printf("[JIT] Starting dynamic allocation test...\n");

    printf("[JIT] Allocating 64 bytes...\n");
    char *buffer = (char *)malloc(64);
    if (buffer == NULL) {
        printf("[JIT] Error: malloc failed!\n");
        return -1;
    }
    printf("[JIT] Memory allocated at: %p\n", buffer);

    snprintf(buffer, 64, "Hello from JIT Heap! (Magic: 0x%X)", 0xDEADBEEF);
    printf("[JIT] Buffer content: %s\n", buffer);

    free(buffer);
    printf("[JIT] Memory freed.\n");
    return 42;
}
"""

with tempfile.TemporaryDirectory() as tmp, P4JIT() as jit:
    source = Path(tmp, "dynamic_print.c")
    source.write_text(c_source)

    func = jit.load(source=str(source), function_name="test_dynamic", use_firmware_elf=True)
    print("Executing function (device output follows)...")
    result = func()
    print(f"Function returned: {result}")  # 42
