/*
 * elf_py.c — p4jit._core.elf_read() and the ElfInfo type over elf_reader.c.
 *
 *   info = _core.elf_read(path_or_bytes)
 *   info.elf_class, info.machine, info.type, info.entry          ints
 *   info.sections  tuple of (name, addr, size, type, flags, offset, align, flag_bits)
 *                  type: 'progbits' 'nobits' 'symtab' ... ; flags: 'WAX' letters
 *   info.symbols   tuple of (name, value, size, kind, bind, section)
 *                  kind: 'func' 'object' 'notype' 'section' 'file' 'common' 'tls'
 *                  bind: 'local' 'global' 'weak'; section: name, 'ABS', 'UND', 'COM'
 *   info.load_image()        -> (base, bytes)  flat image, .bss zero-filled
 *   info.section_data(name)  -> bytes
 *   info.function_at(addr)   -> symbol tuple or None
 */
#include "p4py.h"

#include <gelf.h>
#include <stdio.h>

#include "elf_reader.h"

typedef struct {
    PyObject_HEAD
    p4_elf_t elf;
    PyObject *sections; /* tuple, built once */
    PyObject *symbols;  /* tuple, built once */
} ElfInfoObject;

/* ---- names ------------------------------------------------------------------------ */

typedef struct {
    unsigned value;
    const char *name;
} name_entry_t;

static const name_entry_t section_types[] = {
    {SHT_NULL, "null"},         {SHT_PROGBITS, "progbits"},     {SHT_SYMTAB, "symtab"},
    {SHT_STRTAB, "strtab"},     {SHT_RELA, "rela"},             {SHT_HASH, "hash"},
    {SHT_DYNAMIC, "dynamic"},   {SHT_NOTE, "note"},             {SHT_NOBITS, "nobits"},
    {SHT_REL, "rel"},           {SHT_DYNSYM, "dynsym"},         {SHT_INIT_ARRAY, "init_array"},
    {SHT_FINI_ARRAY, "fini_array"}, {SHT_PREINIT_ARRAY, "preinit_array"},
    {SHT_GROUP, "group"},       {SHT_SYMTAB_SHNDX, "symtab_shndx"},
    {0x70000003u /* SHT_RISCV_ATTRIBUTES */, "riscv_attributes"},
};

static const name_entry_t symbol_kinds[] = {
    {STT_NOTYPE, "notype"}, {STT_OBJECT, "object"}, {STT_FUNC, "func"},   {STT_SECTION, "section"},
    {STT_FILE, "file"},     {STT_COMMON, "common"}, {STT_TLS, "tls"},     {STT_GNU_IFUNC, "ifunc"},
};

static const name_entry_t symbol_binds[] = {
    {STB_LOCAL, "local"}, {STB_GLOBAL, "global"}, {STB_WEAK, "weak"}, {STB_GNU_UNIQUE, "unique"},
};

static const char *lookup(const name_entry_t *table, size_t n, unsigned value, const char *dflt)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].value == value)
            return table[i].name;
    return dflt;
}

#define LOOKUP(table, v, d) lookup(table, sizeof table / sizeof table[0], (v), (d))

/* ---- tuple builders ----------------------------------------------------------------- */

static PyObject *section_tuple(const p4_elf_section_t *s)
{
    char flags[8];
    size_t n = 0;
    if (s->flags & SHF_WRITE)
        flags[n++] = 'W';
    if (s->flags & SHF_ALLOC)
        flags[n++] = 'A';
    if (s->flags & SHF_EXECINSTR)
        flags[n++] = 'X';
    flags[n] = '\0';
    return Py_BuildValue("(sKKssKKK)", s->name, (unsigned long long)s->addr,
                         (unsigned long long)s->size, LOOKUP(section_types, s->type, "other"),
                         flags, (unsigned long long)s->offset, (unsigned long long)s->align,
                         (unsigned long long)s->flags);
}

static const char *symbol_section(const p4_elf_t *e, const p4_elf_symbol_t *s)
{
    switch (s->shndx) {
    case SHN_UNDEF:
        return "UND";
    case SHN_ABS:
        return "ABS";
    case SHN_COMMON:
        return "COM";
    default:
        return s->shndx < e->n_sections ? e->sections[s->shndx].name : "";
    }
}

static PyObject *symbol_tuple(const p4_elf_t *e, const p4_elf_symbol_t *s)
{
    return Py_BuildValue("(sKKsss)", s->name, (unsigned long long)s->value,
                         (unsigned long long)s->size, LOOKUP(symbol_kinds, s->type, "other"),
                         LOOKUP(symbol_binds, s->bind, "other"), symbol_section(e, s));
}

