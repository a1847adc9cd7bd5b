/*
 * marshal_py.c — p4jit._core.Marshaller and Plan: Python arguments → the
 * 32-slot buffer + array uploads, and after the call the sync-back of arrays
 * and the return value as a NumPy scalar. The only file that uses NumPy's C API.
 * One job (marshalling a call; Plan is the same in steps) in one file because
 * both types share the scalar/pointer packing and its messages; hence over
 * 600 lines.
 */
#include "p4py.h"

#include <stdarg.h>
#include <string.h>

/* This file owns NumPy's API table (import_array in p4py_marshal_exec). */
#include <numpy/arrayobject.h>
#include <numpy/arrayscalars.h>

#include "marshal.h"

/* ---- the compiled signature ----------------------------------------------------- */

enum { K_SCALAR = 0, K_POINTER = 1 };

typedef struct {
    PyObject *name;        /* str */
    uint8_t kind;          /* K_SCALAR / K_POINTER */
    uint8_t dtype;         /* p4_dtype_t (pointee for pointers) */
    uint8_t is_const;
    uint8_t slot;
    PyArray_Descr *descr;  /* NULL for void/struct */
    PyObject *scalar_type; /* np.int32 etc. (borrowed from descr->typeobj) */
} param_t;

typedef struct {
    PyObject_HEAD
    Py_ssize_t nparams;
    param_t *params;
    int ret_dtype; /* p4_dtype_t; P4_DT_VOID for void */
    int ret_slot;  /* -1 for void */
    PyArray_Descr *ret_descr;
    PyObject *fname; /* str, for messages */
    int sync;
    uint32_t align;
    uint32_t last_a0, last_ret_lo, last_ret_hi;
    uint64_t last_cycles, last_instret;
} MarshallerObject;

/* ---- one packed call -------------------------------------------------------------- */

typedef struct {
    int param;            /* index of the first parameter that uses it */
    PyObject *keep;       /* strong ref: what owns the bytes (array, copy, or buffer owner) */
    PyArrayObject *orig;  /* strong ref: non-contiguous array to copy back into, or NULL */
    Py_buffer view;       /* for plain buffers (view.obj != NULL) */
    PyObject *ident;      /* borrowed: the argument object (dedup) */
    uint8_t *data;
    size_t nbytes;
    int sync;             /* read back after the call */
    uint64_t offset;      /* in the arena */
} upload_t;

typedef struct {
    uint8_t slots[P4_ARGS_SIZE];
    int nup;
    upload_t up[P4_ARG_SLOTS];
    int up_of_param[P4_ARG_SLOTS]; /* upload index per parameter, -1 if none */
    uint64_t arena_bytes;
} pack_t;

static void pack_release(pack_t *p)
{
    for (int i = 0; i < p->nup; i++) {
        upload_t *u = &p->up[i];
        if (u->view.obj)
            PyBuffer_Release(&u->view);
        Py_CLEAR(u->keep);
        Py_CLEAR(u->orig);
    }
    p->nup = 0;
}

/* ---- messages --------------------------------------------------------------------- */

static PyObject *arg_error(MarshallerObject *m, PyObject *cls, Py_ssize_t i, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    PyOS_vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    PyErr_Format(cls, "argument %zd ('%U'): %s", i + 1, m->params[i].name, buf);
    return NULL;
}

/* "float64 with shape (3, 4)" into buf. */
static void describe_array(PyArrayObject *a, char *buf, size_t cap)
{
    PyObject *s = PyObject_Str((PyObject *)PyArray_DESCR(a));
    const char *dn = s ? PyUnicode_AsUTF8(s) : NULL;
    if (!dn) {
        PyErr_Clear();
        dn = "?";
    }
    size_t n = (size_t)PyOS_snprintf(buf, cap, "%s with shape (", dn);
    Py_XDECREF(s);
    int nd = PyArray_NDIM(a);
    for (int k = 0; k < nd && n < cap; k++)
        n += (size_t)PyOS_snprintf(buf + n, cap - n, "%s%" NPY_INTP_FMT, k ? ", " : "",
                                   PyArray_DIM(a, k));
    if (n < cap)
        PyOS_snprintf(buf + n, cap - n, nd == 1 ? ",)" : ")");
}

static const char *type_name_of(PyObject *o)
{
    return Py_TYPE(o)->tp_name;
}

/* ---- scalars ---------------------------------------------------------------------- */

