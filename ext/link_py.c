/*
 * link_py.c — p4jit._core.Link: the Python face of the link (the transport in
 * link_transport.c, the commands in link_commands.c, Python values in and out
 * in link_values_py.c). One job, the type: its lock and the GIL, status ->
 * exception, construction, a method per command, attributes. Over 600 lines
 * because it has ~20 methods and ~20 attributes; none touches a payload
 * offset.
 *
 * Locking: each Link has a PyThread lock taken with the GIL released; the
 * GIL is then released for the whole I/O and reacquired only in the
 * interrupt hook (every <= 100 ms) to run signal handlers, and in the console
 * hook to hand each console event to the callback as it arrives. An exception
 * a signal handler raises (KeyboardInterrupt) is kept aside while the link
 * cancels the call (link_transport.h) and raised when the call returns.
 * Link.cancel() takes no lock: any thread (or a signal handler) may call it.
 * The thread that holds the lock cannot enter again (a console callback
 * making a device request gets a RuntimeError, not a deadlock).
 */
#include "p4py.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "link_commands.h"
#include "link_errors_py.h"
#include "link_values_py.h"
#include "p4_jit_protocol.h"

typedef struct {
    PyObject_HEAD
    p4_link_t link;
    PyThread_type_lock lock;
    unsigned long owner; /* thread holding the lock (0: none) */
    PyObject *console_cb;
    int ready;
} LinkObject;

/* ---- lock / GIL ------------------------------------------------------------- */

typedef struct {
    PyThreadState *ts;
    PyObject *self;
    PyObject *exc, *exc_tb; /* raised by a signal handler, raised when the call returns */
} gil_ctx_t;

static int intr_hook(void *ctx)
{
    gil_ctx_t *g = (gil_ctx_t *)ctx;
    PyEval_RestoreThread(g->ts);
    int r = PyErr_CheckSignals();
    if (r < 0) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyErr_NormalizeException(&t, &v, &tb);
        Py_XDECREF(t);
        if (!g->exc) {
            g->exc = v;
            g->exc_tb = tb;
        } else {
            Py_XDECREF(v);
            Py_XDECREF(tb);
        }
    }
    g->ts = PyEval_SaveThread();
    return r < 0;
}

/* Console text arrived while the call runs: hand it over now. */
static void console_hook(void *ctx)
{
    gil_ctx_t *g = (gil_ctx_t *)ctx;
    LinkObject *self = (LinkObject *)g->self;
    PyEval_RestoreThread(g->ts);
    PyObject *cb = self->console_cb ? Py_NewRef(self->console_cb) : NULL;
    if (cb && self->link.con_len) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)self->link.con, (Py_ssize_t)self->link.con_len);
        if (b) {
            self->link.con_len = 0;
            PyObject *r = PyObject_CallOneArg(cb, b);
            Py_DECREF(b);
            if (!r && PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
                /* Ctrl-C (or the notebook's interrupt) landed while the
                 * callback ran Python code: hand it back to the link, whose
                 * next signal check cancels the call as for any Ctrl-C. */
                PyErr_Clear();
                PyErr_SetInterrupt();
            } else if (!r) {
                PyErr_WriteUnraisable(cb);
            }
            Py_XDECREF(r);
        } else {
            PyErr_WriteUnraisable(cb);
        }
    }
    Py_XDECREF(cb);
    g->ts = PyEval_SaveThread();
}

static p4py_state *link_state(LinkObject *self)
{
    return p4py_state_from_type(Py_TYPE(self));
}

/* Take the lock (GIL released while waiting) and release the GIL. */
static int link_enter(LinkObject *self, gil_ctx_t *g)
{
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "Link is not initialised");
        return -1;
    }
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        if (self->owner == PyThread_get_thread_ident()) {
            PyErr_SetString(PyExc_RuntimeError,
                            "the p4jit link is busy with a request of this same thread (a console "
                            "callback cannot make device requests; queue the work and do it after "
                            "the call)");
            return -1;
        }
        for (;;) {
            PyLockStatus r;
            Py_BEGIN_ALLOW_THREADS
            r = PyThread_acquire_lock_timed(self->lock, 100000, 0);
            Py_END_ALLOW_THREADS
            if (r == PY_LOCK_ACQUIRED)
                break;
            if (PyErr_CheckSignals() < 0)
                return -1;
        }
    }
    self->owner = PyThread_get_thread_ident();
    g->self = (PyObject *)self;
    g->exc = g->exc_tb = NULL;
    self->link.interrupted = intr_hook;
    self->link.intr_ctx = g;
    self->link.console_hook = self->console_cb ? console_hook : NULL;
    g->ts = PyEval_SaveThread();
    return 0;
}

static void link_leave(LinkObject *self, gil_ctx_t *g)
{
    PyEval_RestoreThread(g->ts);
    self->link.interrupted = NULL;
    self->link.console_hook = NULL;
    self->link.intr_ctx = NULL;
    self->owner = 0;
    PyThread_release_lock(self->lock);
}

