/*
 * link_errors_py.c - a Link's failures as Python exceptions (see
 * link_errors_py.h): which class, and a message that says what happened and
 * what to do.
 */
#include "link_errors_py.h"

#include <errno.h>
#include <string.h>

/* Status → exception. Always returns NULL (or -1 via the int wrapper). */
PyObject *p4py_link_raise(p4py_state *s, const p4_link_t *l, p4_link_status_t st,
                          uint32_t timeout_ms, const char *function)
{
    const char *op = l->op[0] ? l->op : "request";
    char drops[320];
    p4_link_drop_summary(l, drops, sizeof drops);
    switch (st) {
    case P4_LINK_OK:
        PyErr_SetString(PyExc_SystemError, "p4jit link: no error to raise");
        return NULL;
    case P4_LINK_DEVICE_ERROR: {
        p4py_fault_ctx_t ctx = {l->guard_base, l->guard_size, function};
        return p4py_raise_device_error_ctx(s, l->err_code, l->err_detail, l->err_detail_len, op, &ctx);
    }
    case P4_LINK_TIMEOUT:
        p4py_errorf(s->ResponseTimeoutError,
                     "%s: no answer from the device within %.3g s%s. Is it busy running a long "
                     "kernel (raise the timeout or budget_ms), or has it stopped responding "
                     "(reset it)? The link resynchronises before the next request.",
                     op, timeout_ms / 1000.0, drops);
        return NULL;
    case P4_LINK_CANCELLED:
        PyErr_Format(s->CallCancelledError, "%s: %s.", op, l->msg);
        return NULL;
    case P4_LINK_CANCEL_REQUESTED:
        break;
    case P4_LINK_DISCONNECTED:
    case P4_LINK_CLOSED:
        if (st == P4_LINK_CLOSED && !l->sys_errno)
            PyErr_Format(s->DisconnectedError,
                         "%s: the link to the device is closed (device disconnected or another "
                         "program opened the port?); open the device again.", op);
        else if (l->sys_errno)
            PyErr_Format(s->DisconnectedError,
                         "%s: device disconnected or another program opened the port? (%s)", op,
                         strerror(l->sys_errno));
        else
            PyErr_Format(s->DisconnectedError,
                         "%s: device disconnected or another program opened the port? (end of "
                         "stream)", op);
        return NULL;
    case P4_LINK_CHECKSUM:
        PyErr_Format(s->ChecksumError,
                     "%s: %s%s; the link resynchronises before the next request, so retry. If "
                     "this repeats, check the cable and that no other program uses the port.",
                     op, l->msg, drops);
        return NULL;
    case P4_LINK_PROTOCOL:
        PyErr_Format(s->ProtocolError, "%s: %s%s.", op, l->msg, drops);
        return NULL;
    case P4_LINK_INTERRUPTED:
        if (!PyErr_Occurred())
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        return NULL;
    case P4_LINK_NOMEM:
        return PyErr_NoMemory();
    case P4_LINK_OSERROR:
        errno = l->sys_errno;
        return PyErr_SetFromErrno(PyExc_OSError);
    case P4_LINK_BADARG:
        PyErr_Format(PyExc_ValueError, "%s: %s", op, l->msg);
        return NULL;
    }
    PyErr_SetString(PyExc_SystemError, "p4jit link: unknown status");
    return NULL;
}

/* Say on a KeyboardInterrupt what happened to the device code. */
void p4py_link_note_interrupt(const p4_link_t *l, PyObject *exc)
{
    const char *note =
        l->cancel_sent
            ? "p4jit: the device stopped the kernel (CANCEL); the link is in step and the next "
              "call works at once"
            : "p4jit: this device cannot stop a running kernel (no CANCEL: the ESP32-P4 firmware "
              "today, or a v1 device): the kernel keeps running until it ends or its budget runs "
              "out, and the next request first waits for it (up to the timeout)";
    PyObject *r = PyObject_CallMethod(exc, "add_note", "s", note);
    if (!r)
        PyErr_Clear();
    Py_XDECREF(r);
}

/* A failed call: say that the caller's arrays are as before. */
void p4py_note_arrays_unchanged(void)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (v) {
        if (PyObject_SetAttrString(v, "arrays_unchanged", Py_True) < 0)
            PyErr_Clear();
        PyObject *r = PyObject_CallMethod(
            v, "add_note", "s",
            "p4jit: the call's results were not copied back: your NumPy arrays are as before "
            "the call; device-resident memory (DeviceArray contents, buffers the kernel writes) "
            "may have changed");
        if (!r)
            PyErr_Clear();
        Py_XDECREF(r);
    }
    PyErr_Restore(t, v, tb);
}

void p4py_raise_bad_free(p4py_state *s, const p4_link_t *l, const char *function, uint32_t ptr)
{
    const char *op = l->op[0] ? l->op : "CALL";
    char text[400];
    PyOS_snprintf(text, sizeof text,
                  "%s: %s%s called free(0x%08X): free() of a pointer the kernel never malloc'ed "
                  "(the free was ignored; the call's results were delivered). Look for a free() "
                  "of an argument array or of a pointer not returned by malloc, or a double free",
                  op, function ? function : "the kernel", function ? "()" : "", (unsigned)ptr);
    PyObject *msg = PyUnicode_FromString(text);
    if (!msg)
        return;
    PyObject *exc = PyObject_CallOneArg(s->BadFreeError, msg);
    Py_DECREF(msg);
    if (!exc)
        return;
    PyObject *p = PyLong_FromUnsignedLong(ptr);
    if (!p || PyObject_SetAttrString(exc, "pointer", p) < 0 ||
        PyObject_SetAttrString(exc, "function", function ? PyUnicode_FromString(function) : Py_None) < 0) {
        Py_XDECREF(p);
        Py_DECREF(exc);
        return;
    }
    Py_DECREF(p);
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
}