static int pack_scalar(MarshallerObject *m, Py_ssize_t i, PyObject *o, uint8_t *slots)
{
    const param_t *p = &m->params[i];
    p4_dtype_t dt = (p4_dtype_t)p->dtype;
    const p4_dtype_info_t *info = &p4_dtype_info[dt];
    unsigned slot = p->slot;

    /* NumPy scalars (and 0-d arrays): exactly the parameter's type. */
    int is_np = PyArray_IsScalar(o, Generic);
    if (is_np || (PyArray_Check(o) && PyArray_NDIM((PyArrayObject *)o) == 0)) {
        PyArray_Descr *d = is_np ? PyArray_DescrFromScalar(o) : (Py_INCREF(PyArray_DESCR((PyArrayObject *)o)), PyArray_DESCR((PyArrayObject *)o));
        if (!d)
            return -1;
        int same = Py_TYPE(o) == (PyTypeObject *)p->scalar_type || PyArray_EquivTypes(d, p->descr);
        Py_DECREF(d);
        if (!same) {
            PyObject *s = is_np ? PyObject_Str((PyObject *)Py_TYPE(o)) : NULL;
            char got[160];
            if (is_np)
                PyOS_snprintf(got, sizeof got, "%s", Py_TYPE(o)->tp_name);
            else
                describe_array((PyArrayObject *)o, got, sizeof got);
            Py_XDECREF(s);
            arg_error(m, PyExc_TypeError, i,
                      "expected %s (np.%s(...) or a Python %s), got %s", info->name, info->name,
                      info->is_float ? "float" : dt == P4_DT_BOOL ? "bool" : "int", got);
            return -1;
        }
        union {
            p4_value_t v;
            uint8_t raw[16];
        } u;
        memset(&u, 0, sizeof u);
        if (is_np)
            PyArray_ScalarAsCtype(o, &u);
        else
            memcpy(&u, PyArray_DATA((PyArrayObject *)o), info->size);
        switch (dt) {
        case P4_DT_FLOAT32: p4_slots_put_f32(slots, slot, u.v.f32); break;
        case P4_DT_FLOAT64: p4_slots_put_f64(slots, slot, u.v.f64); break;
        case P4_DT_BOOL: p4_slots_put_int(slots, slot, dt, u.raw[0] != 0); break;
        case P4_DT_INT8: p4_slots_put_int(slots, slot, dt, (uint64_t)(int64_t)u.v.i8); break;
        case P4_DT_UINT8: p4_slots_put_int(slots, slot, dt, u.v.u8); break;
        case P4_DT_INT16: p4_slots_put_int(slots, slot, dt, (uint64_t)(int64_t)u.v.i16); break;
        case P4_DT_UINT16: p4_slots_put_int(slots, slot, dt, u.v.u16); break;
        case P4_DT_INT32: p4_slots_put_int(slots, slot, dt, (uint64_t)(int64_t)u.v.i32); break;
        case P4_DT_UINT32: p4_slots_put_int(slots, slot, dt, u.v.u32); break;
        case P4_DT_INT64: p4_slots_put_int(slots, slot, dt, (uint64_t)u.v.i64); break;
        case P4_DT_UINT64: p4_slots_put_int(slots, slot, dt, u.v.u64); break;
        default: break;
        }
        return 0;
    }

    if (info->is_float) {
        double v;
        if (PyFloat_Check(o))
            v = PyFloat_AS_DOUBLE(o);
        else if (PyLong_Check(o)) {
            v = PyLong_AsDouble(o);
            if (v == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                arg_error(m, PyExc_TypeError, i, "the int is too large for %s", info->name);
                return -1;
            }
        } else {
            arg_error(m, PyExc_TypeError, i, "expected %s (np.%s(...) or a Python float), got %s",
                      info->name, info->name, type_name_of(o));
            return -1;
        }
        if (dt == P4_DT_FLOAT32)
            p4_slots_put_f32(slots, slot, (float)v);
        else
            p4_slots_put_f64(slots, slot, v);
        return 0;
    }

    if (!PyLong_Check(o)) {
        arg_error(m, PyExc_TypeError, i, "expected %s (np.%s(...) or a Python %s), got %s%s",
                  info->name, info->name, dt == P4_DT_BOOL ? "bool" : "int", type_name_of(o),
                  PyFloat_Check(o) ? " (convert it explicitly; a float is never truncated silently)" : "");
        return -1;
    }
    int overflow = 0;
    long long sv = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (sv == -1 && PyErr_Occurred())
        return -1;
    uint64_t bits;
    bool fits;
    if (overflow > 0) {
        unsigned long long uv = PyLong_AsUnsignedLongLong(o);
        if (uv == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            fits = false;
        } else {
            fits = p4_dtype_fits_unsigned(dt, uv);
        }
        bits = uv;
    } else if (overflow < 0) {
        fits = false;
        bits = 0;
    } else {
        fits = p4_dtype_fits_signed(dt, sv);
        bits = (uint64_t)sv;
    }
    if (!fits) {
        PyObject *r = PyObject_Repr(o);
        const char *rs = r ? PyUnicode_AsUTF8(r) : "?";
        char range[96];
        if (info->is_signed)
            PyOS_snprintf(range, sizeof range, "%lld..%llu", (long long)info->min,
                          (unsigned long long)info->max);
        else
            PyOS_snprintf(range, sizeof range, "0..%llu", (unsigned long long)info->max);
        arg_error(m, PyExc_ValueError, i, "%.60s does not fit in %s (%s)", rs ? rs : "?", info->name,
                  range);
        Py_XDECREF(r);
        return -1;
    }
    p4_slots_put_int(slots, slot, dt, bits);
    return 0;
}

/* ---- pointers --------------------------------------------------------------------- */

static bool any_dtype(p4_dtype_t dt)
{
    return dt == P4_DT_VOID || dt == P4_DT_UINT8 || dt == P4_DT_STRUCT;
}

static const char *pointee_c(const param_t *p)
{
    return p4_dtype_info[p->dtype].name; /* a dtype name, "void" or "struct" */
}