static uint32_t eff_timeout(LinkObject *self, int64_t ms)
{
    if (ms < 0)
        return self->link.timeout_ms;
    return ms > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* Hand console text to the callback (GIL held, no exception pending). */
static void deliver_console(LinkObject *self)
{
    if (!self->console_cb || self->console_cb == Py_None || !self->link.con_len)
        return;
    if (PyThread_acquire_lock(self->lock, NOWAIT_LOCK) == 0)
        return; /* another thread is mid-request; it will deliver */
    PyObject *b = PyBytes_FromStringAndSize((const char *)self->link.con, (Py_ssize_t)self->link.con_len);
    if (b)
        self->link.con_len = 0;
    PyThread_release_lock(self->lock);
    if (!b) {
        PyErr_WriteUnraisable((PyObject *)self);
        return;
    }
    PyObject *cb = Py_NewRef(self->console_cb);
    PyObject *r = PyObject_CallOneArg(cb, b);
    Py_DECREF(cb);
    Py_DECREF(b);
    if (!r)
        PyErr_WriteUnraisable(self->console_cb ? self->console_cb : Py_None);
    Py_XDECREF(r);
}

static void raise_link_status(LinkObject *self, p4_link_status_t st, uint32_t timeout_ms,
                              const char *function)
{
    p4py_state *s = link_state(self);
    if (s)
        p4py_link_raise(s, &self->link, st, timeout_ms, function);
}

/* Finish an operation: leave, deliver console, raise on failure. An exception
 * a signal handler raised during the call wins over everything. */
static int finish_fn(LinkObject *self, gil_ctx_t *g, p4_link_status_t st, uint32_t timeout_ms,
                     const char *function)
{
    link_leave(self, g);
    if (g->exc) {
        p4py_link_note_interrupt(&self->link, g->exc);
        PyObject *t = Py_NewRef((PyObject *)Py_TYPE(g->exc));
        PyErr_Restore(t, g->exc, g->exc_tb);
        g->exc = g->exc_tb = NULL;
        return -1;
    }
    if (st == P4_LINK_INTERRUPTED) {
        raise_link_status(self, st, timeout_ms, function);
        return -1;
    }
    deliver_console(self);
    if (st != P4_LINK_OK) {
        raise_link_status(self, st, timeout_ms, function);
        return -1;
    }
    return 0;
}

static int finish(LinkObject *self, gil_ctx_t *g, p4_link_status_t st, uint32_t timeout_ms)
{
    return finish_fn(self, g, st, timeout_ms, NULL);
}

/* ---- type: construction --------------------------------------------------------- */

/* spin_us: an int of microseconds, 0..P4_SPIN_US_MAX. */
static int conv_spin_us(PyObject *v, uint32_t *out)
{
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "spin_us must be an int (microseconds), got %.80s",
                     Py_TYPE(v)->tp_name);
        return 0;
    }
    int overflow = 0;
    long long us = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (us == -1 && PyErr_Occurred())
        return 0;
    if (overflow || us < 0 || us > (long long)P4_SPIN_US_MAX) {
        PyErr_Format(PyExc_ValueError, "spin_us must be 0..%u microseconds, got %R",
                     (unsigned)P4_SPIN_US_MAX, v);
        return 0;
    }
    *out = (uint32_t)us;
    return 1;
}

static int Link_init(LinkObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"fd", "timeout", "spin_us", NULL};
    PyObject *fdobj, *spin = Py_None;
    int64_t tmo = 5000;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O&$O:Link", kwlist, &fdobj, p4py_conv_timeout, &tmo,
                                     &spin))
        return -1;
    uint32_t spin_us = 0;
    if (spin != Py_None && !conv_spin_us(spin, &spin_us))
        return -1;
    if (tmo < 0)
        tmo = 5000;
    int fd = PyObject_AsFileDescriptor(fdobj);
    if (fd < 0)
        return -1;
    if (self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Link.__init__ called twice");
        return -1;
    }
    if (!self->lock) {
        self->lock = PyThread_allocate_lock();
        if (!self->lock) {
            PyErr_NoMemory();
            return -1;
        }
    }
    if (p4_link_init(&self->link, fd, tmo > UINT32_MAX ? UINT32_MAX : (uint32_t)tmo) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (spin != Py_None)
        p4_spin_init(&self->link.spin, spin_us);
    self->ready = 1;
    return 0;
}

static int Link_traverse(LinkObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->console_cb);
    return 0;
}

static int Link_clear(LinkObject *self)
{
    Py_CLEAR(self->console_cb);
    return 0;
}

