"""Device heap statistics around a 1 MiB allocation."""
from p4jit import MALLOC_CAP_8BIT, MALLOC_CAP_SPIRAM, P4JIT

with P4JIT() as jit:
    print("Initial heap state:")
    stats_initial = jit.get_heap_stats(print_s=True)

    print("\n[Allocating 1MB SPIRAM...]")
    size = 1024 * 1024
    addr = jit.session.device.allocate(size, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT, 16)
    print(f"  Allocated at 0x{addr:08X}")

    print("\nHeap after allocation:")
    stats_post = jit.get_heap_stats(print_s=True)
    diff = stats_initial["free_spiram"] - stats_post["free_spiram"]
    print(f"\nFree SPIRAM decreased by: {diff} bytes ({diff / 1024:.2f} KB)")

    jit.session.device.free(addr)
    print("\n[Freed Memory]")
    print("\nHeap after free:")
    stats_final = jit.get_heap_stats(print_s=True)
    if stats_final["free_spiram"] > stats_post["free_spiram"]:
        print("\n✓ Memory successfully reclaimed")