static int sync_error(MarshallerObject *m, Py_ssize_t i)
{
    arg_error(m, PyExc_ValueError, i,
              "the buffer is read-only, but the kernel may modify it (%s*, not const) and it "
              "would be synced back: pass a writable array, declare the parameter const, or "
              "disable sync-back (func.sync_arrays = False)",
              pointee_c(&m->params[i]));
    return -1;
}

static int pack_pointer(MarshallerObject *m, Py_ssize_t i, PyObject *o, pack_t *pk)
{
    const param_t *p = &m->params[i];
    p4_dtype_t dt = (p4_dtype_t)p->dtype;
    int want_sync = m->sync && !p->is_const;
    pk->up_of_param[i] = -1;

    if (o == Py_None) {
        p4_slots_put_u32(pk->slots, p->slot, 0);
        return 0;
    }
    /* the same object passed twice shares one device copy */
    for (int k = 0; k < pk->nup; k++) {
        upload_t *u = &pk->up[k];
        if (u->ident != o)
            continue;
        if (want_sync && !u->sync) {
            if (u->view.obj) {
                if (u->view.readonly)
                    return sync_error(m, i);
            } else {
                if (!PyArray_ISWRITEABLE((PyArrayObject *)o))
                    return sync_error(m, i);
                if (u->keep != o && !u->orig)
                    u->orig = (PyArrayObject *)Py_NewRef(o);
            }
            u->sync = 1;
        }
        pk->up_of_param[i] = k;
        return 0;
    }
    if (PyArray_Check(o)) {
        PyArrayObject *a = (PyArrayObject *)o;
        if (!any_dtype(dt) && !PyArray_EquivTypes(PyArray_DESCR(a), p->descr)) {
            char got[200];
            describe_array(a, got, sizeof got);
            arg_error(m, PyExc_TypeError, i, "expected %s array of %s, got %s",
                      want_sync ? "a writable" : "an", p4_dtype_info[dt].name, got);
            return -1;
        }
        if (want_sync && !PyArray_ISWRITEABLE(a))
            return sync_error(m, i);
        upload_t *u = &pk->up[pk->nup];
        memset(u, 0, sizeof *u);
        u->param = (int)i;
        u->ident = o;
        u->sync = want_sync;
        if (PyArray_IS_C_CONTIGUOUS(a)) {
            u->keep = Py_NewRef(o);
            u->data = PyArray_DATA(a);
        } else {
            PyObject *c = PyArray_NewCopy(a, NPY_CORDER);
            if (!c)
                return -1;
            u->keep = c;
            u->data = PyArray_DATA((PyArrayObject *)c);
            if (want_sync)
                u->orig = (PyArrayObject *)Py_NewRef(o);
        }
        u->nbytes = (size_t)PyArray_NBYTES(a);
        pk->up_of_param[i] = pk->nup++;
        return 0;
    }
    /* a device-resident array: its address, no upload */
    if (!PyLong_Check(o) && !PyFloat_Check(o) && !PyUnicode_Check(o) && !PyObject_CheckBuffer(o)) {
        PyObject *addr = PyObject_GetAttrString(o, "__p4jit_device_address__");
        if (addr) {
            uint32_t a32;
            int ok = p4py_conv_u32(addr, &a32);
            Py_DECREF(addr);
            if (!ok) {
                PyErr_Clear();
                arg_error(m, PyExc_TypeError, i, "%s.__p4jit_device_address__ is not a 32-bit address",
                          type_name_of(o));
                return -1;
            }
            if (!any_dtype(dt)) {
                PyObject *dto = PyObject_GetAttrString(o, "dtype");
                if (dto) {
                    PyArray_Descr *d = NULL;
                    int conv = PyArray_DescrConverter(dto, &d);
                    int eq = conv ? PyArray_EquivTypes(d, p->descr) : 0;
                    Py_XDECREF(d);
                    Py_DECREF(dto);
                    if (!conv)
                        PyErr_Clear();
                    if (!eq) {
                        PyObject *s = PyObject_Str((PyObject *)p->descr);
                        arg_error(m, PyExc_TypeError, i, "expected a device array of %s, got a %s of another dtype",
                                  p4_dtype_info[dt].name, type_name_of(o));
                        Py_XDECREF(s);
                        return -1;
                    }
                } else {
                    PyErr_Clear();
                }
            }
            p4_slots_put_u32(pk->slots, p->slot, a32);
            return 0;
        }
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
    }
    /* bytes-like objects, for untyped pointers */
    if (any_dtype(dt) && PyObject_CheckBuffer(o)) {
        upload_t *u = &pk->up[pk->nup];
        memset(u, 0, sizeof *u);
        if (PyObject_GetBuffer(o, &u->view, want_sync ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
            if (want_sync && PyErr_ExceptionMatches(PyExc_BufferError) &&
                PyObject_GetBuffer(o, &u->view, PyBUF_SIMPLE) == 0) {
                PyBuffer_Release(&u->view);
                PyErr_Clear();
                memset(&u->view, 0, sizeof u->view);
                return sync_error(m, i);
            }
            PyErr_Clear();
            memset(&u->view, 0, sizeof u->view);
            arg_error(m, PyExc_TypeError, i, "expected a C-contiguous bytes-like object or array, got %s",
                      type_name_of(o));
            return -1;
        }
        u->param = (int)i;
        u->ident = o;
        u->sync = want_sync;
        u->data = u->view.buf;
        u->nbytes = (size_t)u->view.len;
        pk->up_of_param[i] = pk->nup++;
        return 0;
    }
    if (any_dtype(dt))
        arg_error(m, PyExc_TypeError, i, "expected a NumPy array, a bytes-like object, a device array or None (%s*), got %s",
                  pointee_c(p), type_name_of(o));
    else
        arg_error(m, PyExc_TypeError, i, "expected %s array of %s, a device array or None, got %s",
                  want_sync ? "a writable" : "an", p4_dtype_info[dt].name, type_name_of(o));
    return -1;
}

static int pack_args(MarshallerObject *m, PyObject *const *args, Py_ssize_t nargs, pack_t *pk)
{
    memset(pk->slots, 0, sizeof pk->slots);
    pk->nup = 0;
    pk->arena_bytes = 0;
    if (nargs != m->nparams) {
        PyErr_Format(PyExc_TypeError, "%U() takes %zd argument%s, got %zd", m->fname, m->nparams,
                     m->nparams == 1 ? "" : "s", nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        int r = m->params[i].kind == K_SCALAR ? pack_scalar(m, i, args[i], pk->slots)
                                              : pack_pointer(m, i, args[i], pk);
        if (r < 0) {
            pack_release(pk);
            return -1;
        }
    }
    uint64_t off = 0;
    for (int k = 0; k < pk->nup; k++) {
        off = p4_align_up(off, m->align);
        pk->up[k].offset = off;
        off += pk->up[k].nbytes;
    }
    pk->arena_bytes = off;
    return 0;
}

/* Patch pointer slots for an arena at base. */
static void pack_place(MarshallerObject *m, pack_t *pk, uint32_t base)
{
    for (Py_ssize_t i = 0; i < m->nparams; i++) {
        if (m->params[i].kind != K_POINTER || pk->up_of_param[i] < 0)
            continue;
        p4_slots_put_u32(pk->slots, m->params[i].slot, base + (uint32_t)pk->up[pk->up_of_param[i]].offset);
    }
}

/* After a successful call: copy temporaries back, decode the return value. */
static PyObject *pack_finish(MarshallerObject *m, pack_t *pk, uint32_t lo, uint32_t hi)
{
    for (int k = 0; k < pk->nup; k++) {
        upload_t *u = &pk->up[k];
        if (u->sync && u->orig && PyArray_CopyInto(u->orig, (PyArrayObject *)u->keep) < 0)
            return NULL;
    }
    if (m->ret_slot < 0)
        Py_RETURN_NONE;
    p4_value_t v = p4_ret_decode((p4_dtype_t)m->ret_dtype, (unsigned)m->ret_slot, lo, hi);
    if (m->ret_dtype == P4_DT_BOOL) {
        npy_bool b = v.b;
        return PyArray_Scalar(&b, m->ret_descr, NULL);
    }
    return PyArray_Scalar(&v, m->ret_descr, NULL);
}

/* ---- Marshaller type ------------------------------------------------------------ */

static PyArray_Descr *descr_for(p4_dtype_t dt)
{
#define X_NPY(id, name, ctype, npy, size, align, slots, sgn, flt, scalar, load, store, min, max) [P4_DT_##id] = npy,
    static const int npy_of[P4_DT_COUNT] = {P4_DTYPE_LIST(X_NPY)};
#undef X_NPY
    if (!p4_dtype_info[dt].is_scalar)
        return NULL;
    return PyArray_DescrFromType(npy_of[dt]);
}

static void clear_params(MarshallerObject *self)
{
    if (self->params) {
        for (Py_ssize_t i = 0; i < self->nparams; i++) {
            Py_CLEAR(self->params[i].name);
            Py_CLEAR(self->params[i].descr);
        }
        PyMem_Free(self->params);
        self->params = NULL;
    }
    self->nparams = 0;
}

static int Marshaller_init(MarshallerObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"core_spec", "sync", "align", "name", NULL};
    PyObject *spec, *name = NULL;
    int sync = 1;
    unsigned int align = 16;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|pIU:Marshaller", kwlist, &spec, &sync, &align, &name))
        return -1;
    if (align == 0 || (align & (align - 1)) || align > 4096) {
        PyErr_SetString(PyExc_ValueError, "align must be a power of two <= 4096");
        return -1;
    }
    PyObject *params, *ret_name_o, *ret_slot_o;
    if (!PyTuple_Check(spec) || !PyArg_ParseTuple(spec, "OUO:core_spec", &params, &ret_name_o, &ret_slot_o)) {
        if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError,
                            "core_spec must be Signature.core_spec(): (params, ret_dtype, ret_slot)");
        }
        return -1;
    }
    PyObject *seq = PySequence_Fast(params, "core_spec params must be a sequence");
    if (!seq)
        return -1;
    clear_params(self);
    Py_CLEAR(self->ret_descr);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > (Py_ssize_t)P4_ARG_SLOTS) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many parameters for the 32-slot ABI");
        return -1;
    }
    self->params = PyMem_Calloc((size_t)(n ? n : 1), sizeof(param_t));
    if (!self->params) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    self->nparams = n;
    int used[P4_ARG_SLOTS] = {0};
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pn, *kind_o, *dt_o;
        int is_const, slot;
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(item) || !PyArg_ParseTuple(item, "UUUpi", &pn, &kind_o, &dt_o, &is_const, &slot)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "core_spec param %zd must be (name, kind, dtype, const, slot)", i);
            goto fail;
        }
        param_t *p = &self->params[i];
        p->name = Py_NewRef(pn);
        const char *ks = PyUnicode_AsUTF8(kind_o), *ds = PyUnicode_AsUTF8(dt_o);
        if (!ks || !ds)
            goto fail;
        if (strcmp(ks, "scalar") == 0)
            p->kind = K_SCALAR;
        else if (strcmp(ks, "pointer") == 0)
            p->kind = K_POINTER;
        else {
            PyErr_Format(PyExc_ValueError, "parameter '%U': unknown kind %R", pn, kind_o);
            goto fail;
        }
        int dt = p4_dtype_from_name(ds);
        if (dt < 0 || (p->kind == K_SCALAR && !p4_dtype_info[dt].is_scalar)) {
            PyErr_Format(PyExc_ValueError, "parameter '%U': unsupported dtype %R", pn, dt_o);
            goto fail;
        }
        p->dtype = (uint8_t)dt;
        p->is_const = (uint8_t)is_const;
        unsigned ns = p->kind == K_SCALAR ? p4_dtype_slots((p4_dtype_t)dt) : 1;
        if (slot < 0 || slot + (int)ns > (int)P4_ARG_SLOTS) {
            PyErr_Format(PyExc_ValueError, "parameter '%U': slot %d out of range", pn, slot);
            goto fail;
        }
        for (unsigned k = 0; k < ns; k++) {
            if (used[slot + (int)k]++) {
                PyErr_Format(PyExc_ValueError, "parameter '%U': slot %d is used twice", pn, slot + (int)k);
                goto fail;
            }
        }
        p->slot = (uint8_t)slot;
        p->descr = descr_for((p4_dtype_t)dt);
        if (p->descr)
            p->scalar_type = (PyObject *)p->descr->typeobj;
    }
    Py_CLEAR(seq);
    const char *rs = PyUnicode_AsUTF8(ret_name_o);
    if (!rs)
        goto fail;
    int rdt = p4_dtype_from_name(rs);
    if (rdt < 0 || rdt == P4_DT_STRUCT) {
        PyErr_Format(PyExc_ValueError, "unsupported return dtype %R", ret_name_o);
        goto fail;
    }
    long rslot = PyLong_AsLong(ret_slot_o);
    if (rslot == -1 && PyErr_Occurred())
        goto fail;
    if (rdt == P4_DT_VOID)
        rslot = -1;
    else if (rslot != (p4_dtype_slots((p4_dtype_t)rdt) == 2 ? (long)P4_RET64_SLOT : (long)P4_RET_SLOT)) {
        PyErr_Format(PyExc_ValueError, "return slot %ld does not match the ABI for %s", rslot, rs);
        goto fail;
    }
    self->ret_dtype = rdt;
    self->ret_slot = (int)rslot;
    self->ret_descr = descr_for((p4_dtype_t)rdt);
    self->sync = sync;
    self->align = align;
    Py_XSETREF(self->fname, name ? Py_NewRef(name) : PyUnicode_FromString("function"));
    if (!self->fname)
        goto fail;
    return 0;