static void Link_dealloc(LinkObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Link_clear(self);
    if (self->ready) {
        p4_link_close(&self->link);
        self->ready = 0;
    }
    if (self->lock)
        PyThread_free_lock(self->lock);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* ---- methods -------------------------------------------------------------------- */

static PyObject *do_request(LinkObject *self, PyObject *args, PyObject *kw, int raw)
{
    static char *kwlist[] = {"cmd", "payload", "timeout", "what", NULL};
    unsigned char cmd;
    PyObject *payload = NULL;
    int64_t tmo = -1;
    const char *what = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, raw ? "b|O$O&z:exchange" : "b|O$O&z:request", kwlist,
                                     &cmd, &payload, p4py_conv_timeout, &tmo, &what))
        return NULL;
    txbufs_t t;
    memset(&t, 0, sizeof t);
    if (payload && p4py_txbufs_get(payload, &t) < 0)
        return NULL;
    uint32_t to = eff_timeout(self, tmo);
    gil_ctx_t g;
    if (link_enter(self, &g) < 0) {
        p4py_txbufs_release(&t);
        return NULL;
    }
    if (what)
        snprintf(self->link.op, sizeof self->link.op, "%s", what);
    else
        snprintf(self->link.op, sizeof self->link.op, "%s (0x%02X)", p4_link_cmd_name(cmd), cmd);
    p4_link_status_t st = p4_link_transact(&self->link, cmd, t.iov, t.n, NULL, 0, to);
    PyObject *out = NULL;
    if (st == P4_LINK_OK || (raw && st == P4_LINK_DEVICE_ERROR)) {
        /* copy the response out while we still hold the lock */
        PyEval_RestoreThread(g.ts);
        out = PyBytes_FromStringAndSize((const char *)self->link.resp, (Py_ssize_t)self->link.resp_len);
        if (out && raw) {
            PyObject *tup = Py_BuildValue("(BN)", self->link.resp_flags, out);
            out = tup;
        }
        if (self->link.scratch_cap > (4u << 20)) { /* do not keep a huge buffer around */
            free(self->link.scratch);
            self->link.scratch = NULL;
            self->link.scratch_cap = 0;
        }
        g.ts = PyEval_SaveThread();
        st = P4_LINK_OK;
    }
    int r = finish(self, &g, st, to);
    p4py_txbufs_release(&t);
    if (r < 0) {
        Py_XDECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *Link_request(LinkObject *self, PyObject *args, PyObject *kw)
{
    return do_request(self, args, kw, 0);
}

static PyObject *Link_exchange(LinkObject *self, PyObject *args, PyObject *kw)
{
    return do_request(self, args, kw, 1);
}

static PyObject *Link_ping(LinkObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"data", "timeout", NULL};
    PyObject *data = Py_None;
    int64_t tmo = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$O&:ping", kwlist, &data, p4py_conv_timeout, &tmo))
        return NULL;
    Py_buffer view = {0};
    uint8_t nonce[8];
    const uint8_t *p;
    size_t n;
    if (data == Py_None) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        p4_wire_put_u32(nonce, (uint32_t)ts.tv_nsec);
        p4_wire_put_u32(nonce + 4, (uint32_t)(self->link.requests * 2654435761u));
        p = nonce;
        n = sizeof nonce;
    } else {
        if (PyObject_GetBuffer(data, &view, PyBUF_C_CONTIGUOUS) < 0)
            return NULL;
        p = view.buf;
        n = (size_t)view.len;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    uint32_t to = eff_timeout(self, tmo);
    gil_ctx_t g;
    if (!out || link_enter(self, &g) < 0) {
        PyBuffer_Release(&view);
        Py_XDECREF(out);
        return NULL;
    }
    p4_link_status_t st = p4_link_ping(&self->link, p, n, (uint8_t *)PyBytes_AS_STRING(out), to);
    int r = finish(self, &g, st, to);
    PyBuffer_Release(&view);
    if (r < 0)
        Py_CLEAR(out);
    return out;
}

/* ---- the fixed-size commands: one runner ---------------------------------------- */

/* A command with fixed arguments and a fixed answer: the arguments in, the
 * decoded answer out (run_command picks the p4_link_* function, answer_of
 * turns its result into Python values). */
typedef enum { OP_INFO, OP_HEAP_INFO, OP_ALLOC, OP_FREE, OP_FREE_ALL, OP_CONSOLE_CTL, OP_EXEC, OP_RESYNC } op_t;

typedef struct {
    op_t op;
    uint32_t arg[3];
    union {
        p4_info_t info;
        p4_heap_info_t heap;
        uint32_t word[2];
        p4_free_all_t freed;
        bool flag;
    } out;
} command_t;

static p4_link_status_t run_command(p4_link_t *l, command_t *c, uint32_t to)
{
    switch (c->op) {
    case OP_INFO: return p4_link_info(l, &c->out.info, to);
    case OP_HEAP_INFO: return p4_link_heap_info(l, &c->out.heap, to);
    case OP_ALLOC: return p4_link_alloc(l, c->arg[0], c->arg[1], c->arg[2], &c->out.word[0], to);
    case OP_FREE: return p4_link_free(l, c->arg[0], to);
    case OP_FREE_ALL: return p4_link_free_all(l, &c->out.freed, to);
    case OP_CONSOLE_CTL: return p4_link_console_ctl(l, c->arg[0] != 0, &c->out.flag, to);
    case OP_EXEC: return p4_link_exec(l, c->arg[0], &c->out.word[0], to);
    case OP_RESYNC:
        snprintf(l->op, sizeof l->op, "resynchronising the link (PING)");
        return p4_link_resync(l, to);
    }
    return p4_link_fail(l, P4_LINK_BADARG, "unknown operation %d", (int)c->op);
}

