/*
 * errors_py.c — device error codes (P4_ERR_*) → p4jit._core exception classes,
 * and the small argument converters the other *_py.c files share.
 */
#include "p4py.h"

#include "p4_jit_protocol.h"

#include <stdarg.h>

/* ---- messages ------------------------------------------------------------------ */

PyObject *p4py_errorf(PyObject *cls, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    PyOS_vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    PyErr_SetString(cls, buf);
    return NULL;
}

/* ---- converters ------------------------------------------------------------ */

int p4py_conv_u32(PyObject *o, void *out)
{
    if (!PyLong_Check(o) && !PyIndex_Check(o)) {
        PyErr_Format(PyExc_TypeError, "expected an int (a 32-bit device address or size), got %.80s",
                     Py_TYPE(o)->tp_name);
        return 0;
    }
    PyObject *idx = PyNumber_Index(o);
    if (!idx)
        return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
    Py_DECREF(idx);
    if (v == -1 && PyErr_Occurred())
        return 0;
    if (overflow || v < 0 || v > (long long)UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "value does not fit an unsigned 32-bit device word");
        return 0;
    }
    *(uint32_t *)out = (uint32_t)v;
    return 1;
}

int p4py_conv_timeout(PyObject *o, void *out)
{
    int64_t *ms = (int64_t *)out;
    if (o == Py_None) {
        *ms = -1;
        return 1;
    }
    double s = PyFloat_AsDouble(o);
    if (s == -1.0 && PyErr_Occurred())
        return 0;
    if (!(s >= 0.0) || s > 86400.0 * 365) {
        PyErr_SetString(PyExc_ValueError, "timeout must be a number of seconds >= 0");
        return 0;
    }
    double v = s * 1000.0;
    *ms = (int64_t)v;
    if ((double)*ms < v)
        (*ms)++;
    return 1;
}

/* ---- device errors ----------------------------------------------------------- */

static const char *cause_name(uint32_t cause)
{
    switch (cause) {
    case P4_CAUSE_MISALIGNED_FETCH: return "misaligned instruction fetch";
    case P4_CAUSE_FETCH_ACCESS: return "instruction access fault";
    case P4_CAUSE_ILLEGAL_INSN: return "illegal instruction";
    case P4_CAUSE_BREAKPOINT: return "breakpoint (ebreak)";
    case P4_CAUSE_MISALIGNED_LOAD: return "misaligned load";
    case P4_CAUSE_LOAD_ACCESS: return "load access fault";
    case P4_CAUSE_MISALIGNED_STORE: return "misaligned store";
    case P4_CAUSE_STORE_ACCESS: return "store access fault";
    case P4_CAUSE_ECALL_M: return "environment call (ecall)";
    case P4_CAUSE_TIMEOUT: return "execution budget exceeded";
    default: return "exception";
    }
}

typedef struct {
    uint32_t code;
    size_t cls; /* offsetof in p4py_state */
    const char *text;
} err_text_t;

#define ST(f) offsetof(p4py_state, f)

static const err_text_t err_texts[] = {
    {P4_ERR_CHECKSUM, ST(ChecksumError),
     "the device received a corrupted frame (checksum mismatch) and dropped it; the link is "
     "resynchronised before the next request, so retry. If this repeats, check the USB cable "
     "and that no other program writes to the port"},
    {P4_ERR_UNKNOWN_CMD, ST(UnsupportedCommandError),
     "the device does not know this command or could not parse its payload (error 2). A board "
     "running the original p4jit firmware speaks protocol v1 only: flash the current firmware, "
     "or stay with v1 operations"},
    {P4_ERR_ALLOC_FAILED, ST(AllocationError),
     "the device could not allocate the memory (error 3). Free buffers you no longer need "
     "(device.free, func.free), ask for less, or use other caps (MALLOC_CAP_SPIRAM has the most "
     "room); get_heap_info() shows what is free"},
    {P4_ERR_BAD_ADDRESS, ST(InvalidAddressError),
     "the device refused the address: the range is not inside a live allocation (error 4). Use "
     "addresses returned by allocate() and stay within their size"},
    {P4_ERR_TOO_LARGE, ST(PayloadTooLargeError),
     "the request is larger than the device's receive buffer (error 5); send it in smaller "
     "pieces (device.info.max_payload is the limit)"},
    {P4_ERR_BUSY, ST(DeviceError),
     "the device is busy with another call (error 8); wait for it to finish and retry"},
    {P4_ERR_BAD_ARGUMENT, ST(DeviceError),
     "the device rejected a value in the request (error 9), e.g. an alignment that is not a "
     "power of two or a zero size"},
    {P4_ERR_TABLE_FULL, ST(AllocationError),
     "the device's allocation table is full (error 10); free allocations you no longer need"},
    {P4_ERR_CACHE_SYNC, ST(DeviceError),
     "the device could not synchronise its caches after the write (error 11), so code may not "
     "see the new bytes; retry, and reset the board if it persists"},
    {P4_ERR_CANCELLED, ST(DeviceError),
     "the call was cancelled before the kernel finished (error 12); its outputs are incomplete"},
};

