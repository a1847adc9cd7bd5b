/*
 * shadow_py.c — p4jit._core.ShadowTable: the Python face of shadow.c.
 * Entries are (addr, size, caps, alignment, owner) tuples; owner references
 * are held by the table.
 */
#include "p4py.h"

#include "shadow.h"

typedef struct {
    PyObject_HEAD
    p4_shadow_t t;
} ShadowObject;

static PyObject *entry_tuple(const p4_shadow_entry_t *e)
{
    return Py_BuildValue("(kkkkO)", (unsigned long)e->addr, (unsigned long)e->size,
                         (unsigned long)e->caps, (unsigned long)e->alignment,
                         e->owner ? (PyObject *)e->owner : Py_None);
}

static int Shadow_init(ShadowObject *Py_UNUSED(self), PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, ":ShadowTable", kwlist))
        return -1;
    return 0;
}

static int Shadow_traverse(ShadowObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    for (size_t i = 0; i < self->t.n; i++)
        Py_VISIT((PyObject *)self->t.v[i].owner);
    return 0;
}

static int Shadow_clear_refs(ShadowObject *self)
{
    /* Detach first so a finaliser running during a DECREF sees a consistent table. */
    p4_shadow_t old = self->t;
    p4_shadow_init(&self->t);
    for (size_t i = 0; i < old.n; i++)
        Py_XDECREF((PyObject *)old.v[i].owner);
    p4_shadow_free(&old);
    return 0;
}

static void Shadow_dealloc(ShadowObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Shadow_clear_refs(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *Shadow_add(ShadowObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"addr", "size", "caps", "alignment", "owner", NULL};
    p4_shadow_entry_t e = {0};
    PyObject *owner = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&|O&O&O:add", kwlist, p4py_conv_u32, &e.addr,
                                     p4py_conv_u32, &e.size, p4py_conv_u32, &e.caps, p4py_conv_u32,
                                     &e.alignment, &owner))
        return NULL;
    e.owner = Py_NewRef(owner);
    p4_shadow_status_t st = p4_shadow_add(&self->t, &e);
    if (st == P4_SHADOW_OK)
        Py_RETURN_NONE;
    Py_DECREF(owner);
    if (st == P4_SHADOW_NOMEM)
        return PyErr_NoMemory();
    if (st == P4_SHADOW_BAD_SIZE)
        return p4py_errorf(PyExc_ValueError,
                            "allocation at 0x%08lX of %lu bytes: the size must be > 0 and the "
                            "range must end below 4 GiB",
                            (unsigned long)e.addr, (unsigned long)e.size);
    ptrdiff_t i = p4_shadow_floor(&self->t, e.addr + e.size - 1);
    const p4_shadow_entry_t *o = i >= 0 ? &self->t.v[i] : NULL;
    return p4py_errorf(PyExc_ValueError,
                        "allocation at 0x%08lX of %lu bytes overlaps the recorded allocation at "
                        "0x%08lX (%lu bytes); the device handed out overlapping memory or the "
                        "table is stale",
                        (unsigned long)e.addr, (unsigned long)e.size,
                        (unsigned long)(o ? o->addr : 0), (unsigned long)(o ? o->size : 0));
}

static PyObject *Shadow_remove(ShadowObject *self, PyObject *arg)
{
    uint32_t addr;
    if (!p4py_conv_u32(arg, &addr))
        return NULL;
    p4_shadow_entry_t e;
    if (p4_shadow_remove(&self->t, addr, &e) != P4_SHADOW_OK) {
        PyObject *k = PyLong_FromUnsignedLong(addr);
        if (k) {
            PyErr_SetObject(PyExc_KeyError, k);
            Py_DECREF(k);
        }
        return NULL;
    }
    PyObject *t = entry_tuple(&e);
    Py_XDECREF((PyObject *)e.owner);
    return t;
}

