/*
 * elf_reader.h — read a linked ELF: sections, symbols and the flat load image.
 *
 * Pure C over libelf (no Python): the build pipeline uses it through
 * elf_py.c to inspect what the linker produced without running any tool.
 * (Named elf_reader.h, not elf.h: ext/ is an -I directory and an ext/elf.h
 * would shadow the system <elf.h> that libelf.h includes.)
 *
 * Handles ELF32 and ELF64, either byte order (the values are converted by
 * libelf/gelf). Addresses and sizes of the device are 32-bit, but the reader
 * keeps 64-bit fields so an ELF64 host object can be listed too.
 */
#ifndef P4_ELF_READER_H
#define P4_ELF_READER_H

#include <stddef.h>
#include <stdint.h>

/* Status codes of every p4_elf_* function. */
typedef enum {
    P4_ELF_OK = 0,
    P4_ELF_ERR_NOMEM,   /* out of memory                                  */
    P4_ELF_ERR_FORMAT,  /* not an ELF file, or a malformed one            */
    P4_ELF_ERR_NOALLOC, /* no allocatable section: nothing to load        */
    P4_ELF_ERR_RANGE,   /* the image would be larger than P4_ELF_IMAGE_MAX */
    P4_ELF_ERR_NOTFOUND /* no section of that name                        */
} p4_elf_status_t;

/* Largest flat image p4_elf_image() builds (a guard against an ELF whose
 * sections are spread over the address space). */
#define P4_ELF_IMAGE_MAX (256u * 1024u * 1024u)

typedef struct {
    char *name;
    uint64_t addr;
    uint64_t size;
    uint64_t offset;
    uint64_t align;
    uint32_t type;  /* SHT_* */
    uint64_t flags; /* SHF_* */
} p4_elf_section_t;

typedef struct {
    char *name;
    uint64_t value;
    uint64_t size;
    uint8_t type;   /* STT_* */
    uint8_t bind;   /* STB_* */
    uint16_t shndx; /* section index (SHN_ABS, SHN_UNDEF, ... for special) */
} p4_elf_symbol_t;

typedef struct {
    uint8_t *buf; /* private copy of the file, owned */
    size_t len;
    void *elf;    /* Elf * (kept opaque so users need no libelf header) */
    int elf_class;  /* 32 or 64 */
    uint16_t machine; /* EM_* */
    uint16_t type;    /* ET_* */
    uint64_t entry;
    p4_elf_section_t *sections; /* index i = ELF section i (0 is the null section) */
    size_t n_sections;
    p4_elf_symbol_t *symbols; /* .symtab, without the null symbol 0 */
    size_t n_symbols;
} p4_elf_t;

/* Parse the ELF in buf[0..len) (copied). On success *out owns its memory and
 * must be released with p4_elf_close(); on failure *out is left empty and
 * err (if not NULL) holds a message. */
p4_elf_status_t p4_elf_open_mem(const uint8_t *buf, size_t len, p4_elf_t *out, char *err,
                                size_t err_len);

/* Release everything p4_elf_open_mem() allocated; safe on an empty struct. */
void p4_elf_close(p4_elf_t *elf);

/* The flat image of the allocatable sections: from the lowest address of a
 * non-empty SHF_ALLOC section to the highest end, SHT_NOBITS (.bss) and gaps
 * zero-filled. *image is malloc'ed (caller frees); *base is its address. */
p4_elf_status_t p4_elf_image(const p4_elf_t *elf, uint8_t **image, size_t *len, uint64_t *base);

/* Contents of the section called name (not for SHT_NOBITS: those give zeros).
 * *data is malloc'ed (caller frees). */
p4_elf_status_t p4_elf_section_data(const p4_elf_t *elf, const char *name, uint8_t **data,
                                    size_t *len);

/* Index of the symbol (into elf->symbols) of type STT_FUNC whose
 * [value, value+size) contains addr, or -1. */
long p4_elf_function_at(const p4_elf_t *elf, uint64_t addr);

/* Human-readable name of a status code. */
const char *p4_elf_strerror(p4_elf_status_t status);

#endif /* P4_ELF_READER_H */