fail:
    Py_XDECREF(seq);
    clear_params(self);
    return -1;
}

static int Marshaller_traverse(MarshallerObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static void Marshaller_dealloc(MarshallerObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    clear_params(self);
    Py_CLEAR(self->ret_descr);
    Py_CLEAR(self->fname);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* call(link, entry, args_addr, arena_addr, arena_size, args, grow=None, budget_ms=0, timeout=None) */
static PyObject *Marshaller_call(MarshallerObject *self, PyObject *const *a, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *grow = Py_None, *budget_o = NULL, *timeout_o = Py_None;
    PyObject *opt[3] = {NULL, NULL, NULL};
    static const char *optnames[3] = {"grow", "budget_ms", "timeout"};
    if (nargs < 6 || nargs > 9) {
        PyErr_SetString(PyExc_TypeError,
                        "call(link, entry, args_addr, arena_addr, arena_size, args, grow=None, "
                        "budget_ms=0, timeout=None)");
        return NULL;
    }
    for (Py_ssize_t k = 6; k < nargs; k++)
        opt[k - 6] = a[k];
    if (kwnames) {
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); k++) {
            PyObject *kn = PyTuple_GET_ITEM(kwnames, k);
            int found = 0;
            for (int j = 0; j < 3; j++) {
                if (PyUnicode_CompareWithASCIIString(kn, optnames[j]) == 0) {
                    opt[j] = a[nargs + k];
                    found = 1;
                }
            }
            if (!found) {
                PyErr_Format(PyExc_TypeError, "call() got an unexpected keyword argument %R", kn);
                return NULL;
            }
        }
    }
    if (opt[0])
        grow = opt[0];
    budget_o = opt[1];
    if (opt[2])
        timeout_o = opt[2];
    uint32_t entry, args_addr, arena_addr, arena_size, budget = 0;
    int64_t tmo = -1;
    if (!p4py_conv_u32(a[1], &entry) || !p4py_conv_u32(a[2], &args_addr) ||
        !p4py_conv_u32(a[3], &arena_addr) || !p4py_conv_u32(a[4], &arena_size) ||
        (budget_o && budget_o != Py_None && !p4py_conv_u32(budget_o, &budget)) ||
        !p4py_conv_timeout(timeout_o, &tmo))
        return NULL;
    PyObject *argseq = PySequence_Fast(a[5], "args must be a tuple");
    if (!argseq)
        return NULL;
    pack_t pk;
    if (pack_args(self, PySequence_Fast_ITEMS(argseq), PySequence_Fast_GET_SIZE(argseq), &pk) < 0) {
        Py_DECREF(argseq);
        return NULL;
    }
    PyObject *result = NULL;
    if (pk.arena_bytes > arena_size) {
        if (grow == Py_None) {
            p4py_errorf(PyExc_ValueError,
                        "%s(): the array arguments need %llu bytes of device arena, %lu available "
                        "(pass grow=)",
                        PyUnicode_AsUTF8(self->fname), (unsigned long long)pk.arena_bytes,
                        (unsigned long)arena_size);
            goto out;
        }
        PyObject *r = PyObject_CallFunction(grow, "K", (unsigned long long)pk.arena_bytes);
        if (!r)
            goto out;
        PyObject *na, *ns;
        int ok = PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2;
        if (ok) {
            na = PyTuple_GET_ITEM(r, 0);
            ns = PyTuple_GET_ITEM(r, 1);
            ok = p4py_conv_u32(na, &arena_addr) && p4py_conv_u32(ns, &arena_size);
        }
        Py_DECREF(r);
        if (!ok) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "grow(nbytes) must return (arena_addr, arena_size)");
            goto out;
        }
        if (pk.arena_bytes > arena_size) {
            p4py_errorf(PyExc_ValueError, "grow(%llu) returned an arena of only %lu bytes",
                        (unsigned long long)pk.arena_bytes, (unsigned long)arena_size);
            goto out;
        }
    }
    pack_place(self, &pk, arena_addr);
    {
        p4_link_write_t wr[P4_ARG_SLOTS + 1];
        p4_link_read_t rd[P4_ARG_SLOTS];
        size_t nw = 0, nr = 0;
        for (int k = 0; k < pk.nup; k++) {
            upload_t *u = &pk.up[k];
            if (!u->nbytes)
                continue;
            wr[nw].addr = arena_addr + (uint32_t)u->offset;
            wr[nw].data = u->data;
            wr[nw++].len = (uint32_t)u->nbytes;
            if (u->sync) {
                rd[nr].addr = arena_addr + (uint32_t)u->offset;
                rd[nr].dst = u->data;
                rd[nr++].len = (uint32_t)u->nbytes;
            }
        }
        if (args_addr) {
            wr[nw].addr = args_addr;
            wr[nw].data = pk.slots;
            wr[nw++].len = P4_ARGS_SIZE;
        }
        p4_call_result_t res;
        const char *fname = PyUnicode_AsUTF8(self->fname);
        if (!fname)
            PyErr_Clear();
        if (p4py_link_call(a[0], entry, args_addr, budget, wr, nw, rd, nr, tmo, fname, &res) < 0)
            goto out;
        self->last_a0 = res.a0;
        self->last_ret_lo = res.ret_lo;
        self->last_ret_hi = res.ret_hi;
        self->last_cycles = res.cycles;
        self->last_instret = res.instret;
        result = pack_finish(self, &pk, res.ret_lo, res.ret_hi);
    }