static int set_attr_u32(PyObject *o, const char *name, uint32_t v)
{
    PyObject *x = PyLong_FromUnsignedLong(v);
    if (!x)
        return -1;
    int r = PyObject_SetAttrString(o, name, x);
    Py_DECREF(x);
    return r;
}

static PyObject *raise_with_attrs(PyObject *cls, PyObject *msg, uint32_t code, const char *what)
{
    PyObject *exc = PyObject_CallOneArg(cls, msg);
    Py_DECREF(msg);
    if (!exc)
        return NULL;
    PyObject *w = PyUnicode_FromString(what ? what : "");
    if (!w || set_attr_u32(exc, "code", code) < 0 || PyObject_SetAttrString(exc, "what", w) < 0) {
        Py_XDECREF(w);
        Py_DECREF(exc);
        return NULL;
    }
    Py_DECREF(w);
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *raise_fault(p4py_state *st, uint32_t code, const uint8_t *detail, size_t len,
                             const char *what)
{
    PyObject *cls = code == P4_ERR_TIMEOUT ? st->ExecutionTimeoutError : st->ExecutionFaultError;
    if (!detail || len < P4_FAULT_DETAIL_SIZE) {
        PyObject *msg = PyUnicode_FromFormat(
            "%s: device code %s (error %u; the device sent no fault report). The device is still "
            "running.",
            what, code == P4_ERR_TIMEOUT ? "ran past its execution budget and was stopped" : "faulted",
            (unsigned)code);
        if (!msg)
            return NULL;
        PyObject *exc = PyObject_CallOneArg(cls, msg);
        Py_DECREF(msg);
        if (!exc)
            return NULL;
        if (set_attr_u32(exc, "code", code) < 0 || PyObject_SetAttrString(exc, "cause", Py_None) < 0 ||
            PyObject_SetAttrString(exc, "pc", Py_None) < 0 || PyObject_SetAttrString(exc, "tval", Py_None) < 0 ||
            PyObject_SetAttrString(exc, "regs", Py_None) < 0 ||
            PyObject_SetAttrString(exc, "instret", Py_None) < 0 ||
            PyObject_SetAttrString(exc, "cause_name", Py_None) < 0) {
            Py_DECREF(exc);
            return NULL;
        }
        PyErr_SetObject(cls, exc);
        Py_DECREF(exc);
        return NULL;
    }
    uint32_t cause = p4_wire_get_u32(detail);
    uint32_t pc = p4_wire_get_u32(detail + 4);
    uint32_t tval = p4_wire_get_u32(detail + 8);
    uint64_t instret = p4_wire_get_u64(detail + 12 + 32 * 4);
    uint32_t ra = p4_wire_get_u32(detail + 12 + 4 * 1), sp = p4_wire_get_u32(detail + 12 + 4 * 2);
    char head[256];
    if (code == P4_ERR_TIMEOUT || cause == P4_CAUSE_TIMEOUT)
        PyOS_snprintf(head, sizeof head,
                      "device code ran past its execution budget and was stopped at pc=0x%08X "
                      "after %llu instructions (ra=0x%08X, sp=0x%08X). Look for a loop that never "
                      "ends, or give the call more time (budget_ms=...). The device is still "
                      "running",
                      (unsigned)pc, (unsigned long long)instret, (unsigned)ra, (unsigned)sp);
    else
        PyOS_snprintf(head, sizeof head,
                      "device code faulted: %s at pc=0x%08X, fault address 0x%08X, after %llu "
                      "instructions (ra=0x%08X, sp=0x%08X). The device is still running; check "
                      "pointers and array bounds in the kernel",
                      cause_name(cause), (unsigned)pc, (unsigned)tval, (unsigned long long)instret,
                      (unsigned)ra, (unsigned)sp);
    PyObject *msg = PyUnicode_FromFormat("%s: %s", what, head);
    if (!msg)
        return NULL;
    PyObject *exc = PyObject_CallOneArg(cls, msg);
    Py_DECREF(msg);
    if (!exc)
        return NULL;
    PyObject *regs = PyTuple_New(32);
    if (!regs)
        goto fail;
    for (int i = 0; i < 32; i++) {
        PyObject *r = PyLong_FromUnsignedLong(p4_wire_get_u32(detail + 12 + 4 * i));
        if (!r) {
            Py_DECREF(regs);
            goto fail;
        }
        PyTuple_SET_ITEM(regs, i, r);
    }
    PyObject *ir = PyLong_FromUnsignedLongLong(instret);
    PyObject *cn = PyUnicode_FromString(cause_name(cause));
    PyObject *w = PyUnicode_FromString(what);
    int bad = !ir || !cn || !w || set_attr_u32(exc, "code", code) < 0 ||
              set_attr_u32(exc, "cause", cause) < 0 || set_attr_u32(exc, "pc", pc) < 0 ||
              set_attr_u32(exc, "tval", tval) < 0 || PyObject_SetAttrString(exc, "regs", regs) < 0 ||
              PyObject_SetAttrString(exc, "instret", ir) < 0 ||
              PyObject_SetAttrString(exc, "cause_name", cn) < 0 ||
              PyObject_SetAttrString(exc, "what", w) < 0;
    Py_XDECREF(ir);
    Py_XDECREF(cn);
    Py_XDECREF(w);
    Py_DECREF(regs);
    if (bad)
        goto fail;
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
fail:
    Py_DECREF(exc);
    return NULL;
}

PyObject *p4py_raise_device_error(p4py_state *st, uint32_t code, const uint8_t *detail,
                                  size_t detail_len, const char *what)
{
    if (!what || !*what)
        what = "device request";
    if (code == P4_ERR_FAULT || code == P4_ERR_TIMEOUT)
        return raise_fault(st, code, detail, detail_len, what);
    for (size_t i = 0; i < sizeof err_texts / sizeof err_texts[0]; i++) {
        if (err_texts[i].code != code)
            continue;
        PyObject *cls = *(PyObject **)((char *)st + err_texts[i].cls);
        PyObject *msg = PyUnicode_FromFormat("%s: %s.", what, err_texts[i].text);
        if (!msg)
            return NULL;
        return raise_with_attrs(cls, msg, code, what);
    }
    PyObject *msg = PyUnicode_FromFormat(
        "%s: the device answered with error code %u, which this host does not know; update "
        "p4jit or the firmware so that both speak the same protocol version.",
        what, (unsigned)code);
    if (!msg)
        return NULL;
    return raise_with_attrs(st->DeviceError, msg, code, what);
}

/* _core.raise_device_error(code, detail=b"", what="") — for tests and for
 * Python code that reads error frames itself (Link.exchange). */
static PyObject *py_raise_device_error(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"code", "detail", "what", NULL};
    uint32_t code;
    Py_buffer detail = {0};
    const char *what = "device request";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|y*s:raise_device_error", kwlist, p4py_conv_u32,
                                     &code, &detail, &what))
        return NULL;
    p4py_raise_device_error(p4py_state_of(module), code, detail.buf, (size_t)detail.len, what);
    PyBuffer_Release(&detail);
    return NULL;
}

static PyMethodDef errors_functions[] = {
    {"raise_device_error", (PyCFunction)(void (*)(void))py_raise_device_error,
     METH_VARARGS | METH_KEYWORDS,
     "raise_device_error(code, detail=b'', what='')\n--\n\nRaise the exception a device error "
     "code maps to (P4_ERR_* → class, message, attributes)."},
    {NULL, NULL, 0, NULL},
};

int p4py_errors_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, errors_functions);
}