static PyObject *answer_of(const command_t *c)
{
    switch (c->op) {
    case OP_INFO: return p4py_info_dict(&c->out.info);
    case OP_HEAP_INFO: return p4py_heap_info_dict(&c->out.heap);
    case OP_ALLOC:
    case OP_EXEC: return PyLong_FromUnsignedLong(c->out.word[0]);
    case OP_FREE_ALL: return p4py_free_all_dict(&c->out.freed);
    case OP_CONSOLE_CTL: return PyBool_FromLong(c->out.flag);
    case OP_FREE:
    case OP_RESYNC: break;
    }
    Py_RETURN_NONE;
}

/* Enter the link, run the command with the GIL released, leave, convert. */
static PyObject *command(LinkObject *self, command_t *c, int64_t tmo)
{
    uint32_t to = eff_timeout(self, tmo);
    gil_ctx_t g;
    if (link_enter(self, &g) < 0)
        return NULL;
    p4_link_status_t st = run_command(&self->link, c, to);
    if (finish(self, &g, st, to) < 0)
        return NULL;
    return answer_of(c);
}

/* The methods that take only (*, timeout=None). */
static PyObject *timeout_only(LinkObject *self, PyObject *args, PyObject *kw, op_t op, const char *fmt)
{
    static char *kwlist[] = {"timeout", NULL};
    int64_t tmo = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, p4py_conv_timeout, &tmo))
        return NULL;
    command_t c = {.op = op};
    return command(self, &c, tmo);
}

#define TIMEOUT_ONLY_METHOD(name, op)                                                              \
    static PyObject *Link_##name(LinkObject *self, PyObject *args, PyObject *kw)                   \
    {                                                                                              \
        return timeout_only(self, args, kw, op, "|$O&:" #name);                                    \
    }
TIMEOUT_ONLY_METHOD(info, OP_INFO)
TIMEOUT_ONLY_METHOD(heap_info, OP_HEAP_INFO)
TIMEOUT_ONLY_METHOD(free_all, OP_FREE_ALL)
TIMEOUT_ONLY_METHOD(resync, OP_RESYNC)

static PyObject *Link_alloc(LinkObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"size", "caps", "alignment", "timeout", NULL};
    command_t c = {.op = OP_ALLOC};
    int64_t tmo = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&|$O&:alloc", kwlist, p4py_conv_u32, &c.arg[0],
                                     p4py_conv_u32, &c.arg[1], p4py_conv_u32, &c.arg[2],
                                     p4py_conv_timeout, &tmo))
        return NULL;
    return command(self, &c, tmo);
}

/* The methods that take (addr, *, timeout=None). */
static PyObject *addr_only(LinkObject *self, PyObject *args, PyObject *kw, op_t op, const char *fmt)
{
    static char *kwlist[] = {"addr", "timeout", NULL};
    command_t c = {.op = op};
    int64_t tmo = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, p4py_conv_u32, &c.arg[0],
                                     p4py_conv_timeout, &tmo))
        return NULL;
    return command(self, &c, tmo);
}

#define ADDR_ONLY_METHOD(name, op)                                                                 \
    static PyObject *Link_##name(LinkObject *self, PyObject *args, PyObject *kw)                   \
    {                                                                                              \
        return addr_only(self, args, kw, op, "O&|$O&:" #name);                                     \
    }
ADDR_ONLY_METHOD(free, OP_FREE)
ADDR_ONLY_METHOD(execute, OP_EXEC)

static PyObject *Link_console_ctl(LinkObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"enable", "timeout", NULL};
    int enable;
    int64_t tmo = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "p|$O&:console_ctl", kwlist, &enable,
                                     p4py_conv_timeout, &tmo))
        return NULL;
    command_t c = {.op = OP_CONSOLE_CTL, .arg = {enable != 0}};
    return command(self, &c, tmo);
}

/* Move a caller's buffer to (WRITE_MEM) or from (READ_MEM) device memory
 * without copying it; releases the buffer on every path. Returns its length. */
static PyObject *transfer_view(LinkObject *self, uint32_t addr, Py_buffer *view, int64_t tmo,
                               bool to_device)
{
    uint32_t to = eff_timeout(self, tmo);
    Py_ssize_t n = view->len;
    gil_ctx_t g;
    int r = -1;
    if (link_enter(self, &g) == 0) {
        p4_link_status_t st =
            to_device ? p4_link_write_mem(&self->link, addr, view->buf, (size_t)n, to)
                      : p4_link_read_staged(&self->link, addr, view->buf, (size_t)n, to);
        r = finish(self, &g, st, to);
    }
    PyBuffer_Release(view);
    return r < 0 ? NULL : PyLong_FromSsize_t(n);
}

