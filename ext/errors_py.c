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
#define X_CAUSE(name, mcause, text)                                                                \
    if (cause == (mcause))                                                                         \
        return text;
    P4_CAUSE_LIST(X_CAUSE)
#undef X_CAUSE
    return "exception";
}

/* Each P4_ERR_* code with its class and text, from P4_ERROR_LIST. */
typedef struct {
    uint32_t code;
    size_t cls; /* offsetof in p4py_state */
    const char *text;
} err_text_t;

#define X_ERR(name, code, exc, text) {(code), offsetof(p4py_state, exc), (text)},
static const err_text_t err_texts[] = {P4_ERROR_LIST(X_ERR)};
#undef X_ERR

static const err_text_t *err_text_of(uint32_t code)
{
    for (size_t i = 0; i < sizeof err_texts / sizeof err_texts[0]; i++)
        if (err_texts[i].code == code)
            return &err_texts[i];
    return NULL;
}

#define STATE_CLASS(st, e) (*(PyObject **)((char *)(st) + (e)->cls))

/* Set an attribute to a new reference (stolen); NULL (a failed constructor) fails. */
static int set_attr_new(PyObject *o, const char *name, PyObject *v)
{
    if (!v)
        return -1;
    int r = PyObject_SetAttrString(o, name, v);
    Py_DECREF(v);
    return r;
}

/* Create cls(msg) (msg stolen), give it .code and .what, and raise it. The
 * extra attributes of a fault report come from `fault` (NULL: none). */
typedef struct {
    uint32_t cause, pc, tval;
    uint64_t instret;
    const uint8_t *regs; /* 32 little-endian u32 */
} fault_t;

static int set_fault_attrs(PyObject *exc, const fault_t *f, bool stack_overflow)
{
    if (PyObject_SetAttrString(exc, "stack_overflow", stack_overflow ? Py_True : Py_False) < 0)
        return -1;
    static const char *const names[] = {"cause", "pc", "tval", "regs", "instret", "cause_name"};
    if (!f) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (PyObject_SetAttrString(exc, names[i], Py_None) < 0)
                return -1;
        return 0;
    }
    PyObject *regs = PyTuple_New(32);
    if (!regs)
        return -1;
    for (int i = 0; i < 32; i++) {
        PyObject *r = PyLong_FromUnsignedLong(p4_wire_get_u32(f->regs + 4 * i));
        if (!r) {
            Py_DECREF(regs);
            return -1;
        }
        PyTuple_SET_ITEM(regs, i, r);
    }
    if (set_attr_new(exc, "regs", regs) < 0 ||
        set_attr_new(exc, "cause", PyLong_FromUnsignedLong(f->cause)) < 0 ||
        set_attr_new(exc, "pc", PyLong_FromUnsignedLong(f->pc)) < 0 ||
        set_attr_new(exc, "tval", PyLong_FromUnsignedLong(f->tval)) < 0 ||
        set_attr_new(exc, "instret", PyLong_FromUnsignedLongLong(f->instret)) < 0 ||
        set_attr_new(exc, "cause_name", PyUnicode_FromString(cause_name(f->cause))) < 0)
        return -1;
    return 0;
}