out:
    pack_release(&pk);
    Py_DECREF(argseq);
    return result;
}

/* ---- Plan: the same in steps ---------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    MarshallerObject *m;
    pack_t pk;
    uint32_t base;
    int placed;
} PlanObject;

static PyObject *Marshaller_pack(MarshallerObject *self, PyObject *args)
{
    p4py_state *st = p4py_state_from_type(Py_TYPE(self));
    if (!st)
        return NULL;
    PyObject *seq = PySequence_Fast(args, "args must be a tuple");
    if (!seq)
        return NULL;
    PlanObject *plan = PyObject_GC_New(PlanObject, (PyTypeObject *)st->PlanType);
    if (!plan) {
        Py_DECREF(seq);
        return NULL;
    }
    plan->m = (MarshallerObject *)Py_NewRef(self);
    plan->pk.nup = 0;
    plan->placed = 0;
    plan->base = 0;
    int r = pack_args(self, PySequence_Fast_ITEMS(seq), PySequence_Fast_GET_SIZE(seq), &plan->pk);
    Py_DECREF(seq);
    PyObject_GC_Track(plan);
    if (r < 0) {
        Py_DECREF(plan);
        return NULL;
    }
    return (PyObject *)plan;
}

static int Plan_traverse(PlanObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->m);
    for (int k = 0; k < self->pk.nup; k++) {
        Py_VISIT(self->pk.up[k].keep);
        Py_VISIT(self->pk.up[k].orig);
    }
    return 0;
}

static int Plan_clear(PlanObject *self)
{
    pack_release(&self->pk);
    Py_CLEAR(self->m);
    return 0;
}

static void Plan_dealloc(PlanObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Plan_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *buffer_of(upload_t *u)
{
    /* the object that exposes the bytes: the array (or its contiguous copy) or the buffer owner */
    return Py_NewRef(u->view.obj ? u->view.obj : u->keep);
}

