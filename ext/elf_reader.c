/*
 * elf_reader.c — sections, symbols and the flat load image of a linked ELF (libelf).
 */
#include "elf_reader.h"

#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------------- */

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static char *dup_str(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

const char *p4_elf_strerror(p4_elf_status_t status)
{
    switch (status) {
    case P4_ELF_OK:
        return "ok";
    case P4_ELF_ERR_NOMEM:
        return "out of memory";
    case P4_ELF_ERR_FORMAT:
        return "not a valid ELF file";
    case P4_ELF_ERR_NOALLOC:
        return "the ELF has no allocatable section";
    case P4_ELF_ERR_RANGE:
        return "the ELF's allocatable sections span too large an address range";
    case P4_ELF_ERR_NOTFOUND:
        return "no such section";
    }
    return "unknown error";
}

/* ---- reading ------------------------------------------------------------------ */

static p4_elf_status_t read_sections(p4_elf_t *e, Elf *elf, char *err, size_t err_len)
{
    size_t shnum = 0, shstrndx = 0;
    if (elf_getshdrnum(elf, &shnum) != 0 || elf_getshdrstrndx(elf, &shstrndx) != 0) {
        set_err(err, err_len, "cannot read the section header table: %s", elf_errmsg(-1));
        return P4_ELF_ERR_FORMAT;
    }
    GElf_Ehdr eh;
    if (!gelf_getehdr(elf, &eh) || eh.e_shoff > e->len ||
        (uint64_t)(shnum ? shnum : eh.e_shnum) * eh.e_shentsize > e->len - eh.e_shoff) {
        set_err(err, err_len, "the section header table lies outside the file (truncated ELF?)");
        return P4_ELF_ERR_FORMAT;
    }
    if (shnum == 0)
        return P4_ELF_OK;
    e->sections = calloc(shnum, sizeof *e->sections);
    if (!e->sections)
        return P4_ELF_ERR_NOMEM;
    e->n_sections = shnum;
    for (size_t i = 0; i < shnum; i++) {
        Elf_Scn *scn = elf_getscn(elf, i);
        GElf_Shdr sh;
        if (!scn || !gelf_getshdr(scn, &sh)) {
            set_err(err, err_len, "cannot read section header %zu: %s", i, elf_errmsg(-1));
            return P4_ELF_ERR_FORMAT;
        }
        /* Contents must lie inside the file (libelf reads lazily). */
        if (sh.sh_type != SHT_NOBITS && sh.sh_type != SHT_NULL &&
            (sh.sh_offset > e->len || sh.sh_size > e->len - sh.sh_offset)) {
            set_err(err, err_len, "section %zu lies outside the file (truncated ELF?)", i);
            return P4_ELF_ERR_FORMAT;
        }
        p4_elf_section_t *s = &e->sections[i];
        s->name = dup_str(elf_strptr(elf, shstrndx, sh.sh_name));
        if (!s->name)
            return P4_ELF_ERR_NOMEM;
        s->addr = sh.sh_addr;
        s->size = sh.sh_size;
        s->offset = sh.sh_offset;
        s->align = sh.sh_addralign;
        s->type = sh.sh_type;
        s->flags = sh.sh_flags;
    }
    return P4_ELF_OK;
}

static p4_elf_status_t read_symbols(p4_elf_t *e, Elf *elf, char *err, size_t err_len)
{
    for (size_t i = 0; i < e->n_sections; i++) {
        if (e->sections[i].type != SHT_SYMTAB)
            continue;
        Elf_Scn *scn = elf_getscn(elf, i);
        GElf_Shdr sh;
        Elf_Data *data = scn ? elf_getdata(scn, NULL) : NULL;
        if (!scn || !gelf_getshdr(scn, &sh) || !data || sh.sh_entsize == 0) {
            set_err(err, err_len, "cannot read the symbol table: %s", elf_errmsg(-1));
            return P4_ELF_ERR_FORMAT;
        }
        size_t count = sh.sh_size / sh.sh_entsize;
        if (count <= 1)
            return P4_ELF_OK;
        e->symbols = calloc(count - 1, sizeof *e->symbols);
        if (!e->symbols)
            return P4_ELF_ERR_NOMEM;
        for (size_t k = 1; k < count; k++) {
            GElf_Sym sym;
            if (!gelf_getsym(data, (int)k, &sym)) {
                set_err(err, err_len, "cannot read symbol %zu: %s", k, elf_errmsg(-1));
                return P4_ELF_ERR_FORMAT;
            }
            p4_elf_symbol_t *s = &e->symbols[e->n_symbols];
            s->name = dup_str(elf_strptr(elf, sh.sh_link, sym.st_name));
            if (!s->name)
                return P4_ELF_ERR_NOMEM;
            s->value = sym.st_value;
            s->size = sym.st_size;
            s->type = (uint8_t)GELF_ST_TYPE(sym.st_info);
            s->bind = (uint8_t)GELF_ST_BIND(sym.st_info);
            s->shndx = sym.st_shndx;
            e->n_symbols++;
        }
        return P4_ELF_OK; /* one .symtab per file */
    }
    return P4_ELF_OK;
}

p4_elf_status_t p4_elf_open_mem(const uint8_t *buf, size_t len, p4_elf_t *out, char *err,
                                size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (!buf || len < EI_NIDENT || memcmp(buf, ELFMAG, SELFMAG) != 0) {
        set_err(err, err_len, "not an ELF file (bad magic)");
        return P4_ELF_ERR_FORMAT;
    }
    if (elf_version(EV_CURRENT) == EV_NONE) {
        set_err(err, err_len, "libelf initialisation failed: %s", elf_errmsg(-1));
        return P4_ELF_ERR_FORMAT;
    }
    p4_elf_status_t st = P4_ELF_ERR_NOMEM;
    out->buf = malloc(len);
    if (!out->buf)
        goto fail;
    memcpy(out->buf, buf, len);
    out->len = len;

    Elf *elf = elf_memory((char *)out->buf, len);
    if (!elf || elf_kind(elf) != ELF_K_ELF) {
        set_err(err, err_len, "not an ELF file: %s", elf_errmsg(-1));
        if (elf)
            elf_end(elf);
        st = P4_ELF_ERR_FORMAT;
        goto fail;
    }
    out->elf = elf;
    GElf_Ehdr eh;
    if (!gelf_getehdr(elf, &eh)) {
        set_err(err, err_len, "cannot read the ELF header: %s", elf_errmsg(-1));
        st = P4_ELF_ERR_FORMAT;
        goto fail;
    }
    out->elf_class = gelf_getclass(elf) == ELFCLASS64 ? 64 : 32;
    out->machine = eh.e_machine;
    out->type = eh.e_type;
    out->entry = eh.e_entry;

    if ((st = read_sections(out, elf, err, err_len)) != P4_ELF_OK)
        goto fail;
    if ((st = read_symbols(out, elf, err, err_len)) != P4_ELF_OK)
        goto fail;
    return P4_ELF_OK;

fail:
    if (st == P4_ELF_ERR_NOMEM)
        set_err(err, err_len, "out of memory reading the ELF");
    p4_elf_close(out);
    return st;
}

void p4_elf_close(p4_elf_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_sections; i++)
        free(e->sections[i].name);
    for (size_t i = 0; i < e->n_symbols; i++)
        free(e->symbols[i].name);
    free(e->sections);
    free(e->symbols);
    if (e->elf)
        elf_end((Elf *)e->elf);
    free(e->buf);
    memset(e, 0, sizeof *e);
}

