/*
 * sim_main.c — p4jit-sim: the virtual ESP32-P4.
 *
 *   p4jit-sim --fd N      serve the protocol on inherited fd N (a socketpair
 *                         end); exit 0 when it reaches EOF
 *   p4jit-sim --pty       open a pseudo-terminal, print its slave path on the
 *                         first stdout line, serve until killed (or until
 *                         --parent-pid exits)
 *
 * This file: options, the pty, the parent watch. Start-up, the serve loop
 * and shut-down are sim_start.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "sim.h"

#define ERR_LEN 512
#define MAX_BUDGET_MS (24u * 3600u * 1000u)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: p4jit-sim (--fd N | --pty) [options]\n"
            "\n"
            "The virtual ESP32-P4 of p4jit: the device firmware's portable core on a\n"
            "host port, running uploaded RISC-V code in Unicorn.\n"
            "\n"
            "transport (one of):\n"
            "  --fd N          serve on inherited file descriptor N (e.g. a socketpair\n"
            "                  end); exit 0 when it reaches end-of-file\n"
            "  --pty           open a pseudo-terminal, print its path as the first line\n"
            "                  on stdout, serve any serial client until killed\n"
            "options:\n"
            "  --v1            answer exactly like the original firmware (protocol v1\n"
            "                  commands only; extensions get error 2)\n"
            "  --rom PATH      ROM image (default: <exe dir>/../_data/p4jit_rom.elf,\n"
            "                  then <exe dir>/p4jit_rom.elf)\n"
            "  --budget-ms N   execution budget per call when the host sends none\n"
            "                  (default %u)\n"
            "  --psram-mib N   PSRAM size, 1..%u MiB (default %u)\n"
            "  --spin-us N     poll the transport without blocking for up to N us\n"
            "                  before sleeping, 0..%u (default $P4JIT_SPIN_US, else %u)\n"
            "  --parent-pid P  exit when process P exits (the library passes its own\n"
            "                  pid for sim:pty; a sim started by hand has none)\n"
            "  --help          this text\n"
            "\n"
            "Memory map, ROM symbols, faults: docs/VIRTUAL_DEVICE.md\n",
            P4_SIM_DEFAULT_BUDGET_MS, P4_SIM_PSRAM_MAX_MIB, P4_SIM_PSRAM_DEFAULT_MIB,
            P4_SIM_MAX_SPIN_US, P4_SIM_DEFAULT_SPIN_US);
}

static bool parse_u32(const char *text, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* <exe dir>/../_data/p4jit_rom.elf, then <exe dir>/p4jit_rom.elf. */
static const char *default_rom(char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    const char *dir = dirname(exe);
    snprintf(buf, len, "%s/../_data/p4jit_rom.elf", dir);
    if (access(buf, R_OK) == 0)
        return buf;
    snprintf(buf, len, "%s/p4jit_rom.elf", dir);
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Pseudo-terminal                                                           */
/* ------------------------------------------------------------------------ */

static bool open_pty(p4_sim_t *s, char *err, size_t errlen)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
        snprintf(err, errlen, "cannot open a pseudo-terminal: %s", strerror(errno));
        return false;
    }
    const char *name = ptsname(m);
    int sl = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
    if (sl < 0) {
        snprintf(err, errlen, "cannot open the pty slave: %s", strerror(errno));
        return false;
    }
    /* Raw bytes both ways: no echo, no line editing, no CR/LF mapping. */
    struct termios t;
    if (tcgetattr(sl, &t) != 0) {
        snprintf(err, errlen, "tcgetattr(%s): %s", name, strerror(errno));
        return false;
    }
    cfmakeraw(&t);
    if (tcsetattr(sl, TCSANOW, &t) != 0) {
        snprintf(err, errlen, "tcsetattr(%s): %s", name, strerror(errno));
        return false;
    }
    int fl = fcntl(m, F_GETFL);
    if (fl < 0 || fcntl(m, F_SETFL, fl | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "fcntl(pty master): %s", strerror(errno));
        return false;
    }
    /* The last client closing the slave ends its session (console forwarding
     * off, parser reset); without inotify sessions simply run together. */
    s->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (s->inotify >= 0 &&
        inotify_add_watch(s->inotify, name, IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE) < 0) {
        close(s->inotify);
        s->inotify = -1;
    s->parent_fd = -1;
    }
    s->fd = m;
    s->pty_slave = sl;
    printf("%s\n", name);
    fflush(stdout);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Parent watch                                                              */
/* ------------------------------------------------------------------------ */

/* Exit when `pid` exits: a pidfd the transport polls (readable once the
 * process is gone); on kernels without pidfd_open, a parent-death signal.
 * False when the process is already gone. */