static PyObject *raise_with_attrs(PyObject *cls, PyObject *msg, uint32_t code, const char *what,
                                  bool is_fault, const fault_t *f, bool stack_overflow)
{
    if (!msg)
        return NULL;
    PyObject *exc = PyObject_CallOneArg(cls, msg);
    Py_DECREF(msg);
    if (!exc)
        return NULL;
    if (set_attr_new(exc, "code", PyLong_FromUnsignedLong(code)) < 0 ||
        set_attr_new(exc, "what", PyUnicode_FromString(what ? what : "")) < 0 ||
        (is_fault && set_fault_attrs(exc, f, stack_overflow) < 0)) {
        Py_DECREF(exc);
        return NULL;
    }
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

/* A load/store fault whose address lies in the stack guard: the stack ran
 * into it. */
static bool is_stack_overflow(const fault_t *f, const p4py_fault_ctx_t *ctx)
{
    if (!ctx || !ctx->guard_size)
        return false;
    bool access = f->cause == P4_CAUSE_LOAD_ACCESS || f->cause == P4_CAUSE_STORE_ACCESS ||
                  f->cause == P4_CAUSE_MISALIGNED_LOAD || f->cause == P4_CAUSE_MISALIGNED_STORE;
    return access && f->tval - ctx->guard_base < ctx->guard_size;
}

/* FAULT / TIMEOUT / CANCELLED: the message and attributes from the fault
 * report. */
static PyObject *raise_fault(PyObject *cls, uint32_t code, const uint8_t *detail, size_t len,
                             const char *what, const p4py_fault_ctx_t *ctx)
{
    if (!detail || len < P4_FAULT_DETAIL_SIZE)
        return raise_with_attrs(
            cls,
            PyUnicode_FromFormat("%s: device code %s (error %u; the device sent no fault report). "
                                 "The device is still running.",
                                 what,
                                 code == P4_ERR_TIMEOUT     ? "ran past its execution budget and was stopped"
                                 : code == P4_ERR_CANCELLED ? "was cancelled"
                                                            : "faulted",
                                 (unsigned)code),
            code, what, true, NULL, false);
    fault_t f = {.cause = p4_wire_get_u32(detail),
                 .pc = p4_wire_get_u32(detail + 4),
                 .tval = p4_wire_get_u32(detail + 8),
                 .regs = detail + 12,
                 .instret = p4_wire_get_u64(detail + 12 + 32 * 4)};
    uint32_t ra = p4_wire_get_u32(f.regs + 4 * 1), sp = p4_wire_get_u32(f.regs + 4 * 2);
    bool overflow = is_stack_overflow(&f, ctx);
    const char *fn = ctx && ctx->function ? ctx->function : "the kernel";
    char head[480];
    if (code == P4_ERR_CANCELLED || f.cause == P4_CAUSE_CANCELLED)
        PyOS_snprintf(head, sizeof head,
                      "the call was cancelled: device code was stopped at pc=0x%08X after %llu "
                      "instructions (ra=0x%08X, sp=0x%08X); its outputs are incomplete. The "
                      "device is still running and the next call works",
                      (unsigned)f.pc, (unsigned long long)f.instret, (unsigned)ra, (unsigned)sp);
    else if (code == P4_ERR_TIMEOUT || f.cause == P4_CAUSE_TIMEOUT)
        PyOS_snprintf(head, sizeof head,
                      "device code ran past its execution budget and was stopped at pc=0x%08X "
                      "after %llu instructions (ra=0x%08X, sp=0x%08X). Look for a loop that never "
                      "ends, or give the call more time (budget_ms=...). The device is still "
                      "running",
                      (unsigned)f.pc, (unsigned long long)f.instret, (unsigned)ra, (unsigned)sp);
    else if (overflow)
        PyOS_snprintf(head, sizeof head,
                      "stack overflow in %s%s: the stack ran into the stack guard (%s at "
                      "pc=0x%08X, address 0x%08X, sp=0x%08X, after %llu instructions). Look for "
                      "deep or unbounded recursion or large local arrays (make them static or "
                      "pass a buffer in). The device is still running",
                      fn, ctx && ctx->function ? "()" : "", cause_name(f.cause), (unsigned)f.pc,
                      (unsigned)f.tval, (unsigned)sp, (unsigned long long)f.instret);
    else
        PyOS_snprintf(head, sizeof head,
                      "device code faulted: %s at pc=0x%08X, fault address 0x%08X, after %llu "
                      "instructions (ra=0x%08X, sp=0x%08X). The device is still running; check "
                      "pointers and array bounds in the kernel",
                      cause_name(f.cause), (unsigned)f.pc, (unsigned)f.tval,
                      (unsigned long long)f.instret, (unsigned)ra, (unsigned)sp);
    return raise_with_attrs(cls, PyUnicode_FromFormat("%s: %s", what, head), code, what, true, &f,
                            overflow);
}

PyObject *p4py_raise_device_error_ctx(p4py_state *st, uint32_t code, const uint8_t *detail,
                                      size_t detail_len, const char *what,
                                      const p4py_fault_ctx_t *ctx)
{
    if (!what || !*what)
        what = "device request";
    const err_text_t *e = err_text_of(code);
    if (e && (code == P4_ERR_FAULT || code == P4_ERR_TIMEOUT || code == P4_ERR_CANCELLED))
        return raise_fault(STATE_CLASS(st, e), code, detail, detail_len, what, ctx);
    if (e)
        return raise_with_attrs(STATE_CLASS(st, e), PyUnicode_FromFormat("%s: %s.", what, e->text),
                                code, what, false, NULL, false);
    return raise_with_attrs(
        st->DeviceError,
        PyUnicode_FromFormat("%s: the device answered with error code %u, which this host does not "
                             "know; update p4jit or the firmware so that both speak the same "
                             "protocol version.",
                             what, (unsigned)code),
        code, what, false, NULL, false);
}

PyObject *p4py_raise_device_error(p4py_state *st, uint32_t code, const uint8_t *detail,
                                  size_t detail_len, const char *what)
{
    return p4py_raise_device_error_ctx(st, code, detail, detail_len, what, NULL);
}

/* _core.raise_device_error(code, detail=b"", what="") — for tests and for
 * Python code that reads error frames itself (Link.exchange). */
static PyObject *py_raise_device_error(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"code", "detail", "what", "stack_guard", "function", NULL};
    uint32_t code;
    Py_buffer detail = {0};
    const char *what = "device request";
    p4py_fault_ctx_t ctx = {0, 0, NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|y*s$(O&O&)z:raise_device_error", kwlist,
                                     p4py_conv_u32, &code, &detail, &what, p4py_conv_u32,
                                     &ctx.guard_base, p4py_conv_u32, &ctx.guard_size, &ctx.function))
        return NULL;
    p4py_raise_device_error_ctx(p4py_state_of(module), code, detail.buf, (size_t)detail.len, what,
                                &ctx);
    PyBuffer_Release(&detail);
    return NULL;
}

static PyMethodDef errors_functions[] = {
    {"raise_device_error", (PyCFunction)(void (*)(void))py_raise_device_error,
     METH_VARARGS | METH_KEYWORDS,
     "raise_device_error(code, detail=b'', what='', *, stack_guard=(0, 0), function=None)\n--\n\n"
     "Raise the exception a device error code maps to (P4_ERR_* → class, message, attributes); "
     "stack_guard = (base, size) of the INFO region that makes a fault a stack overflow."},
    {NULL, NULL, 0, NULL},
};

int p4py_errors_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, errors_functions);
}