/* ---- images --------------------------------------------------------------------- */

/* Copy section i's bytes to dst (len bytes available). */
static p4_elf_status_t copy_section(const p4_elf_t *e, size_t i, uint8_t *dst, size_t len)
{
    Elf_Scn *scn = elf_getscn((Elf *)e->elf, i);
    if (!scn)
        return P4_ELF_ERR_FORMAT;
    Elf_Data *d = NULL;
    while ((d = elf_getdata(scn, d)) != NULL) {
        if (!d->d_buf || d->d_size == 0)
            continue;
        uint64_t off = (uint64_t)d->d_off;
        if (off > len || d->d_size > len - off)
            return P4_ELF_ERR_FORMAT;
        memcpy(dst + off, d->d_buf, d->d_size);
    }
    return P4_ELF_OK;
}

static int is_loaded(const p4_elf_section_t *s)
{
    return (s->flags & SHF_ALLOC) && s->size > 0;
}

p4_elf_status_t p4_elf_image(const p4_elf_t *e, uint8_t **image, size_t *len, uint64_t *base)
{
    *image = NULL;
    *len = 0;
    *base = 0;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < e->n_sections; i++) {
        const p4_elf_section_t *s = &e->sections[i];
        if (!is_loaded(s))
            continue;
        if (s->addr < lo)
            lo = s->addr;
        if (s->addr + s->size > hi)
            hi = s->addr + s->size;
    }
    if (lo == UINT64_MAX)
        return P4_ELF_ERR_NOALLOC;
    if (hi - lo > P4_ELF_IMAGE_MAX)
        return P4_ELF_ERR_RANGE;
    size_t n = (size_t)(hi - lo);
    uint8_t *img = calloc(n ? n : 1, 1);
    if (!img)
        return P4_ELF_ERR_NOMEM;
    for (size_t i = 0; i < e->n_sections; i++) {
        const p4_elf_section_t *s = &e->sections[i];
        if (!is_loaded(s) || s->type == SHT_NOBITS)
            continue;
        p4_elf_status_t st = copy_section(e, i, img + (s->addr - lo), (size_t)s->size);
        if (st != P4_ELF_OK) {
            free(img);
            return st;
        }
    }
    *image = img;
    *len = n;
    *base = lo;
    return P4_ELF_OK;
}

p4_elf_status_t p4_elf_section_data(const p4_elf_t *e, const char *name, uint8_t **data,
                                    size_t *len)
{
    *data = NULL;
    *len = 0;
    for (size_t i = 1; i < e->n_sections; i++) {
        const p4_elf_section_t *s = &e->sections[i];
        if (strcmp(s->name, name) != 0)
            continue;
        if (s->size > P4_ELF_IMAGE_MAX)
            return P4_ELF_ERR_RANGE;
        uint8_t *buf = calloc(s->size ? (size_t)s->size : 1, 1);
        if (!buf)
            return P4_ELF_ERR_NOMEM;
        if (s->type != SHT_NOBITS) {
            p4_elf_status_t st = copy_section(e, i, buf, (size_t)s->size);
            if (st != P4_ELF_OK) {
                free(buf);
                return st;
            }
        }
        *data = buf;
        *len = (size_t)s->size;
        return P4_ELF_OK;
    }
    return P4_ELF_ERR_NOTFOUND;
}

long p4_elf_function_at(const p4_elf_t *e, uint64_t addr)
{
    for (size_t i = 0; i < e->n_symbols; i++) {
        const p4_elf_symbol_t *s = &e->symbols[i];
        if (s->type != STT_FUNC || s->shndx == SHN_UNDEF || s->shndx == SHN_ABS)
            continue;
        /* A size-0 function symbol (hand-written assembly) covers its first byte. */
        uint64_t end = s->value + (s->size ? s->size : 1);
        if (addr >= s->value && addr < end)
            return (long)i;
    }
    return -1;
}
