"""Every example of the original README, as written there (only the port and
where the C file goes differ), with its exact expected result."""
import logging
import struct

import numpy as np
import pytest

import p4jit
from p4jit import MALLOC_CAP_8BIT, MALLOC_CAP_SPIRAM, P4JIT

from api_support import EXAMPLES, PORT, needs_device
import kernels

pytestmark = needs_device


def test_quick_start_add(jit, sources):
    func = jit.load(source=sources("int add(int a, int b) {\n    return a + b;\n}\n", "add.c"),
                    function_name="add")
    result = func(np.int32(10), np.int32(20))
    assert result == 30
    assert isinstance(result, np.int32)
    func.free()


def test_python_ints_are_accepted_and_range_checked(jit, sources):
    func = jit.load(sources("int add(int a, int b) { return a + b; }\n"), "add")
    assert func(10, 20) == 30
    assert func(-(2**31), 0) == -(2**31)
    with pytest.raises(ValueError, match=r"argument 2 \(.b.\).*does not fit"):
        func(1, 2**31)


def test_method1_float_compute(jit, sources):
    func = jit.load(source=sources("float compute(float x, float y) {\n    return x * x + y * y;\n}\n",
                                   "compute.c"), function_name="compute")
    result = func(np.float32(3.0), np.float32(4.0))
    assert result == np.float32(25.0)
    assert isinstance(result, np.float32)


def test_method2_multi_file(jit):
    func = jit.load(source=str(EXAMPLES / "multi_file" / "source" / "algorithm.c"),
                    function_name="compute")
    assert func(np.int32(3), np.int32(4)) == 25


FIRMWARE_C = r"""
#include <stdio.h>
#include <stdlib.h>

int test_firmware_calls(void) {
    printf("Hello from JIT!\n");

    // Allocate memory using firmware's malloc
    int *data = (int*)malloc(10 * sizeof(int));
    if (data) {
        data[0] = 42;
        printf("Allocated and set data[0] = %d\n", data[0]);
        free(data);
    }

    return 0;
}
"""

DYNAMIC_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int test_dynamic(void) {
    printf("[JIT] Starting dynamic allocation test...\n");
    char *buffer = (char *)malloc(64);
    if (buffer == NULL) {
        printf("[JIT] Error: malloc failed!\n");
        return -1;
    }
    snprintf(buffer, 64, "Hello from JIT Heap! (Magic: 0x%X)", 0xDEADBEEF);
    printf("[JIT] Buffer content: %s\n", buffer);
    free(buffer);
    printf("[JIT] Memory freed.\n");
    return 42;
}
"""


def test_method3_firmware_printf_reaches_the_host(sources):
    lines = []
    with P4JIT(port=PORT, console=lines.append) as jit:
        func = jit.load(source=sources(FIRMWARE_C, "firmware_test.c"),
                        function_name="test_firmware_calls", use_firmware_elf=True)
        assert func() == 0
    assert lines == ["Hello from JIT!", "Allocated and set data[0] = 42"]


def test_example4_firmware_symbols_returns_42_and_prints(jit, sources, capsys):
    func = jit.load(source=sources(DYNAMIC_C, "dynamic_print.c"), function_name="test_dynamic",
                    use_firmware_elf=True)
    assert func() == 42
    out = capsys.readouterr().out  # the default: device text echoed on stdout
    assert "[JIT] Starting dynamic allocation test..." in out
    assert "[JIT] Buffer content: Hello from JIT Heap! (Magic: 0xDEADBEEF)" in out
    assert "[JIT] Memory freed." in out


def test_console_echo_can_be_turned_off(jit, sources, capsys, caplog):
    func = jit.load(sources(DYNAMIC_C), "test_dynamic")
    p4jit.set_console_echo(False)
    try:
        with caplog.at_level(logging.INFO, logger="p4jit.console"):
            logging.getLogger("p4jit.console").propagate = True
            assert func() == 42
    finally:
        logging.getLogger("p4jit.console").propagate = False
        p4jit.set_console_echo(True)
    assert "[JIT]" not in capsys.readouterr().out
    assert "[JIT] Memory freed." in caplog.text


def test_console_false_logs_without_echo(sources, capsys):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("p4jit.console").addHandler(handler)
    try:
        with P4JIT(port=PORT, console=False) as jit:
            assert jit.load(sources(DYNAMIC_C), "test_dynamic")() == 42
    finally:
        logging.getLogger("p4jit.console").removeHandler(handler)
    assert "[JIT]" not in capsys.readouterr().out
    assert "[JIT] Memory freed." in [r.getMessage() for r in records]


GAIN_C = kernels.source("apply_gain")


def test_example1_workflow_apply_gain(jit, sources, tmp_path):
    func = jit.load(source=sources(GAIN_C, "audio_processing.c"), function_name="apply_gain")
    input_data = np.random.default_rng(1).integers(0, 100, 1024, dtype=np.uint8)
    expected = np.minimum(input_data.astype(np.float32) * np.float32(1.5), np.float32(255.0)).astype(np.uint8)
    gain = np.float32(1.5)

    result = func(input_data, np.int32(len(input_data)), gain)

    assert result == gain and isinstance(result, np.float32)
    np.testing.assert_array_equal(input_data, expected)
    assert func.binary.total_size > 0
    assert func.stats.cycles > 0
    listing = func.binary.disassemble(output=str(tmp_path / "disassembly.txt"))
    assert "apply_gain" in listing and (tmp_path / "disassembly.txt").exists()


def test_example1_saturates_like_numpy(jit, sources):
    func = jit.load(sources(GAIN_C), "apply_gain")
    data = np.arange(256, dtype=np.uint8)
    expected = np.minimum(data.astype(np.float32) * np.float32(3.7), np.float32(255.0)).astype(np.uint8)
    func(data, 256, np.float32(3.7))
    np.testing.assert_array_equal(data, expected)


GEOMETRY_C = kernels.source("geometry")  # the original README's example 2


def test_example2_struct_with_manual_memory(jit, sources):
    func = jit.load(source=sources(GEOMETRY_C, "geometry.c"), function_name="sum_point",
                    smart_args=False)
    device = jit.session.device

    struct_data = struct.pack("<fi", 10.5, 20)
    struct_addr = device.allocate(len(struct_data), MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT, 16)
    device.write_memory(struct_addr, struct_data)
    arr_data = struct.pack("<H", 100)
    arr_addr = device.allocate(len(arr_data), MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT, 16)
    device.write_memory(arr_addr, arr_data)

    args_blob = struct.pack("<IiI", struct_addr, -5, arr_addr)
    raw = func(args_blob)

    result_bytes = device.read_memory(func.args_addr + 124, 4)
    result = struct.unpack("<f", result_bytes)[0]
    assert result == 125.5
    assert raw == struct.unpack("<I", result_bytes)[0]  # the call returns slot 31 raw

    device.free(struct_addr)
    device.free(arr_addr)
    func.free()


def test_example2_struct_with_smart_args(jit, sources):
    """Beyond the original: the same struct through smart args, no manual memory."""
    func = jit.load(sources(GEOMETRY_C), "sum_point")
    point = np.array([(10.5, 20)], dtype=[("x", "<f4"), ("y", "<i4")])
    assert func(point, -5, np.array([100], dtype=np.uint16)) == np.float32(125.5)


def test_smart_args_false_rejects_anything_but_bytes(jit, sources):
    func = jit.load(sources(GEOMETRY_C), "sum_point", smart_args=False)
    with pytest.raises(TypeError, match="smart_args=False"):
        func(1, 2, 3)
    with pytest.raises(ValueError, match="128"):
        func(bytes(132))


MODIFY_C = """
#include <stdint.h>