static PyObject *build_sections(const p4_elf_t *e)
{
    size_t n = e->n_sections ? e->n_sections - 1 : 0; /* skip the null section */
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    if (!t)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *item = section_tuple(&e->sections[i + 1]);
        if (!item) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, item);
    }
    return t;
}

static PyObject *build_symbols(const p4_elf_t *e)
{
    PyObject *t = PyTuple_New((Py_ssize_t)e->n_symbols);
    if (!t)
        return NULL;
    for (size_t i = 0; i < e->n_symbols; i++) {
        PyObject *item = symbol_tuple(e, &e->symbols[i]);
        if (!item) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, item);
    }
    return t;
}

static PyObject *raise_status(p4_elf_status_t st, const char *detail)
{
    if (st == P4_ELF_ERR_NOMEM)
        return PyErr_NoMemory();
    if (st == P4_ELF_ERR_NOTFOUND)
        PyErr_Format(PyExc_KeyError, "%s", detail && *detail ? detail : p4_elf_strerror(st));
    else
        PyErr_Format(PyExc_ValueError, "%s", detail && *detail ? detail : p4_elf_strerror(st));
    return NULL;
}

/* ---- ElfInfo ------------------------------------------------------------------------ */

static void ElfInfo_dealloc(ElfInfoObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->sections);
    Py_CLEAR(self->symbols);
    p4_elf_close(&self->elf);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int ElfInfo_traverse(ElfInfoObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->sections);
    Py_VISIT(self->symbols);
    return 0;
}

static PyObject *ElfInfo_load_image(ElfInfoObject *self, PyObject *Py_UNUSED(ignored))
{
    uint8_t *img = NULL;
    size_t len = 0;
    uint64_t base = 0;
    p4_elf_status_t st = p4_elf_image(&self->elf, &img, &len, &base);
    if (st != P4_ELF_OK)
        return raise_status(st, NULL);
    PyObject *result = Py_BuildValue("(Ky#)", (unsigned long long)base, (const char *)img,
                                     (Py_ssize_t)len);
    free(img);
    return result;
}

static PyObject *ElfInfo_section_data(ElfInfoObject *self, PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name)
        return NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    p4_elf_status_t st = p4_elf_section_data(&self->elf, name, &data, &len);
    if (st != P4_ELF_OK) {
        char msg[160];
        PyOS_snprintf(msg, sizeof msg, "no section named '%.100s'", name);
        return raise_status(st, st == P4_ELF_ERR_NOTFOUND ? msg : NULL);
    }
    PyObject *result = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)len);
    free(data);
    return result;
}

static PyObject *ElfInfo_function_at(ElfInfoObject *self, PyObject *arg)
{
    unsigned long long addr = PyLong_AsUnsignedLongLong(arg);
    if (addr == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    long i = p4_elf_function_at(&self->elf, addr);
    if (i < 0)
        Py_RETURN_NONE;
    return symbol_tuple(&self->elf, &self->elf.symbols[i]);
}

static PyObject *ElfInfo_get_int(ElfInfoObject *self, void *closure)
{
    switch ((intptr_t)closure) {
    case 0:
        return PyLong_FromLong(self->elf.elf_class);
    case 1:
        return PyLong_FromLong(self->elf.machine);
    case 2:
        return PyLong_FromLong(self->elf.type);
    default:
        return PyLong_FromUnsignedLongLong(self->elf.entry);
    }
}

static PyObject *ElfInfo_get_sections(ElfInfoObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->sections);
}

static PyObject *ElfInfo_get_symbols(ElfInfoObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->symbols);
}

static PyObject *ElfInfo_repr(ElfInfoObject *self)
{
    return PyUnicode_FromFormat("<ElfInfo ELF%d machine=%d sections=%zd symbols=%zd>",
                                self->elf.elf_class, (int)self->elf.machine,
                                PyTuple_GET_SIZE(self->sections), PyTuple_GET_SIZE(self->symbols));
}