static PyObject *Shadow_find(ShadowObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"addr", "size", NULL};
    uint32_t addr, size = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|O&:find", kwlist, p4py_conv_u32, &addr,
                                     p4py_conv_u32, &size))
        return NULL;
    ptrdiff_t i = p4_shadow_find(&self->t, addr, size);
    if (i < 0)
        Py_RETURN_NONE;
    return entry_tuple(&self->t.v[i]);
}

static PyObject *Shadow_check(ShadowObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"addr", "size", "what", NULL};
    PyObject *addr_o;
    unsigned long long size;
    const char *what = "access";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OK|s:check", kwlist, &addr_o, &size, &what))
        return NULL;
    /* Any int: an address past 32 bits is simply not ours. */
    int overflow = 0;
    long long a = PyLong_AsLongLongAndOverflow(addr_o, &overflow);
    if (a == -1 && PyErr_Occurred())
        return NULL;
    if (!overflow && a >= 0 && a <= (long long)UINT32_MAX && size <= 0xFFFFFFFFull) {
        ptrdiff_t i = p4_shadow_find(&self->t, (uint32_t)a, size);
        if (i >= 0)
            return entry_tuple(&self->t.v[i]);
    }
    if (overflow || a < 0 || a > (long long)UINT32_MAX)
        return PyErr_Format(PyExc_PermissionError,
                            "%s of %llu bytes at %R: not a 32-bit device address; use an address "
                            "returned by allocate()",
                            what, size, addr_o);
    uint32_t addr = (uint32_t)a;
    ptrdiff_t f = p4_shadow_floor(&self->t, addr);
    if (f >= 0) {
        const p4_shadow_entry_t *e = &self->t.v[f];
        uint64_t end = (uint64_t)e->addr + e->size;
        if (addr < end)
            return p4py_errorf(PyExc_PermissionError,
                                "%s of %llu bytes at 0x%08lX runs past the end of the allocation "
                                "at 0x%08lX (%lu bytes, ends at 0x%08llX) by %llu bytes; stay "
                                "within what you allocated",
                                what, size, (unsigned long)addr, (unsigned long)e->addr,
                                (unsigned long)e->size, (unsigned long long)end,
                                (unsigned long long)((uint64_t)addr + size - end));
    }
    if (self->t.n == 0)
        return p4py_errorf(PyExc_PermissionError,
                            "%s of %llu bytes at 0x%08lX: this session has no device allocations; "
                            "allocate memory with device.allocate() and use the address it "
                            "returns",
                            what, size, (unsigned long)addr);
    const p4_shadow_entry_t *near = &self->t.v[f >= 0 ? f : 0];
    return p4py_errorf(PyExc_PermissionError,
                        "%s of %llu bytes at 0x%08lX: not inside any allocation made by this "
                        "session (%zu live; nearest at 0x%08lX, %lu bytes); allocate memory with "
                        "device.allocate() and use the address it returns",
                        what, size, (unsigned long)addr, self->t.n, (unsigned long)near->addr,
                        (unsigned long)near->size);
}

static PyObject *Shadow_entries(ShadowObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"owner", NULL};
    PyObject *owner = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$O:entries", kwlist, &owner))
        return NULL;
    PyObject *list = PyList_New(0);
    if (!list)
        return NULL;
    for (size_t i = 0; i < self->t.n; i++) {
        PyObject *o = self->t.v[i].owner ? (PyObject *)self->t.v[i].owner : Py_None;
        if (owner) {
            int eq = o == owner ? 1 : PyObject_RichCompareBool(o, owner, Py_EQ);
            if (eq < 0) {
                Py_DECREF(list);
                return NULL;
            }
            if (!eq)
                continue;
        }
        PyObject *t = entry_tuple(&self->t.v[i]);
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(t);
    }
    return list;
}

static PyObject *Shadow_entries_noargs(ShadowObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *empty = PyTuple_New(0);
    if (!empty)
        return NULL;
    PyObject *r = Shadow_entries(self, empty, NULL);
    Py_DECREF(empty);
    return r;
}

static PyObject *Shadow_clear(ShadowObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = Shadow_entries_noargs(self, NULL);
    if (!list)
        return NULL;
    Shadow_clear_refs(self);
    return list;
}