static PyObject *Link_write_mem(LinkObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"addr", "data", "timeout", NULL};
    uint32_t addr;
    Py_buffer view;
    int64_t tmo = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&y*|$O&:write_mem", kwlist, p4py_conv_u32, &addr,
                                     &view, p4py_conv_timeout, &tmo))
        return NULL;
    return transfer_view(self, addr, &view, tmo, true);
}

static PyObject *Link_read_mem(LinkObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"addr", "size", "timeout", NULL};
    uint32_t addr, size;
    int64_t tmo = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&|$O&:read_mem", kwlist, p4py_conv_u32, &addr,
                                     p4py_conv_u32, &size, p4py_conv_timeout, &tmo))
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (!out)
        return NULL;
    uint32_t to = eff_timeout(self, tmo);
    gil_ctx_t g;
    if (link_enter(self, &g) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    p4_link_status_t st = p4_link_read_mem(&self->link, addr, (uint8_t *)PyBytes_AS_STRING(out), size, to);
    if (finish(self, &g, st, to) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *Link_read_into(LinkObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"addr", "buffer", "timeout", NULL};
    uint32_t addr;
    Py_buffer view;
    int64_t tmo = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&w*|$O&:read_into", kwlist, p4py_conv_u32, &addr,
                                     &view, p4py_conv_timeout, &tmo))
        return NULL;
    return transfer_view(self, addr, &view, tmo, false);
}

int p4py_link_call(PyObject *obj, uint32_t entry, uint32_t args_addr, uint32_t budget_ms,
                   const p4_link_write_t *wr, size_t nwr, const p4_link_read_t *rd, size_t nrd,
                   int64_t timeout_ms, const char *function, p4_call_result_t *res)
{
    PyTypeObject *tp = Py_TYPE(obj);
    p4py_state *s = p4py_state_from_type(tp);
    if (!s) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "expected a p4jit._core.Link, got %.80s", tp->tp_name);
        return -1;
    }
    if ((PyObject *)tp != s->LinkType && !PyObject_TypeCheck(obj, (PyTypeObject *)s->LinkType)) {
        PyErr_Format(PyExc_TypeError, "expected a p4jit._core.Link, got %.80s", tp->tp_name);
        return -1;
    }
    LinkObject *self = (LinkObject *)obj;
    uint32_t to = eff_timeout(self, timeout_ms);
    gil_ctx_t g;
    if (link_enter(self, &g) < 0)
        return -1;
    p4_link_status_t st = p4_link_call(&self->link, entry, args_addr, budget_ms, wr, nwr, rd, nrd, to, res);
    if (function && st != P4_LINK_OK && !strstr(self->link.op, function)) {
        char op[sizeof self->link.op];
        memcpy(op, self->link.op, sizeof op);
        int n = snprintf(self->link.op, sizeof self->link.op, "%.60s() (", function);
        if (n > 0 && (size_t)n < sizeof self->link.op - 2) {
            size_t room = sizeof self->link.op - (size_t)n - 2;
            size_t k = strnlen(op, room);
            memcpy(self->link.op + n, op, k);
            self->link.op[n + (int)k] = ')';
            self->link.op[n + (int)k + 1] = '\0';
        }
    }
    if (finish_fn(self, &g, st, to, function) < 0) {
        if (nrd)
            p4py_note_arrays_unchanged();
        return -1;
    }
    if (res->bad_free) {
        p4py_state *bs = link_state(self);
        if (bs)
            p4py_raise_bad_free(bs, &self->link, function, res->bad_free);
        return -1;
    }
    return 0;
}

static PyObject *Link_call(LinkObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"entry", "args_addr", "budget_ms", "writes", "reads", "timeout", NULL};
    uint32_t entry, args_addr = 0, budget = 0;
    PyObject *writes = NULL, *reads = NULL;
    int64_t tmo = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|O&O&OO$O&:call", kwlist, p4py_conv_u32, &entry,
                                     p4py_conv_u32, &args_addr, p4py_conv_u32, &budget, &writes,
                                     &reads, p4py_conv_timeout, &tmo))
        return NULL;
    PyObject *empty = PyTuple_New(0);
    if (!empty)
        return NULL;
    callbufs_t c;
    int r = p4py_callbufs_get(writes ? writes : empty, reads ? reads : empty, &c);
    Py_DECREF(empty);
    if (r < 0)
        return NULL;
    p4_call_result_t res;
    r = p4py_link_call((PyObject *)self, entry, args_addr, budget, c.wr, (size_t)c.nw, c.rd,
                       (size_t)c.nr, tmo, NULL, &res);
    PyObject *out = NULL;
    if (r == 0)
        out = Py_BuildValue("(kkkKKO)", (unsigned long)res.a0, (unsigned long)res.ret_lo,
                            (unsigned long)res.ret_hi, (unsigned long long)res.cycles,
                            (unsigned long long)res.instret, c.results);
    p4py_callbufs_release(&c);
    return out;
}

