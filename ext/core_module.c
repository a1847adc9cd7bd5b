/*
 * core_module.c — p4jit._core: module definition, exception hierarchy and the
 * wire constants (read from p4_jit_protocol.h, never copied).
 */
#include "p4py.h"

#include "p4_jit_protocol.h"

/* ---- exceptions ---------------------------------------------------------- */

typedef struct {
    const char *name; /* p4jit._core.<name> */
    size_t offset;    /* where it lives in p4py_state */
    size_t base1;     /* offsetof a p4py_state base, or SIZE_MAX for none */
    PyObject **builtin_base; /* an extra builtin base, or NULL */
    const char *doc;
} exc_spec_t;

#define ST(field) offsetof(p4py_state, field)
#define NO_BASE ((size_t)-1)

/* Order matters: a class comes after its bases. */
static const exc_spec_t exc_specs[] = {
    {"P4JITError", ST(P4JITError), NO_BASE, NULL, "Base class of every p4jit error."},
    {"DeviceConnectionError", ST(DeviceConnectionError), ST(P4JITError), &PyExc_ConnectionError,
     "No device, the wrong device, or the link to it failed."},
    {"DisconnectedError", ST(DisconnectedError), ST(DeviceConnectionError), NULL,
     "The device went away (EOF or I/O error on its port)."},
    {"ProtocolError", ST(ProtocolError), ST(P4JITError), NULL,
     "The device answered with something the protocol does not allow."},
    {"ChecksumError", ST(ChecksumError), ST(ProtocolError), NULL,
     "A frame's checksum did not match (in either direction)."},
    {"ResponseTimeoutError", ST(ResponseTimeoutError), ST(ProtocolError), &PyExc_TimeoutError,
     "The device did not answer within the request timeout."},
    {"DeviceError", ST(DeviceError), ST(P4JITError), NULL,
     "The device refused a request; .code holds the P4_ERR_* value."},
    {"UnsupportedCommandError", ST(UnsupportedCommandError), ST(DeviceError), NULL,
     "The device does not know the command or could not parse its payload (error 2)."},
    {"AllocationError", ST(AllocationError), ST(DeviceError), &PyExc_MemoryError,
     "The device could not allocate the requested memory."},
    {"InvalidAddressError", ST(InvalidAddressError), ST(DeviceError), NULL,
     "An address or range is not inside a live device allocation."},
    {"PayloadTooLargeError", ST(PayloadTooLargeError), ST(DeviceError), NULL,
     "A request payload exceeds the device's buffer."},
    {"ExecutionFaultError", ST(ExecutionFaultError), ST(DeviceError), NULL,
     "Device code faulted; .cause, .pc, .tval, .regs, .instret describe it."},
    {"ExecutionTimeoutError", ST(ExecutionTimeoutError), ST(ExecutionFaultError),
     &PyExc_TimeoutError, "Device code ran past its execution budget and was stopped."},
    {"CallCancelledError", ST(CallCancelledError), ST(DeviceError), NULL,
     "The call was cancelled (Link.cancel() from another thread); its outputs are incomplete."},
    {"BadFreeError", ST(BadFreeError), ST(DeviceError), NULL,
     "Device code called free() on a pointer it never malloc'ed; .pointer holds it."},
};

#define STATE_SLOT(st, off) ((PyObject **)((char *)(st) + (off)))

static int add_exceptions(PyObject *module, p4py_state *st)
{
    for (size_t i = 0; i < sizeof exc_specs / sizeof exc_specs[0]; i++) {
        const exc_spec_t *s = &exc_specs[i];
        PyObject *bases;
        PyObject *first = s->base1 == NO_BASE ? PyExc_Exception : *STATE_SLOT(st, s->base1);
        if (s->builtin_base)
            bases = PyTuple_Pack(2, first, *s->builtin_base);
        else
            bases = PyTuple_Pack(1, first);
        if (!bases)
            return -1;
        char qualname[96];
        PyOS_snprintf(qualname, sizeof qualname, "p4jit._core.%s", s->name);
        PyObject *exc = PyErr_NewExceptionWithDoc(qualname, s->doc, bases, NULL);
        Py_DECREF(bases);
        if (!exc)
            return -1;
        *STATE_SLOT(st, s->offset) = exc;
        if (PyModule_AddObjectRef(module, s->name, exc) < 0)
            return -1;
    }
    return 0;
}

