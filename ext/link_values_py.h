/*
 * link_values_py.h — Python values <-> the C link's inputs and outputs (the
 * Link type's helpers, link_values_py.c): buffers in as scatter lists,
 * decoded answers out as dicts. GIL held throughout.
 */
#ifndef P4_EXT_LINK_VALUES_PY_H
#define P4_EXT_LINK_VALUES_PY_H

#include "p4py.h"

/* A request payload: one buffer or a tuple/list of buffers, as iovecs. */
typedef struct {
    Py_buffer *views;
    struct iovec *iov;
    int n;
    Py_buffer one;
    struct iovec one_iov;
} txbufs_t;
int p4py_txbufs_get(PyObject *payload, txbufs_t *t);
void p4py_txbufs_release(txbufs_t *t);

/* CALL's writes ((addr, buffer), ...) and reads ((addr, n) or (addr, buffer), ...). */
typedef struct {
    p4_link_write_t *wr;
    p4_link_read_t *rd;
    Py_buffer *wviews, *rviews;
    Py_ssize_t nw, nr, nwv, nrv;
    PyObject *results; /* tuple of read results */
} callbufs_t;
int p4py_callbufs_get(PyObject *writes, PyObject *reads, callbufs_t *c);
void p4py_callbufs_release(callbufs_t *c);

/* INFO / HEAP_INFO, decoded by link_commands.c, as dicts keyed by the field
 * names of the protocol tables. New references, NULL with an exception. */
PyObject *p4py_info_dict(const p4_info_t *src);
PyObject *p4py_heap_info_dict(const p4_heap_info_t *src);
PyObject *p4py_free_all_dict(const p4_free_all_t *src);

#endif /* P4_EXT_LINK_VALUES_PY_H */