static PyObject *Link_cancel(LinkObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->ready)
        Py_RETURN_FALSE;
    return PyBool_FromLong(p4_link_cancel(&self->link));
}

static PyObject *Link_take_console(LinkObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->ready)
        return PyBytes_FromStringAndSize("", 0);
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        /* another thread is mid-request (and may need the GIL to finish) */
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
    PyObject *b = PyBytes_FromStringAndSize((const char *)self->link.con, (Py_ssize_t)self->link.con_len);
    if (b)
        self->link.con_len = 0;
    PyThread_release_lock(self->lock);
    return b;
}

static PyObject *Link_close(LinkObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->ready)
        Py_RETURN_NONE;
    gil_ctx_t g;
    if (link_enter(self, &g) < 0)
        return NULL;
    p4_link_close(&self->link);
    link_leave(self, &g);
    Py_RETURN_NONE;
}

static PyObject *Link_fileno(LinkObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(self->ready ? self->link.fd : -1);
}

static PyObject *Link_repr(LinkObject *self)
{
    return PyUnicode_FromFormat("<p4jit._core.Link fd=%d%s requests=%llu>", self->ready ? self->link.fd : -1,
                                (!self->ready || self->link.closed) ? " closed" : "",
                                (unsigned long long)self->link.requests);
}

/* ---- attributes ----------------------------------------------------------------- */

#define COUNTER_AT(name, field)                                                        \
    static PyObject *get_##name(LinkObject *self, void *Py_UNUSED(c))                   \
    {                                                                                  \
        return PyLong_FromUnsignedLongLong(self->link.field);                           \
    }
#define COUNTER(field) COUNTER_AT(field, field)
COUNTER(requests)
COUNTER(responses)
COUNTER(events)
COUNTER(bytes_sent)
COUNTER(bytes_received)
COUNTER(resyncs)
COUNTER(timeouts)
COUNTER_AT(spin_hits, spin.hits)
COUNTER_AT(spin_misses, spin.misses)
COUNTER_AT(garbage_bytes, dec.garbage)
COUNTER_AT(checksum_errors, dec.bad_checksums)
COUNTER(stale_dropped)
COUNTER(crc_dropped)
COUNTER(cancels)

static PyObject *get_spin_us(LinkObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLong(self->link.spin.budget_us);
}

static int set_spin_us(LinkObject *self, PyObject *v, void *Py_UNUSED(c))
{
    uint32_t us;
    if (!v) {
        PyErr_SetString(PyExc_TypeError, "cannot delete spin_us");
        return -1;
    }
    if (!conv_spin_us(v, &us))
        return -1;
    p4_spin_init(&self->link.spin, us);
    return 0;
}

static PyObject *get_fd(LinkObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(self->ready ? self->link.fd : -1);
}

static PyObject *get_closed(LinkObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(!self->ready || self->link.closed);
}

static PyObject *get_timeout(LinkObject *self, void *Py_UNUSED(c))
{
    return PyFloat_FromDouble(self->link.timeout_ms / 1000.0);
}

static int set_timeout(LinkObject *self, PyObject *v, void *Py_UNUSED(c))
{
    int64_t ms;
    if (!v || v == Py_None) {
        PyErr_SetString(PyExc_TypeError, "timeout must be a number of seconds");
        return -1;
    }
    if (!p4py_conv_timeout(v, &ms))
        return -1;
    self->link.timeout_ms = ms > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    return 0;
}

static PyObject *get_max_payload(LinkObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLong(self->link.max_payload);
}

static int set_max_payload(LinkObject *self, PyObject *v, void *Py_UNUSED(c))
{
    uint32_t n;
    if (!v) {
        PyErr_SetString(PyExc_TypeError, "cannot delete max_payload");
        return -1;
    }
    if (!p4py_conv_u32(v, &n))
        return -1;
    if (n < 64) {
        PyErr_SetString(PyExc_ValueError, "max_payload must be at least 64 bytes");
        return -1;
    }
    self->link.max_payload = n;
    return 0;
}

static PyObject *get_v1(LinkObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->link.v1);
}

static int set_v1(LinkObject *self, PyObject *v, void *Py_UNUSED(c))
{
    int b = v ? PyObject_IsTrue(v) : 0;
    if (b < 0)
        return -1;
    self->link.v1 = b != 0;
    return 0;
}

#define BOOL_FIELD(name, field)                                                                    \
    static PyObject *get_##name(LinkObject *self, void *Py_UNUSED(c))                              \
    {                                                                                              \
        return PyBool_FromLong(self->link.field);                                                  \
    }                                                                                              \
    static int set_##name(LinkObject *self, PyObject *v, void *Py_UNUSED(c))                       \
    {                                                                                              \
        int b = v ? PyObject_IsTrue(v) : 0;                                                        \
        if (b < 0)                                                                                 \
            return -1;                                                                             \
        self->link.field = b != 0;                                                                 \
        return 0;                                                                                  \
    }