static Py_ssize_t Shadow_len(ShadowObject *self)
{
    return (Py_ssize_t)self->t.n;
}

static int Shadow_contains(ShadowObject *self, PyObject *key)
{
    int overflow = 0;
    long long a = PyLong_Check(key) ? PyLong_AsLongLongAndOverflow(key, &overflow) : -1;
    if (a == -1 && PyErr_Occurred())
        return -1;
    if (overflow || a < 0 || a > (long long)UINT32_MAX)
        return 0;
    ptrdiff_t i = p4_shadow_floor(&self->t, (uint32_t)a);
    return i >= 0 && self->t.v[i].addr == (uint32_t)a;
}

static PyObject *get_total(ShadowObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(self->t.total);
}

static PyObject *Shadow_repr(ShadowObject *self)
{
    return PyUnicode_FromFormat("<p4jit._core.ShadowTable: %zu allocations, %llu bytes>", self->t.n,
                                (unsigned long long)self->t.total);
}

static PyObject *Shadow_iter(ShadowObject *self)
{
    PyObject *l = Shadow_entries_noargs(self, NULL);
    if (!l)
        return NULL;
    PyObject *it = PyObject_GetIter(l);
    Py_DECREF(l);
    return it;
}

static PyGetSetDef Shadow_getset[] = {
    {"total_bytes", (getter)get_total, NULL, "Bytes in all recorded allocations.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Shadow_methods[] = {
    {"add", (PyCFunction)(void (*)(void))Shadow_add, METH_VARARGS | METH_KEYWORDS,
     "add(addr, size, caps=0, alignment=0, owner=None)\n--\n\nRecord an allocation; ValueError "
     "on overlap or size 0."},
    {"remove", (PyCFunction)Shadow_remove, METH_O,
     "remove(addr) -> entry\n--\n\nForget the allocation based at addr; KeyError if unknown."},
    {"find", (PyCFunction)(void (*)(void))Shadow_find, METH_VARARGS | METH_KEYWORDS,
     "find(addr, size=1) -> entry or None\n--\n\nThe allocation containing [addr, addr+size)."},
    {"check", (PyCFunction)(void (*)(void))Shadow_check, METH_VARARGS | METH_KEYWORDS,
     "check(addr, size, what='access') -> entry\n--\n\nPermissionError unless [addr, addr+size) "
     "lies inside one allocation."},
    {"entries", (PyCFunction)(void (*)(void))Shadow_entries, METH_VARARGS | METH_KEYWORDS,
     "entries(*, owner=...) -> list\n--\n\nAll entries sorted by address (only owner's if given)."},
    {"clear", (PyCFunction)Shadow_clear, METH_NOARGS,
     "clear() -> list\n--\n\nRemove and return every entry (free-all)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Shadow_slots[] = {
    {Py_tp_doc, "ShadowTable()\n--\n\nThe host's record of its device allocations; the bounds "
                "check of every memory access. See docs/HOST_CORE.md."},
    {Py_tp_init, Shadow_init},
    {Py_tp_dealloc, Shadow_dealloc},
    {Py_tp_traverse, Shadow_traverse},
    {Py_tp_clear, Shadow_clear_refs},
    {Py_tp_methods, Shadow_methods},
    {Py_tp_getset, Shadow_getset},
    {Py_tp_repr, Shadow_repr},
    {Py_tp_iter, Shadow_iter},
    {Py_sq_length, Shadow_len},
    {Py_sq_contains, Shadow_contains},
    {0, NULL},
};

static PyType_Spec Shadow_spec = {
    .name = "p4jit._core.ShadowTable",
    .basicsize = sizeof(ShadowObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Shadow_slots,
};

int p4py_shadow_exec(PyObject *module)
{
    p4py_state *st = p4py_state_of(module);
    st->ShadowTableType = PyType_FromModuleAndSpec(module, &Shadow_spec, NULL);
    if (!st->ShadowTableType)
        return -1;
    return PyModule_AddObjectRef(module, "ShadowTable", st->ShadowTableType);
}