static PyObject *Plan_get_slots(PlanObject *self, void *Py_UNUSED(c))
{
    return PyByteArray_FromStringAndSize((const char *)self->pk.slots, P4_ARGS_SIZE);
}

static PyObject *Plan_get_arena_bytes(PlanObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(self->pk.arena_bytes);
}

static PyObject *Plan_get_uploads(PlanObject *self, void *Py_UNUSED(c))
{
    if (!self->m)
        return PyTuple_New(0);
    PyObject *t = PyTuple_New(self->pk.nup);
    if (!t)
        return NULL;
    for (int k = 0; k < self->pk.nup; k++) {
        upload_t *u = &self->pk.up[k];
        PyObject *b = buffer_of(u);
        PyObject *e = b ? Py_BuildValue("(iNnI)", u->param, b, (Py_ssize_t)u->nbytes, self->m->align) : NULL;
        if (!e) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, k, e);
    }
    return t;
}

static PyObject *Plan_place(PlanObject *self, PyObject *arg)
{
    uint32_t base;
    if (!self->m || !p4py_conv_u32(arg, &base))
        return NULL;
    pack_place(self->m, &self->pk, base);
    self->base = base;
    self->placed = 1;
    PyObject *l = PyList_New(0);
    if (!l)
        return NULL;
    for (int k = 0; k < self->pk.nup; k++) {
        upload_t *u = &self->pk.up[k];
        if (!u->nbytes)
            continue;
        PyObject *b = buffer_of(u);
        PyObject *e = b ? Py_BuildValue("(kN)", (unsigned long)(base + (uint32_t)u->offset), b) : NULL;
        if (!e || PyList_Append(l, e) < 0) {
            Py_XDECREF(e);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(e);
    }
    return l;
}

static PyObject *Plan_get_reads(PlanObject *self, void *Py_UNUSED(c))
{
    PyObject *l = PyList_New(0);
    if (!l || !self->placed)
        return l;
    for (int k = 0; k < self->pk.nup; k++) {
        upload_t *u = &self->pk.up[k];
        if (!u->nbytes || !u->sync)
            continue;
        PyObject *b = buffer_of(u);
        PyObject *e = b ? Py_BuildValue("(kN)", (unsigned long)(self->base + (uint32_t)u->offset), b) : NULL;
        if (!e || PyList_Append(l, e) < 0) {
            Py_XDECREF(e);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(e);
    }
    return l;
}

static PyObject *Plan_finish(PlanObject *self, PyObject *args)
{
    uint32_t lo = 0, hi = 0;
    if (!self->m) {
        PyErr_SetString(PyExc_ValueError, "plan already finished");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O&O&:finish", p4py_conv_u32, &lo, p4py_conv_u32, &hi))
        return NULL;
    PyObject *r = pack_finish(self->m, &self->pk, lo, hi);
    Plan_clear(self);
    return r;
}

static PyGetSetDef Plan_getset[] = {
    {"slots", (getter)Plan_get_slots, NULL, "The 128-byte slot block (a copy).", NULL},
    {"arena_bytes", (getter)Plan_get_arena_bytes, NULL, "Arena bytes the uploads need.", NULL},
    {"uploads", (getter)Plan_get_uploads, NULL, "((param_index, buffer, nbytes, align), ...)", NULL},
    {"reads", (getter)Plan_get_reads, NULL, "[(addr, buffer)] to read back after the call (after place).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Plan_methods[] = {
    {"place", (PyCFunction)Plan_place, METH_O,
     "place(arena_addr) -> [(addr, buffer)]\n--\n\nPatch pointer slots for the arena; the uploads "
     "to write."},
    {"finish", (PyCFunction)Plan_finish, METH_VARARGS,
     "finish(ret_lo, ret_hi) -> value\n--\n\nAfter the reads: copy temporaries back, decode the "
     "return value (slot 30 word, slot 31 word)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Plan_slots[] = {
    {Py_tp_doc, "A packed call (Marshaller.pack)."},
    {Py_tp_dealloc, Plan_dealloc},
    {Py_tp_traverse, Plan_traverse},
    {Py_tp_clear, Plan_clear},
    {Py_tp_methods, Plan_methods},
    {Py_tp_getset, Plan_getset},
    {0, NULL},
};

static PyType_Spec Plan_spec = {
    .name = "p4jit._core.Plan",
    .basicsize = sizeof(PlanObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Plan_slots,
};

/* ---- Marshaller attributes -------------------------------------------------------- */

static PyObject *M_get_sync(MarshallerObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->sync);
}

static int M_set_sync(MarshallerObject *self, PyObject *v, void *Py_UNUSED(c))
{
    int b = v ? PyObject_IsTrue(v) : 0;
    if (b < 0)
        return -1;
    self->sync = b;
    return 0;
}

#define M_U64(field)                                                              \
    static PyObject *M_get_##field(MarshallerObject *self, void *Py_UNUSED(c))     \
    {                                                                             \
        return PyLong_FromUnsignedLongLong(self->field);                          \
    }
M_U64(last_a0)
M_U64(last_ret_lo)
M_U64(last_ret_hi)
M_U64(last_cycles)
M_U64(last_instret)

static PyObject *M_get_nparams(MarshallerObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(self->nparams);
}

static PyObject *M_get_ret_dtype(MarshallerObject *self, void *Py_UNUSED(c))
{
    return PyUnicode_FromString(p4_dtype_info[self->ret_dtype].name);
}

static PyObject *M_get_ret_slot(MarshallerObject *self, void *Py_UNUSED(c))
{
    if (self->ret_slot < 0)
        Py_RETURN_NONE;
    return PyLong_FromLong(self->ret_slot);
}

static PyGetSetDef Marshaller_getset[] = {
    {"sync", (getter)M_get_sync, (setter)M_set_sync, "Read non-const arrays back after a call.", NULL},
    {"nparams", (getter)M_get_nparams, NULL, NULL, NULL},
    {"ret_dtype", (getter)M_get_ret_dtype, NULL, NULL, NULL},
    {"ret_slot", (getter)M_get_ret_slot, NULL, NULL, NULL},
    {"last_a0", (getter)M_get_last_a0, NULL, "a0 of the last call().", NULL},
    {"last_ret_lo", (getter)M_get_last_ret_lo, NULL, "Slot 30 after the last call().", NULL},
    {"last_ret_hi", (getter)M_get_last_ret_hi, NULL, "Slot 31 after the last call().", NULL},
    {"last_cycles", (getter)M_get_last_cycles, NULL, "Device cycles of the last call().", NULL},
    {"last_instret", (getter)M_get_last_instret, NULL, "Retired instructions of the last call() (sim).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Marshaller_methods[] = {
    {"call", (PyCFunction)(void (*)(void))Marshaller_call, METH_FASTCALL | METH_KEYWORDS,
     "call(link, entry, args_addr, arena_addr, arena_size, args, grow=None, budget_ms=0, "
     "timeout=None)\n--\n\nPack, upload, run, sync back and decode in one CALL round trip."},
    {"pack", (PyCFunction)Marshaller_pack, METH_O,
     "pack(args) -> Plan\n--\n\nValidate and pack the arguments without talking to a device."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Marshaller_slots[] = {
    {Py_tp_doc, "Marshaller(core_spec, sync=True, align=16, name=None)\n--\n\nArgument "
                "marshalling for one entry function (Signature.core_spec()). See docs/HOST_CORE.md."},
    {Py_tp_init, Marshaller_init},
    {Py_tp_dealloc, Marshaller_dealloc},
    {Py_tp_traverse, Marshaller_traverse},
    {Py_tp_methods, Marshaller_methods},
    {Py_tp_getset, Marshaller_getset},
    {0, NULL},
};

static PyType_Spec Marshaller_spec = {
    .name = "p4jit._core.Marshaller",
    .basicsize = sizeof(MarshallerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Marshaller_slots,
};

/* _core.SCALAR_TYPES: the scalar type table (marshal.h) as a tuple of rows,
 * in the column order of _core.SCALAR_TYPE_FIELDS. */
static int add_scalar_types(PyObject *module)
{
    PyObject *rows = PyTuple_New(P4_DT_COUNT);
    if (!rows)
        return -1;
    for (int i = 0; i < P4_DT_COUNT; i++) {
        const p4_dtype_info_t *t = &p4_dtype_info[i];
        PyObject *row = Py_BuildValue("(ssIIIOOOss)", t->name, t->ctype, (unsigned)t->size, (unsigned)t->align,
                                      (unsigned)t->slots, t->is_signed ? Py_True : Py_False,
                                      t->is_float ? Py_True : Py_False,
                                      t->is_scalar ? Py_True : Py_False, t->load, t->store);
        if (!row) {
            Py_DECREF(rows);
            return -1;
        }
        PyTuple_SET_ITEM(rows, i, row);
    }
    PyObject *fields = Py_BuildValue("(ssssssssss)", "name", "ctype", "size", "align", "slots", "signed",
                                     "float", "scalar", "load", "store");
    int r = fields ? PyModule_AddObjectRef(module, "SCALAR_TYPE_FIELDS", fields) : -1;
    if (r == 0)
        r = PyModule_AddObjectRef(module, "SCALAR_TYPES", rows);
    Py_XDECREF(fields);
    Py_DECREF(rows);
    return r;
}

int p4py_marshal_exec(PyObject *module)
{
    if (_import_array() < 0 || add_scalar_types(module) < 0)
        return -1;
    p4py_state *st = p4py_state_of(module);
    st->MarshallerType = PyType_FromModuleAndSpec(module, &Marshaller_spec, NULL);
    if (!st->MarshallerType)
        return -1;
    st->PlanType = PyType_FromModuleAndSpec(module, &Plan_spec, NULL);
    if (!st->PlanType)
        return -1;
    if (PyModule_AddObjectRef(module, "Marshaller", st->MarshallerType) < 0 ||
        PyModule_AddObjectRef(module, "Plan", st->PlanType) < 0)
        return -1;
    return 0;
}
