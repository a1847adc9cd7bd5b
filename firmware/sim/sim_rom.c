/*
 * sim_rom.c — the ROM image: read the ELF with libelf, hash it (the build id
 * INFO reports), copy every PT_LOAD segment to its address (ROM text/rodata
 * in the flash window, .data/.tdata/.bss in the firmware area, bss zeroed),
 * then run its init entry once and keep the tp/gp it established.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <unicorn/unicorn.h>

#include "sim.h"
#include <sha2.h> /* libmd */

#define ROM_ALIGN 0x10000u /* the ROM mapping is a whole number of 64 KiB */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        goto out;                                                                                  \
    } while (0)

static uint8_t *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot open ROM image %s: %s", path, strerror(errno));
        goto out;
    }
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory reading %s", path);
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "cannot read ROM image %s: %s", path,
                     n < 0 ? strerror(errno) : "short file");
            free(buf);
            buf = NULL;
            goto out;
        }
        got += (size_t)n;
    }
    *len = got;
out:
    if (fd >= 0)
        close(fd);
    return buf;
}

bool p4_sim_rom_load(p4_sim_t *s, const char *path, char *err, size_t errlen)
{
    bool ok = false;
    Elf *elf = NULL;
    GElf_Phdr *loads = NULL; /* the PT_LOAD segments, read once */
    size_t *index = NULL;    /* their program-header numbers, for messages */
    size_t len = 0;
    uint8_t *img = read_file(path, &len, err, errlen);
    if (img == NULL)
        return false;
    SHA2_CTX sha;
    SHA256Init(&sha);
    SHA256Update(&sha, img, len);
    SHA256Final(s->build_id, &sha);

    if (elf_version(EV_CURRENT) == EV_NONE)
        FAIL("libelf: %s", elf_errmsg(-1));
    elf = elf_memory((char *)img, len);
    GElf_Ehdr eh;
    if (elf == NULL || elf_kind(elf) != ELF_K_ELF || gelf_getehdr(elf, &eh) == NULL)
        FAIL("%s is not an ELF file", path);
    if (eh.e_ident[EI_CLASS] != ELFCLASS32 || eh.e_machine != EM_RISCV)
        FAIL("%s is not a 32-bit RISC-V ELF", path);
    size_t nph;
    if (elf_getphdrnum(elf, &nph) != 0)
        FAIL("%s: %s", path, elf_errmsg(-1));

    /* Pass 1: read and check the segments to load (kept for pass 2); the
     * extent of the flash-window part decides the ROM mapping. */
    loads = calloc(nph ? nph : 1, sizeof *loads);
    index = calloc(nph ? nph : 1, sizeof *index);
    if (loads == NULL || index == NULL)
        FAIL("out of memory reading %s", path);
    size_t nload = 0;
    uint64_t rom_end = P4_SIM_ROM_BASE;
    for (size_t i = 0; i < nph; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, (int)i, &ph) == NULL)
            FAIL("%s: %s", path, elf_errmsg(-1));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        if (ph.p_filesz > ph.p_memsz || ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
            FAIL("%s: segment %zu is truncated or malformed", path, i);
        loads[nload] = ph;
        index[nload++] = i;
        if (ph.p_vaddr >= P4_SIM_ROM_BASE &&
            ph.p_vaddr < (uint64_t)P4_SIM_ROM_BASE + P4_SIM_ROM_MAX_SIZE) {
            uint64_t end = ph.p_vaddr + ph.p_memsz;
            if (end > (uint64_t)P4_SIM_ROM_BASE + P4_SIM_ROM_MAX_SIZE)
                FAIL("%s: segment %zu overruns the %u MiB flash window", path, i,
                     P4_SIM_ROM_MAX_SIZE >> 20);
            if (end > rom_end)
                rom_end = end;
        }
    }
    if (rom_end == P4_SIM_ROM_BASE)
        FAIL("%s has nothing to load at 0x%08x", path, P4_SIM_ROM_BASE);
    uint64_t extent = rom_end - P4_SIM_ROM_BASE;
    uint32_t map = (uint32_t)((extent + ROM_ALIGN - 1) & ~(uint64_t)(ROM_ALIGN - 1));
    if (!p4_sim_machine_map_rom(s, map, err, errlen))
        goto out;
    s->rom_end = (uint32_t)rom_end;

    /* Pass 2: copy and zero-fill. */
    for (size_t k = 0; k < nload; k++) {
        const GElf_Phdr ph = loads[k];
        const size_t i = index[k];
        uint64_t lo = ph.p_vaddr, hi = ph.p_vaddr + ph.p_memsz;
        bool in_rom = lo >= P4_SIM_ROM_BASE && hi <= (uint64_t)P4_SIM_ROM_BASE + map;
        bool in_fw = lo >= P4_SIM_FW_DATA_BASE &&
                     hi <= (uint64_t)P4_SIM_FW_DATA_BASE + P4_SIM_FW_DATA_SIZE;
        uint8_t *dst = (in_rom || in_fw)
                           ? p4_sim_machine_ptr(s, (uint32_t)lo, (uint32_t)ph.p_memsz)
                           : NULL;
        if (dst == NULL)
            FAIL("%s: segment %zu (0x%08llx, %llu bytes) lies outside the ROM window and the "
                 "firmware area (0x%08x, %u KiB)",
                 path, i, (unsigned long long)ph.p_vaddr, (unsigned long long)ph.p_memsz,
                 P4_SIM_FW_DATA_BASE, P4_SIM_FW_DATA_SIZE / 1024);
        memcpy(dst, img + ph.p_offset, ph.p_filesz);
        memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
    }
    s->rom_entry = (uint32_t)eh.e_entry;
    if (s->rom_entry < P4_SIM_ROM_BASE || s->rom_entry >= s->rom_end)
        FAIL("%s: entry 0x%08x is not in the ROM image", path, s->rom_entry);
    ok = true;
out:
    free(index);
    free(loads);
    if (elf != NULL)
        elf_end(elf);
    free(img);
    return ok;
}

bool p4_sim_rom_init(p4_sim_t *s, char *err, size_t errlen)
{
    p4_exec_result_t res;
    p4_sim_machine_exec(s, s->rom_entry, 2000, &res);
    if (res.status != P4_OK) {
        snprintf(err, errlen,
                 "ROM init at 0x%08x failed: status %u, cause %u at pc 0x%08x (tval 0x%08x)",
                 s->rom_entry, res.status, res.cause, res.pc, res.tval);
        return false;
    }
    uc_engine *uc = s->uc;
    uc_err e;
    if ((e = uc_reg_read(uc, UC_RISCV_REG_TP, &s->rom_tp)) != UC_ERR_OK ||
        (e = uc_reg_read(uc, UC_RISCV_REG_GP, &s->rom_gp)) != UC_ERR_OK) {
        snprintf(err, errlen, "uc_reg_read(tp/gp): %s", uc_strerror(e));
        return false;
    }
    return true;
}