static PyMethodDef ElfInfo_methods[] = {
    {"load_image", (PyCFunction)ElfInfo_load_image, METH_NOARGS,
     "load_image() -> (base, bytes): the allocatable sections as one flat image from the lowest "
     "address, .bss and gaps zero-filled."},
    {"section_data", (PyCFunction)ElfInfo_section_data, METH_O,
     "section_data(name) -> bytes: contents of one section (zeros for .bss)."},
    {"function_at", (PyCFunction)ElfInfo_function_at, METH_O,
     "function_at(addr) -> symbol tuple of the function containing addr, or None."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef ElfInfo_getset[] = {
    {"elf_class", (getter)ElfInfo_get_int, NULL, "32 or 64", (void *)0},
    {"machine", (getter)ElfInfo_get_int, NULL, "e_machine (243 = RISC-V)", (void *)1},
    {"type", (getter)ElfInfo_get_int, NULL, "e_type (2 = executable)", (void *)2},
    {"entry", (getter)ElfInfo_get_int, NULL, "e_entry", (void *)3},
    {"sections", (getter)ElfInfo_get_sections, NULL,
     "tuple of (name, addr, size, type, flags, offset, align, flag_bits)", NULL},
    {"symbols", (getter)ElfInfo_get_symbols, NULL,
     "tuple of (name, value, size, kind, bind, section)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot ElfInfo_slots[] = {
    {Py_tp_dealloc, ElfInfo_dealloc},
    {Py_tp_traverse, ElfInfo_traverse},
    {Py_tp_methods, ElfInfo_methods},
    {Py_tp_getset, ElfInfo_getset},
    {Py_tp_repr, ElfInfo_repr},
    {Py_tp_doc, (void *)"A parsed ELF file (see p4jit._core.elf_read)."},
    {0, NULL},
};

static PyType_Spec ElfInfo_spec = {
    .name = "p4jit._core.ElfInfo",
    .basicsize = sizeof(ElfInfoObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = ElfInfo_slots,
};

/* ---- elf_read ------------------------------------------------------------------------ */

/* Read a whole file into a new bytes object (GIL released during the read). */
static PyObject *read_file(PyObject *path_obj)
{
    PyObject *fs = NULL;
    if (!PyUnicode_FSConverter(path_obj, &fs))
        return NULL;
    const char *path = PyBytes_AS_STRING(fs);
    PyObject *result = NULL;
    FILE *f = NULL;
    long size = -1;
    Py_BEGIN_ALLOW_THREADS
    f = fopen(path, "rb");
    if (f && fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (f && size >= 0 && fseek(f, 0, SEEK_SET) != 0)
        size = -1;
    Py_END_ALLOW_THREADS
    if (!f || size < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path_obj);
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, size);
    if (!result)
        goto done;
    size_t got = 0;
    char *dst = PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    got = fread(dst, 1, (size_t)size, f);
    Py_END_ALLOW_THREADS
    if (got != (size_t)size) {
        Py_CLEAR(result);
        PyErr_Format(PyExc_OSError, "short read of %R (%zu of %ld bytes)", path_obj, got, size);
    }
done:
    if (f)
        fclose(f);
    Py_DECREF(fs);
    return result;
}

static PyObject *core_elf_read(PyObject *module, PyObject *src)
{
    PyObject *owned = NULL;
    Py_buffer view = {0};
    ElfInfoObject *self = NULL;
    PyObject *type = NULL;

    if (PyUnicode_Check(src) || PyObject_HasAttrString(src, "__fspath__")) {
        owned = read_file(src);
        if (!owned)
            return NULL;
        src = owned;
    }
    if (PyObject_GetBuffer(src, &view, PyBUF_SIMPLE) < 0)
        goto done;

    type = PyObject_GetAttrString(module, "ElfInfo");
    if (!type)
        goto done;
    self = PyObject_GC_New(ElfInfoObject, (PyTypeObject *)type);
    if (!self)
        goto done;
    memset(&self->elf, 0, sizeof self->elf);
    self->sections = NULL;
    self->symbols = NULL;
    PyObject_GC_Track(self);

    char err[256] = "";
    p4_elf_status_t st;
    Py_BEGIN_ALLOW_THREADS
    st = p4_elf_open_mem(view.buf, (size_t)view.len, &self->elf, err, sizeof err);
    Py_END_ALLOW_THREADS
    if (st != P4_ELF_OK) {
        raise_status(st, err);
        Py_CLEAR(self);
        goto done;
    }
    self->sections = build_sections(&self->elf);
    self->symbols = self->sections ? build_symbols(&self->elf) : NULL;
    if (!self->symbols)
        Py_CLEAR(self);

done:
    if (view.obj)
        PyBuffer_Release(&view);
    Py_XDECREF(owned);
    Py_XDECREF(type);
    return (PyObject *)self;
}

static PyMethodDef elf_functions[] = {
    {"elf_read", (PyCFunction)core_elf_read, METH_O,
     "elf_read(path_or_bytes) -> ElfInfo: sections, symbols and the load image of an ELF file. "
     "Raises OSError if the file cannot be read, ValueError if it is not a valid ELF."},
    {NULL, NULL, 0, NULL},
};

int p4py_elf_exec(PyObject *module)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &ElfInfo_spec, NULL);
    if (!type)
        return -1;
    int rc = PyModule_AddObjectRef(module, "ElfInfo", type);
    Py_DECREF(type);
    if (rc < 0)
        return -1;
    return PyModule_AddFunctions(module, elf_functions);
}
