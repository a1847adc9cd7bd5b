/*
 * p4py.h — shared declarations of the p4jit._core module's Python glue.
 *
 * Only files named *_py.c and core_module.c include Python.h. The pure C parts
 * (frame codec, shadow table, slot layout, ELF reader) live in their own files
 * with status-code APIs so they can be unit-tested and fuzzed natively.
 *
 * Each part adds its types and functions in an exec hook called from the
 * module's exec slot (multi-phase init, PEP 489). Module state holds the
 * exception classes; reach it with p4py_state_from_type() in methods of heap
 * types created by PyType_FromModuleAndSpec().
 */
#ifndef P4PY_H
#define P4PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    PyObject *P4JITError;
    PyObject *DeviceConnectionError;
    PyObject *DisconnectedError;
    PyObject *ProtocolError;
    PyObject *ChecksumError;
    PyObject *ResponseTimeoutError;
    PyObject *DeviceError;
    PyObject *UnsupportedCommandError;
    PyObject *AllocationError;
    PyObject *InvalidAddressError;
    PyObject *PayloadTooLargeError;
    PyObject *ExecutionFaultError;
    PyObject *ExecutionTimeoutError;
    PyObject *CallCancelledError;
    PyObject *BadFreeError;
    /* Types registered by the parts (set in their exec hooks). */
    PyObject *LinkType;
    PyObject *ShadowTableType;
    PyObject *SignatureType;
    PyObject *MarshallerType; /* marshal_py.c */
    PyObject *PlanType;       /* marshal_py.c */
} p4py_state;

extern PyModuleDef p4py_module_def;

static inline p4py_state *p4py_state_of(PyObject *module)
{
    return (p4py_state *)PyModule_GetState(module);
}

/* For methods of our heap types: the state of the module that made the type.
 * Returns NULL with an exception set if the type is not ours. */
static inline p4py_state *p4py_state_from_type(PyTypeObject *type)
{
    PyObject *module = PyType_GetModuleByDef(type, &p4py_module_def);
    return module ? p4py_state_of(module) : NULL;
}

/* Raise the exception class for a device error code (P4_ERR_*), with `what`
 * naming the operation ("ALLOC of 4096 bytes"). `detail` is the rest of the
 * error payload after the code (fault report for FAULT/TIMEOUT), may be NULL.
 * Always returns NULL. Implemented in errors_py.c. */
PyObject *p4py_raise_device_error(p4py_state *st, uint32_t code, const uint8_t *detail,
                                  size_t detail_len, const char *what);

/* The same with what the host knows about the call: the stack guard region
 * from INFO (a fault inside it is a stack overflow) and the function's name
 * (NULL: unknown). */
typedef struct {
    uint32_t guard_base, guard_size;
    const char *function;
} p4py_fault_ctx_t;
PyObject *p4py_raise_device_error_ctx(p4py_state *st, uint32_t code, const uint8_t *detail,
                                      size_t detail_len, const char *what,
                                      const p4py_fault_ctx_t *ctx);

/* PyErr_SetString with a printf-style message (full printf: %08X, %g, ...).
 * Returns NULL. (errors_py.c) */
PyObject *p4py_errorf(PyObject *cls, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Argument converters for "O&" (errors_py.c): a Python int that fits a
 * uint32_t; a timeout in seconds or None → int64_t milliseconds (-1 = None). */
int p4py_conv_u32(PyObject *o, void *out);
int p4py_conv_timeout(PyObject *o, void *out);

/* Run a batched call on a p4jit._core.Link (link_py.c): takes the Link's
 * lock, releases the GIL while the I/O runs, raises on failure (0 / -1).
 * timeout_ms < 0: the Link's own timeout. function: the kernel's name for
 * messages (NULL: unknown). The reads are staged: on failure their dst are
 * unchanged, and the exception says so (.arrays_unchanged = True). A bad
 * free() reported by the device raises BadFreeError after the results were
 * delivered. */
#include "link_commands.h"
int p4py_link_call(PyObject *link, uint32_t entry, uint32_t args_addr, uint32_t budget_ms,
                   const p4_link_write_t *wr, size_t nwr, const p4_link_read_t *rd, size_t nrd,
                   int64_t timeout_ms, const char *function, p4_call_result_t *res);

/* Part exec hooks: add types/functions to the module; 0 or -1 with an
 * exception set. */
int p4py_errors_exec(PyObject *module);
int p4py_link_exec(PyObject *module);
int p4py_shadow_exec(PyObject *module);
int p4py_marshal_exec(PyObject *module);
int p4py_elf_exec(PyObject *module);

#endif /* P4PY_H */