static bool watch_parent(p4_sim_t *s, pid_t pid)
{
#ifdef SYS_pidfd_open
    s->parent_fd = (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
#endif
    if (s->parent_fd >= 0) {
        (void)fcntl(s->parent_fd, F_SETFD, FD_CLOEXEC);
        return true;
    }
    if (errno == ESRCH)
        return false;
    if (pid != getppid())
        return false; /* no pidfd: only our own parent can be watched */
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    return getppid() == pid; /* it may have died before the prctl */
}

/* ------------------------------------------------------------------------ */
/* main                                                                      */
/* ------------------------------------------------------------------------ */

static p4_sim_t sim;

int main(int argc, char **argv)
{
    p4_sim_t *s = &sim;
    s->psram_mib = P4_SIM_PSRAM_DEFAULT_MIB;
    s->budget_ms = P4_SIM_DEFAULT_BUDGET_MS;
    s->spin.budget_us = p4_spin_default_us(); /* $P4JIT_SPIN_US, as the library reads it */
    s->fd = -1;
    s->pty_slave = -1;
    s->inotify = -1;
    s->parent_fd = -1;

    enum { OPT_FD = 1, OPT_PTY, OPT_V1, OPT_ROM, OPT_BUDGET, OPT_PSRAM, OPT_SPIN, OPT_PARENT,
           OPT_HELP };
    static const struct option opts[] = {
        {"fd", required_argument, NULL, OPT_FD},
        {"pty", no_argument, NULL, OPT_PTY},
        {"v1", no_argument, NULL, OPT_V1},
        {"rom", required_argument, NULL, OPT_ROM},
        {"budget-ms", required_argument, NULL, OPT_BUDGET},
        {"psram-mib", required_argument, NULL, OPT_PSRAM},
        {"spin-us", required_argument, NULL, OPT_SPIN},
        {"parent-pid", required_argument, NULL, OPT_PARENT},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    uint32_t fd = 0;
    bool have_fd = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_FD:
            if (!parse_u32(optarg, 0, INT_MAX, &fd)) {
                fprintf(stderr, "p4jit-sim: --fd expects a file descriptor number, got '%s'\n",
                        optarg);
                return 2;
            }
            have_fd = true;
            break;
        case OPT_PTY:
            s->pty = true;
            break;
        case OPT_V1:
            s->v1 = true;
            break;
        case OPT_ROM:
            s->rom_path = optarg;
            break;
        case OPT_BUDGET:
            if (!parse_u32(optarg, 1, MAX_BUDGET_MS, &s->budget_ms)) {
                fprintf(stderr, "p4jit-sim: --budget-ms expects 1..%u, got '%s'\n",
                        MAX_BUDGET_MS, optarg);
                return 2;
            }
            break;
        case OPT_PSRAM:
            if (!parse_u32(optarg, 1, P4_SIM_PSRAM_MAX_MIB, &s->psram_mib)) {
                fprintf(stderr, "p4jit-sim: --psram-mib expects 1..%u, got '%s'\n",
                        P4_SIM_PSRAM_MAX_MIB, optarg);
                return 2;
            }
            break;
        case OPT_SPIN:
            if (!parse_u32(optarg, 0, P4_SIM_MAX_SPIN_US, &s->spin.budget_us)) {
                fprintf(stderr, "p4jit-sim: --spin-us expects 0..%u, got '%s'\n",
                        P4_SIM_MAX_SPIN_US, optarg);
                return 2;
            }
            break;
        case OPT_PARENT: {
            uint32_t pid;
            if (!parse_u32(optarg, 1, INT_MAX, &pid)) {
                fprintf(stderr, "p4jit-sim: --parent-pid expects a process id, got '%s'\n",
                        optarg);
                return 2;
            }
            if (!watch_parent(s, (pid_t)pid))
                return 0; /* it is gone already */
            break;
        }
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || have_fd == s->pty) {
        fprintf(stderr, "p4jit-sim: give exactly one of --fd N or --pty\n\n");
        usage(stderr);
        return 2;
    }
    if (have_fd) {
        if (fcntl((int)fd, F_GETFD) < 0) {
            fprintf(stderr, "p4jit-sim: --fd %u is not an open file descriptor\n", fd);
            return 2;
        }
        s->fd = (int)fd;
        int type;
        socklen_t tlen = sizeof type;
        s->fd_socket = getsockopt(s->fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0;
    }
    char rom_buf[PATH_MAX + 32];
    if (s->rom_path == NULL)
        s->rom_path = default_rom(rom_buf, sizeof rom_buf);
    if (s->rom_path == NULL) {
        fprintf(stderr, "p4jit-sim: cannot locate the ROM image; pass --rom PATH\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    char err[ERR_LEN] = "";
    if (!p4_sim_start(s, err, sizeof err) || (s->pty && !open_pty(s, err, sizeof err))) {
        fprintf(stderr, "p4jit-sim: %s\n", err[0] ? err : "start-up failed");
        return 1;
    }
    p4_sim_serve(s);
    p4_sim_stop(s);
    return 0;
}