/* ---- constants ------------------------------------------------------------ */

typedef struct {
    const char *name;
    long value;
} const_spec_t;

#define C(name) {#name, (long)(name)}

/* The protocol tables, expanded (p4_jit_protocol.h): a command, error code,
 * capability or cause added there appears here without an edit. */
#define X_CMD(name, id, version, doc) {"P4_CMD_" #name, (long)(id)},
#define X_ERR(name, code, exc, text) {"P4_ERR_" #name, (long)(code)},
#define X_CAP(name, bit, doc) {"P4_CAP_" #name, 1L << (bit)},
#define X_CAUSE(name, mcause, text) {"P4_CAUSE_" #name, (long)(mcause)},
#define X_HEAP_CAP(name, bit) {"MALLOC_CAP_" #name, 1L << (bit)}, /* ESP-IDF's names */

static const const_spec_t constants[] = {
    C(P4_MAGIC0), C(P4_MAGIC1), C(P4_HEADER_SIZE), C(P4_CHECKSUM_SIZE), C(P4_FRAME_OVERHEAD),
    C(P4_FLAG_REQUEST), C(P4_FLAG_OK), C(P4_FLAG_ERROR), C(P4_FLAG_EVENT), C(P4_FLAG_V2),
    C(P4_OK), C(P4_PROTOCOL_V1), C(P4_PROTOCOL_VERSION),
    C(P4_ARG_SLOTS), C(P4_ARG_SLOT_SIZE), C(P4_ARGS_SIZE), C(P4_RET_SLOT), C(P4_RET64_SLOT),
    P4_COMMAND_LIST(X_CMD) P4_ERROR_LIST(X_ERR) P4_CAPABILITY_LIST(X_CAP)
    P4_CAUSE_LIST(X_CAUSE) P4_HEAP_CAP_LIST(X_HEAP_CAP)
};

static int add_constants(PyObject *module)
{
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
        if (PyModule_AddIntConstant(module, constants[i].name, constants[i].value) < 0)
            return -1;
    return 0;
}

/* ---- module --------------------------------------------------------------- */

static int core_exec(PyObject *module)
{
    p4py_state *st = p4py_state_of(module);
    if (add_exceptions(module, st) < 0 || add_constants(module) < 0)
        return -1;
    if (p4py_errors_exec(module) < 0 || p4py_link_exec(module) < 0 ||
        p4py_shadow_exec(module) < 0 || p4py_marshal_exec(module) < 0 ||
        p4py_elf_exec(module) < 0)
        return -1;
    return 0;
}

static int core_traverse(PyObject *module, visitproc visit, void *arg)
{
    p4py_state *st = p4py_state_of(module);
    PyObject **slots = (PyObject **)st;
    for (size_t i = 0; i < sizeof(p4py_state) / sizeof(PyObject *); i++)
        Py_VISIT(slots[i]);
    return 0;
}

static int core_clear(PyObject *module)
{
    p4py_state *st = p4py_state_of(module);
    PyObject **slots = (PyObject **)st;
    for (size_t i = 0; i < sizeof(p4py_state) / sizeof(PyObject *); i++)
        Py_CLEAR(slots[i]);
    return 0;
}

static void core_free(void *module)
{
    core_clear((PyObject *)module);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
    {0, NULL},
};

PyModuleDef p4py_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "p4jit._core",
    .m_doc = "p4jit's native core: framing and transport, shadow allocation table, "
             "argument-slot marshalling, ELF reading.",
    .m_size = sizeof(p4py_state),
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC PyInit__core(void)
{
    return PyModuleDef_Init(&p4py_module_def);
}