// Modify array in-place
int modify_array(int* data, int len) {
    for(int i = 0; i < len; i++) {
        data[i] = data[i] * 2;
    }
    return data[0];
}
"""


def test_example3_bidirectional_sync(jit, sources):
    func = jit.load(source=sources(MODIFY_C, "bidirectional.c"), function_name="modify_array")
    assert func.sync_arrays is True

    data = np.array([1, 2, 3, 4], dtype=np.int32)
    ret_val = func(data, np.int32(len(data)))
    np.testing.assert_array_equal(data, [2, 4, 6, 8])
    assert ret_val == 2

    func.sync_arrays = False
    data2 = np.array([10, 20, 30, 40], dtype=np.int32)
    ret_val = func(data2, np.int32(len(data2)))
    np.testing.assert_array_equal(data2, [10, 20, 30, 40])
    assert ret_val == 20  # the device did double them; the host copy stays
    func.free()


def test_example5_heap_monitoring(fresh_jit):
    jit = fresh_jit
    stats_initial = jit.get_heap_stats()
    assert set(stats_initial) >= {"free_spiram", "total_spiram", "free_internal", "total_internal"}

    addr = jit.session.device.allocate(1024 * 1024, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT, 16)
    stats_post = jit.get_heap_stats()
    assert stats_initial["free_spiram"] - stats_post["free_spiram"] >= 1024 * 1024

    jit.session.device.free(addr)
    stats_final = jit.get_heap_stats()
    assert stats_final["free_spiram"] == stats_initial["free_spiram"]
    assert stats_final["free_spiram"] > stats_post["free_spiram"]


def test_example5_heap_stats_print(fresh_jit, capsys):
    stats = fresh_jit.get_heap_stats(print_s=True)
    out = capsys.readouterr().out
    assert "PSRAM" in out and f"{stats['free_spiram']:,}" in out


def test_example6_logging_levels(jit, sources, caplog):
    src = sources("int twice(int x) { return 2 * x; }\n")
    try:
        for level in ("DEBUG", "INFO_VERBOSE", "INFO", "WARNING", "ERROR", "CRITICAL", "info_verbose"):
            p4jit.set_log_level(level)
            assert p4jit.get_log_level() == level.upper()
        p4jit.set_log_level("INFO_VERBOSE")
        with caplog.at_level(p4jit.INFO_VERBOSE, logger="p4jit"):
            f = jit.load(src, "twice")
        text = caplog.text
        for step in ("Pass 1: Preliminary Build", "Allocating device memory",
                     "Pass 2: Re-linking with allocated addresses", "Uploading binary to device",
                     "Function loaded successfully."):
            assert step in text
        assert f(21) == 42
        with pytest.raises(ValueError, match="INFO_VERBOSE"):
            p4jit.set_log_level("LOUD")
    finally:
        p4jit.set_log_level("WARNING")


def test_quiet_by_default(jit, sources, capsys):
    """Loading and calling print nothing at the default level (notebooks stay clean)."""
    assert p4jit.get_log_level() == "WARNING"
    f = jit.load(sources("int one(void) { return 1; }\n"), "one")
    assert f() == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
