/*
 * link_values_py.c — Python values <-> the C link's inputs and outputs (see
 * link_values_py.h).
 */
#include "link_values_py.h"

#include <string.h>

/* ---- payload buffers ------------------------------------------------------------ */


void p4py_txbufs_release(txbufs_t *t)
{
    if (t->views && t->views != &t->one) {
        for (int i = 0; i < t->n; i++)
            PyBuffer_Release(&t->views[i]);
        PyMem_Free(t->views);
        PyMem_Free(t->iov);
    } else if (t->views == &t->one) {
        PyBuffer_Release(&t->one);
    }
    t->views = NULL;
    t->iov = NULL;
    t->n = 0;
}

int p4py_txbufs_get(PyObject *payload, txbufs_t *t)
{
    memset(t, 0, sizeof *t);
    if (PyTuple_Check(payload) || PyList_Check(payload)) {
        PyObject *seq = PySequence_Fast(payload, "payload");
        if (!seq)
            return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        if (n > 4096) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "payload: at most 4096 buffers");
            return -1;
        }
        t->views = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Py_buffer));
        t->iov = PyMem_Calloc((size_t)(n ? n : 1), sizeof(struct iovec));
        if (!t->views || !t->iov) {
            PyMem_Free(t->views);
            PyMem_Free(t->iov);
            t->views = NULL;
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), &t->views[i], PyBUF_C_CONTIGUOUS) < 0) {
                Py_DECREF(seq);
                p4py_txbufs_release(t);
                return -1;
            }
            t->n = (int)i + 1;
            t->iov[i].iov_base = t->views[i].buf;
            t->iov[i].iov_len = (size_t)t->views[i].len;
        }
        t->n = (int)n;
        Py_DECREF(seq);
        return 0;
    }
    if (PyObject_GetBuffer(payload, &t->one, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    t->views = &t->one;
    t->one_iov.iov_base = t->one.buf;
    t->one_iov.iov_len = (size_t)t->one.len;
    t->iov = &t->one_iov;
    t->n = 1;
    return 0;
}

/* ---- table-decoded answers -> dicts ------------------------------------------- */

/* A decoded field as a Python object (U32 -> int, TEXT -> str, BYTES -> bytes). */
#define PY_U32(v, count) PyLong_FromUnsignedLong(v)
#define PY_TEXT(v, count) PyUnicode_DecodeUTF8((v), (Py_ssize_t)strlen(v), "replace")
#define PY_BYTES(v, count) PyBytes_FromStringAndSize((const char *)(v), (count))

static int put_item(PyObject *d, const char *key, PyObject *v)
{
    if (!v)
        return -1;
    int r = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return r;
}

#define X_PUT(field, kind, count)                                                                  \
    if (put_item(d, #field, PY_##kind(src->field, count)) < 0)                                     \
        goto fail;

static PyObject *region_dict(const p4_info_region_t *src)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    P4_INFO_REGION_FIELDS(X_PUT)
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

/* INFO -> {head fields..., "regions": (region dicts), tail fields present} */
PyObject *p4py_info_dict(const p4_info_t *src)
{
    PyObject *d = PyDict_New();
    PyObject *regions = PyTuple_New(src->regions_present);
    if (!d || !regions)
        goto fail;
    P4_INFO_HEAD_FIELDS(X_PUT)
    for (uint32_t i = 0; i < src->regions_present; i++) {
        PyObject *r = region_dict(&src->regions[i]);
        if (!r)
            goto fail;
        PyTuple_SET_ITEM(regions, i, r);
    }
    if (PyDict_SetItemString(d, "regions", regions) < 0)
        goto fail;
    Py_CLEAR(regions);
    {
        uint32_t k = 0; /* tail fields: only those the answer carried */
#define X_PUT_TAIL(field, kind, count)                                                             \
    if (k++ < src->tail_present && put_item(d, #field, PY_##kind(src->field, count)) < 0)          \
        goto fail;
        P4_INFO_TAIL_FIELDS(X_PUT_TAIL)
#undef X_PUT_TAIL
    }
    return d;
fail:
    Py_XDECREF(regions);
    Py_XDECREF(d);
    return NULL;
}

PyObject *p4py_heap_info_dict(const p4_heap_info_t *src)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    P4_HEAP_INFO_FIELDS(X_PUT)
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

/* FREE_ALL -> the fields the device sent (count, bytes[, kernel_count, kernel_bytes]) */
PyObject *p4py_free_all_dict(const p4_free_all_t *src)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    uint32_t k = 0;
#define X_PUT_PRESENT(field, kind, count)                                                          \
    if (k++ < src->present && put_item(d, #field, PY_##kind(src->field, count)) < 0)               \
        goto fail;
    P4_FREE_ALL_FIELDS(X_PUT_PRESENT)
#undef X_PUT_PRESENT
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

void p4py_callbufs_release(callbufs_t *c)
{
    for (Py_ssize_t i = 0; i < c->nwv; i++)
        PyBuffer_Release(&c->wviews[i]);
    for (Py_ssize_t i = 0; i < c->nrv; i++)
        if (c->rviews[i].obj)
            PyBuffer_Release(&c->rviews[i]);
    PyMem_Free(c->wr);
    PyMem_Free(c->rd);
    PyMem_Free(c->wviews);
    PyMem_Free(c->rviews);
    Py_CLEAR(c->results);
}

static int pair_items(PyObject *item, const char *what, Py_ssize_t i, PyObject **a, PyObject **b)
{
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
        PyErr_Format(PyExc_TypeError, "%s[%zd]: expected a tuple (addr, buffer), got %.80s", what, i,
                     Py_TYPE(item)->tp_name);
        return -1;
    }
    *a = PyTuple_GET_ITEM(item, 0);
    *b = PyTuple_GET_ITEM(item, 1);
    return 0;
}

int p4py_callbufs_get(PyObject *writes, PyObject *reads, callbufs_t *c)
{
    memset(c, 0, sizeof *c);
    PyObject *ws = PySequence_Fast(writes, "writes must be a sequence of (addr, buffer)");
    if (!ws)
        return -1;
    PyObject *rs = PySequence_Fast(reads, "reads must be a sequence of (addr, size or buffer)");
    if (!rs) {
        Py_DECREF(ws);
        return -1;
    }
    c->nw = PySequence_Fast_GET_SIZE(ws);
    c->nr = PySequence_Fast_GET_SIZE(rs);
    c->wr = PyMem_Calloc((size_t)c->nw + 1, sizeof *c->wr);
    c->wviews = PyMem_Calloc((size_t)c->nw + 1, sizeof *c->wviews);
    c->rd = PyMem_Calloc((size_t)c->nr + 1, sizeof *c->rd);
    c->rviews = PyMem_Calloc((size_t)c->nr + 1, sizeof *c->rviews);
    c->results = PyTuple_New(c->nr);
    if (!c->wr || !c->wviews || !c->rd || !c->rviews || !c->results) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < c->nw; i++) {
        PyObject *a, *b;
        if (pair_items(PySequence_Fast_GET_ITEM(ws, i), "writes", i, &a, &b) < 0 ||
            !p4py_conv_u32(a, &c->wr[i].addr))
            goto fail;
        if (PyObject_GetBuffer(b, &c->wviews[i], PyBUF_C_CONTIGUOUS) < 0)
            goto fail;
        c->nwv = i + 1;
        if (c->wviews[i].len > (Py_ssize_t)UINT32_MAX) {
            PyErr_Format(PyExc_ValueError, "writes[%zd]: buffer too large", i);
            goto fail;
        }
        c->wr[i].data = c->wviews[i].buf;
        c->wr[i].len = (uint32_t)c->wviews[i].len;
    }
    for (Py_ssize_t i = 0; i < c->nr; i++) {
        PyObject *a, *b;
        if (pair_items(PySequence_Fast_GET_ITEM(rs, i), "reads", i, &a, &b) < 0 ||
            !p4py_conv_u32(a, &c->rd[i].addr))
            goto fail;
        c->nrv = i + 1;
        if (PyLong_Check(b)) {
            uint32_t n;
            if (!p4py_conv_u32(b, &n))
                goto fail;
            PyObject *bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
            if (!bytes)
                goto fail;
            PyTuple_SET_ITEM(c->results, i, bytes);
            c->rd[i].dst = (uint8_t *)PyBytes_AS_STRING(bytes);
            c->rd[i].len = n;
        } else {
            if (PyObject_GetBuffer(b, &c->rviews[i], PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
                goto fail;
            if (c->rviews[i].len > (Py_ssize_t)UINT32_MAX) {
                PyErr_Format(PyExc_ValueError, "reads[%zd]: buffer too large", i);
                goto fail;
            }
            PyTuple_SET_ITEM(c->results, i, Py_NewRef(b));
            c->rd[i].dst = c->rviews[i].buf;
            c->rd[i].len = (uint32_t)c->rviews[i].len;
        }
    }
    Py_DECREF(ws);
    Py_DECREF(rs);
    return 0;
fail:
    Py_DECREF(ws);
    Py_DECREF(rs);
    p4py_callbufs_release(c);
    return -1;
}