BOOL_FIELD(framing_v2, v2)
BOOL_FIELD(can_cancel, can_cancel)

static PyObject *get_in_flight(LinkObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->ready && (atomic_load(&self->link.flight) & 1u));
}

static PyObject *get_stack_guard(LinkObject *self, void *Py_UNUSED(c))
{
    return Py_BuildValue("(kk)", (unsigned long)self->link.guard_base, (unsigned long)self->link.guard_size);
}

static PyObject *get_console_cb(LinkObject *self, void *Py_UNUSED(c))
{
    return Py_NewRef(self->console_cb ? self->console_cb : Py_None);
}

static int set_console_cb(LinkObject *self, PyObject *v, void *Py_UNUSED(c))
{
    if (v && v != Py_None && !PyCallable_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "console_callback must be callable or None");
        return -1;
    }
    Py_XSETREF(self->console_cb, v && v != Py_None ? Py_NewRef(v) : NULL);
    return 0;
}

static PyGetSetDef Link_getset[] = {
    {"fd", (getter)get_fd, NULL, "The file descriptor (not owned).", NULL},
    {"closed", (getter)get_closed, NULL, "True after close() or a disconnect.", NULL},
    {"timeout", (getter)get_timeout, (setter)set_timeout,
     "Seconds the link waits without any byte moving.", NULL},
    {"max_payload", (getter)get_max_payload, (setter)set_max_payload,
     "Largest request payload the device accepts (chunks and CALL splitting).", NULL},
    {"v1", (getter)get_v1, (setter)set_v1, "The device speaks protocol v1 only.", NULL},
    {"console_callback", (getter)get_console_cb, (setter)set_console_cb,
     "cb(bytes) for console text as it arrives (also while a call runs), or None to buffer it "
     "for take_console(). It must not make device requests (RuntimeError).", NULL},
    {"framing_v2", (getter)get_framing_v2, (setter)set_framing_v2,
     "v2 framing (seq + CRC-32): switched on by info() when the device lists "
     "P4_CAP_FRAMING_V2.", NULL},
    {"can_cancel", (getter)get_can_cancel, (setter)set_can_cancel,
     "The device stops running code on CANCEL (info() sets it from P4_CAP_CANCEL).", NULL},
    {"in_flight", (getter)get_in_flight, NULL,
     "True while a request waits for its answer (any thread may read it; cancel() acts then).",
     NULL},
    {"stack_guard", (getter)get_stack_guard, NULL,
     "(base, size) of the device's stack guard region from INFO, (0, 0) if none.", NULL},
    {"stale_dropped", (getter)get_stale_dropped, NULL,
     "Answers dropped because their seq was not the pending request's (stale, duplicated).", NULL},
    {"crc_dropped", (getter)get_crc_dropped, NULL, "Frames dropped for a bad CRC-32/checksum.", NULL},
    {"cancels", (getter)get_cancels, NULL, "CANCEL requests sent.", NULL},
    {"requests", (getter)get_requests, NULL, "Request frames sent (= round trips).", NULL},
    {"responses", (getter)get_responses, NULL, "Response frames received.", NULL},
    {"events", (getter)get_events, NULL, "Event frames (console) received.", NULL},
    {"bytes_sent", (getter)get_bytes_sent, NULL, "Bytes written to the fd.", NULL},
    {"bytes_received", (getter)get_bytes_received, NULL, "Bytes read from the fd.", NULL},
    {"resyncs", (getter)get_resyncs, NULL, "Resynchronisations done.", NULL},
    {"timeouts", (getter)get_timeouts, NULL, "Requests that timed out.", NULL},
    {"spin_us", (getter)get_spin_us, (setter)set_spin_us,
     "Microseconds a wait retries its non-blocking I/O (sched_yield between tries) before it "
     "sleeps in poll(); 0 = never spin. Default $P4JIT_SPIN_US, else 200.", NULL},
    {"spin_hits", (getter)get_spin_hits, NULL, "Spins that caught the bytes without sleeping.", NULL},
    {"spin_misses", (getter)get_spin_misses, NULL, "Spins that ran out (and slept).", NULL},
    {"garbage_bytes", (getter)get_garbage_bytes, NULL, "Bytes skipped outside frames.", NULL},
    {"checksum_errors", (getter)get_checksum_errors, NULL, "Frames received with a bad checksum.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define M(name, flags, doc) {#name, (PyCFunction)(void (*)(void))Link_##name, flags, doc}
static PyMethodDef Link_methods[] = {
    M(request, METH_VARARGS | METH_KEYWORDS,
      "request(cmd, payload=b'', *, timeout=None, what=None) -> bytes\n--\n\nOne round trip; "
      "raises on an error frame. payload: a buffer or a tuple/list of buffers; what: the "
      "operation, for messages."),
    M(exchange, METH_VARARGS | METH_KEYWORDS,
      "exchange(cmd, payload=b'', *, timeout=None, what=None) -> (flags, bytes)\n--\n\nLike request, but "
      "returns error frames instead of raising."),
    M(ping, METH_VARARGS | METH_KEYWORDS,
      "ping(data=None, *, timeout=None) -> bytes\n--\n\nPING; the echo is checked."),
    M(write_mem, METH_VARARGS | METH_KEYWORDS,
      "write_mem(addr, data, *, timeout=None) -> int\n--\n\nWRITE_MEM in chunks of max_payload-4."),
    M(read_mem, METH_VARARGS | METH_KEYWORDS,
      "read_mem(addr, size, *, timeout=None) -> bytes\n--\n\nREAD_MEM in chunks of max_payload."),
    M(read_into, METH_VARARGS | METH_KEYWORDS,
      "read_into(addr, buffer, *, timeout=None) -> int\n--\n\nREAD_MEM into a writable buffer, "
      "which is written only once everything arrived intact (unchanged on an error)."),
    M(execute, METH_VARARGS | METH_KEYWORDS,
      "execute(addr, *, timeout=None) -> int\n--\n\nEXEC (v1); returns a0."),
    M(call, METH_VARARGS | METH_KEYWORDS,
      "call(entry, args_addr=0, budget_ms=0, writes=(), reads=(), *, timeout=None)\n--\n\n"
      "Batched CALL -> (a0, ret_lo, ret_hi, cycles, instret, reads)."),
    M(info, METH_VARARGS | METH_KEYWORDS,
      "info(*, timeout=None) -> dict\n--\n\nINFO, decoded: the fields of P4_INFO_HEAD_FIELDS, "
      "'regions' (a tuple of dicts of P4_INFO_REGION_FIELDS) and the tail fields the device sent. "
      "UnsupportedCommandError from a v1 device."),
    M(heap_info, METH_VARARGS | METH_KEYWORDS,
      "heap_info(*, timeout=None) -> dict\n--\n\nHEAP_INFO, decoded (P4_HEAP_INFO_FIELDS)."),
    M(alloc, METH_VARARGS | METH_KEYWORDS,
      "alloc(size, caps, alignment, *, timeout=None) -> int\n--\n\nALLOC; the device address. "
      "AllocationError when the device has no room."),
    M(free, METH_VARARGS | METH_KEYWORDS,
      "free(addr, *, timeout=None)\n--\n\nFREE of one allocation (its start address)."),
    M(free_all, METH_VARARGS | METH_KEYWORDS,
      "free_all(*, timeout=None) -> dict\n--\n\nFREE_ALL (v2), decoded (P4_FREE_ALL_FIELDS: count, "
      "bytes, and kernel_count, kernel_bytes when the device reclaims kernels' malloc)."),
    M(console_ctl, METH_VARARGS | METH_KEYWORDS,
      "console_ctl(enable, *, timeout=None) -> bool\n--\n\nCONSOLE_CTL (v2): console event "
      "frames on/off; returns the previous state."),
    M(take_console, METH_NOARGS, "take_console() -> bytes\n--\n\nDrain buffered console text."),
    M(cancel, METH_NOARGS,
      "cancel() -> bool\n--\n\nStop the request in flight, from any thread (no lock; safe in a "
      "signal handler). The waiting call sends CANCEL and raises CallCancelledError (or returns "
      "its result if the kernel finished first). False if nothing was in flight."),
    M(resync, METH_VARARGS | METH_KEYWORDS,
      "resync(*, timeout=None)\n--\n\nResynchronise now (PING with a nonce)."),
    M(close, METH_NOARGS, "close()\n--\n\nDetach from the fd (which stays open)."),
    M(fileno, METH_NOARGS, "fileno() -> int"),
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Link_slots[] = {
    {Py_tp_doc, "Link(fd, timeout=5.0, *, spin_us=None)\n--\n\nRequest/response with a p4jit device "
                "over a file descriptor (socket, pty, serial port). See docs/HOST_CORE.md."},
    {Py_tp_init, Link_init},
    {Py_tp_dealloc, Link_dealloc},
    {Py_tp_traverse, Link_traverse},
    {Py_tp_clear, Link_clear},
    {Py_tp_methods, Link_methods},
    {Py_tp_getset, Link_getset},
    {Py_tp_repr, Link_repr},
    {0, NULL},
};

static PyType_Spec Link_spec = {
    .name = "p4jit._core.Link",
    .basicsize = sizeof(LinkObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = Link_slots,
};

int p4py_link_exec(PyObject *module)
{
    p4py_state *st = p4py_state_of(module);
    st->LinkType = PyType_FromModuleAndSpec(module, &Link_spec, NULL);
    if (!st->LinkType)
        return -1;
    if (PyModule_AddObjectRef(module, "Link", st->LinkType) < 0)
        return -1;
    return PyModule_AddIntConstant(module, "LINK_V1_MAX_PAYLOAD", P4_LINK_V1_MAX_PAYLOAD);
}
