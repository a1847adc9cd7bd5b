/*
 * p4bench.c — native helpers for benchmarks and tests, never shipped.
 *
 * Built by `make bench-native` (the Makefile's pytest and bench targets run
 * it) into build/bench/p4bench*.so, from this file and the extension's own
 * codec (ext/frame.c) and spin (ext/p4_spin.c), so that what is measured and
 * exercised is the product's code:
 *   frame_encode / frame_decode  the frame codec, for the fake devices in tests
 *   codec_bench                  the codec alone, timed in C
 *   pty_bench                    a raw pseudo-terminal's ceiling, no protocol
 * p4jit._core exposes none of these.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "link_transport.h" /* P4_LINK_MAX_RESPONSE: frame_decode's default limit */
#include "p4_jit_protocol.h"
#include "p4_spin.h"

/* ---- the codec from Python (fake devices in tests) -------------------------------- */

static PyObject *py_frame_encode(PyObject *Py_UNUSED(m), PyObject *args)
{
    unsigned char cmd, flags;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "bby*:frame_encode", &cmd, &flags, &view))
        return NULL;
    if ((uint64_t)view.len > UINT32_MAX - P4_FRAME_OVERHEAD) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "payload too large");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, view.len + P4_FRAME_OVERHEAD);
    if (out)
        (void)p4_frame_encode((uint8_t *)PyBytes_AS_STRING(out), (size_t)view.len + P4_FRAME_OVERHEAD,
                              cmd, flags, view.buf, (uint32_t)view.len);
    PyBuffer_Release(&view);
    return out;
}

/* frame_decode(data, max_len=..., flags_ok=...) -> (frames, garbage_bytes, leftover_state)
 * frames: list of (cmd, flags, payload, checksum_ok). */
static PyObject *py_frame_decode(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"data", "max_len", "flags_ok", NULL};
    Py_buffer view;
    unsigned int max_len = P4_LINK_MAX_RESPONSE;
    unsigned int flags_ok = 0xFFFFFFFFu;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|II:frame_decode", kwlist, &view, &max_len, &flags_ok))
        return NULL;
    p4_fdec_t d;
    p4_fdec_init(&d, max_len, flags_ok);
    PyObject *frames = PyList_New(0);
    uint8_t *buf = NULL;
    const uint8_t *p = view.buf;
    size_t n = (size_t)view.len;
    if (!frames)
        goto fail;
    while (n) {
        size_t used = 0;
        p4_fdec_event_t ev = p4_fdec_feed(&d, p, n, &used);
        p += used;
        n -= used;
        if (ev == P4_FDEC_HEADER) {
            PyMem_Free(buf);
            buf = PyMem_Malloc(d.len ? d.len : 1);
            if (!buf) {
                PyErr_NoMemory();
                goto fail;
            }
            p4_fdec_seg_t seg = {buf, d.len};
            p4_fdec_set_sink(&d, &seg, 1);
        } else if (ev == P4_FDEC_FRAME || ev == P4_FDEC_BAD_CHECKSUM) {
            PyObject *t = Py_BuildValue("(BBy#O)", d.cmd, d.flags, (const char *)buf,
                                        (Py_ssize_t)d.len, ev == P4_FDEC_FRAME ? Py_True : Py_False);
            if (!t || PyList_Append(frames, t) < 0) {
                Py_XDECREF(t);
                goto fail;
            }
            Py_DECREF(t);
        }
    }
    if (d.state == P4_FDEC_S_SINK) { /* empty payload pending its checksum */
        PyMem_Free(buf);
        buf = NULL;
    }
    PyMem_Free(buf);
    PyBuffer_Release(&view);
    return Py_BuildValue("(NKi)", frames, (unsigned long long)d.garbage, (int)d.state);
fail:
    PyMem_Free(buf);
    Py_XDECREF(frames);
    PyBuffer_Release(&view);
    return NULL;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* codec_bench(payload_size, iterations, v2=False) -> (encode_seconds, decode_seconds)
 * Encode: header + memcpy + checksum (v2: CRC-32) into a frame buffer. Decode:
 * feed the frame in 64 KiB pieces (as reads arrive) into a payload buffer,
 * checksum verified. */
static PyObject *py_codec_bench(PyObject *Py_UNUSED(m), PyObject *args)
{
    Py_ssize_t size, iters;
    int v2 = 0;
    if (!PyArg_ParseTuple(args, "nn|p:codec_bench", &size, &iters, &v2))
        return NULL;
    if (size < 0 || size > (1 << 28) || iters < 1) {
        PyErr_SetString(PyExc_ValueError, "codec_bench: 0 <= size <= 256 MiB, iterations >= 1");
        return NULL;
    }
    uint8_t *src = malloc((size_t)size + 1), *frame = malloc((size_t)size + P4_V2_FRAME_OVERHEAD),
            *dst = malloc((size_t)size + 1);
    if (!src || !frame || !dst) {
        free(src);
        free(frame);
        free(dst);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < size; i++)
        src[i] = (uint8_t)(i * 31 + 7);
    double te = 0, td = 0;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    double t0 = mono();
    size_t flen = 0;
    for (Py_ssize_t k = 0; k < iters; k++)
        flen = v2 ? p4_frame_encode_v2(frame, (size_t)size + P4_V2_FRAME_OVERHEAD, P4_CMD_READ_MEM,
                                       P4_FLAG_OK, (uint32_t)k + 1u, src, (uint32_t)size)
                  : p4_frame_encode(frame, (size_t)size + P4_FRAME_OVERHEAD, P4_CMD_READ_MEM,
                                    P4_FLAG_OK, src, (uint32_t)size);
    te = mono() - t0;
    p4_fdec_t d;
    p4_fdec_init(&d, (uint32_t)size + 1, 0xFFFFFFFFu);
    t0 = mono();
    for (Py_ssize_t k = 0; k < iters; k++) {
        size_t off = 0;
        while (off < flen) {
            size_t piece = flen - off < 65536 ? flen - off : 65536, used = 0;
            p4_fdec_event_t ev = p4_fdec_feed(&d, frame + off, piece, &used);
            off += used;
            if (ev == P4_FDEC_HEADER) {
                p4_fdec_seg_t seg = {dst, d.len};
                p4_fdec_set_sink(&d, &seg, 1);
            } else if (ev == P4_FDEC_BAD_CHECKSUM) {
                bad = 1;
            }
        }
    }
    td = mono() - t0;
    if (size && memcmp(src, dst, (size_t)size) != 0)
        bad = 1;
    Py_END_ALLOW_THREADS
    free(src);
    free(frame);
    free(dst);
    if (bad) {
        PyErr_SetString(PyExc_AssertionError, "codec_bench: round trip mismatch");
        return NULL;
    }
    return Py_BuildValue("(dd)", te, td);
}

/* ---- pty_bench: what a pseudo-terminal moves here, with no protocol ---------------- */

typedef struct {
    int fd;
    uint8_t *buf;
    size_t len;
    long spin_us; /* < 0: blocking I/O; 0: non-blocking + poll(); > 0: spin, then poll() */
    p4_spin_t spin;
} ptyb_side_t;

/* After EAGAIN: the Link's spin (p4_spin.h), else block in poll(). */
static void ptyb_wait(ptyb_side_t *s, short ev)
{
    if (p4_spin_step(&s->spin))
        return;
    struct pollfd p = {.fd = s->fd, .events = ev, .revents = 0};
    (void)poll(&p, 1, 1000);
}

/* Move s->len bytes: write them from s->buf, or read them (into s->buf,
 * 1 MiB at a time, overwritten). 0, or an errno value. */
static int ptyb_move(ptyb_side_t *s, bool writing)
{
    size_t done = 0;
    double last = mono();
    while (done < s->len) {
        size_t n = s->len - done;
        ssize_t k = writing ? write(s->fd, s->buf + done, n)
                            : read(s->fd, s->buf, n < (1u << 20) ? n : (1u << 20));
        if (k > 0) {
            done += (size_t)k;
            last = mono();
            p4_spin_progress(&s->spin);
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN && s->spin_us >= 0) {
            if (mono() - last > 5.0)
                return ETIMEDOUT;
            ptyb_wait(s, writing ? POLLOUT : POLLIN);
            continue;
        }
        return k < 0 ? errno : EIO;
    }
    return 0;
}

static int ptyb_open(int *master, int *slave)
{
    *master = *slave = -1;
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        return errno;
    const char *name = NULL;
    if (grantpt(m) != 0 || unlockpt(m) != 0 || !(name = ptsname(m))) {
        int e = errno;
        close(m);
        return e;
    }
    int sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sl < 0) {
        int e = errno;
        close(m);
        return e;
    }
    struct termios t;
    int fds[2] = {m, sl};
    for (int i = 0; i < 2; i++) {
        if (tcgetattr(fds[i], &t) == 0) {
            cfmakeraw(&t);
            (void)tcsetattr(fds[i], TCSANOW, &t);
        }
    }
    *master = m;
    *slave = sl;
    return 0;
}

/* pty_bench(size, spin_us=-1, master_to_slave=False) -> seconds
 * Open a raw pseudo-terminal pair; the caller writes `size` bytes into one
 * end (GIL released) while a child process reads them from the other — two
 * processes, as the host and p4jit-sim are. spin_us < 0: plain blocking
 * read()/write(); 0: non-blocking with poll() per wait (the Link without
 * spinning); > 0: the Link's bounded spin, then poll(). The default direction
 * is slave -> master (what a host uploading to p4jit-sim does). */
static PyObject *py_pty_bench(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"size", "spin_us", "master_to_slave", NULL};
    Py_ssize_t size;
    long spin_us = -1;
    int m2s = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n|lp:pty_bench", kwlist, &size, &spin_us, &m2s))
        return NULL;
    if (size < 1 || size > (1 << 28) || spin_us > (long)P4_SPIN_US_MAX) {
        PyErr_Format(PyExc_ValueError, "pty_bench: 1 <= size <= 256 MiB, spin_us <= %u",
                     (unsigned)P4_SPIN_US_MAX);
        return NULL;
    }
    uint8_t *wbuf = malloc((size_t)size), *rbuf = malloc(1u << 20);
    if (!wbuf || !rbuf) {
        free(wbuf);
        free(rbuf);
        return PyErr_NoMemory();
    }
    memset(wbuf, 0x5A, (size_t)size);
    int master, slave, err;
    double dt = 0;
    Py_BEGIN_ALLOW_THREADS
    err = ptyb_open(&master, &slave);
    if (!err) {
        ptyb_side_t w = {.fd = m2s ? master : slave, .buf = wbuf, .len = (size_t)size, .spin_us = spin_us};
        ptyb_side_t r = {.fd = m2s ? slave : master, .buf = rbuf, .len = (size_t)size, .spin_us = spin_us};
        p4_spin_init(&w.spin, spin_us > 0 ? (uint32_t)spin_us : 0);
        p4_spin_init(&r.spin, spin_us > 0 ? (uint32_t)spin_us : 0);
        if (spin_us >= 0) {
            (void)fcntl(w.fd, F_SETFL, fcntl(w.fd, F_GETFL) | O_NONBLOCK);
            (void)fcntl(r.fd, F_SETFL, fcntl(r.fd, F_GETFL) | O_NONBLOCK);
        }
        /* the reader is a child process (async-signal-safe calls only),
         * which reports the end on a pipe; the caller writes */
        int done[2] = {-1, -1};
        pid_t pid = -1;
        if (pipe2(done, O_CLOEXEC) != 0)
            err = errno;
        else if ((pid = fork()) == 0) {
            uint8_t ok = ptyb_move(&r, false) == 0;
            ssize_t n = write(done[1], &ok, 1);
            _exit(n == 1 && ok ? 0 : 1);
        } else if (pid < 0) {
            err = errno;
        } else {
            double t0 = mono();
            err = ptyb_move(&w, true);
            uint8_t ok = 0;
            if (!err) {
                struct pollfd p = {.fd = done[0], .events = POLLIN, .revents = 0};
                if (poll(&p, 1, 10000) != 1 || read(done[0], &ok, 1) != 1 || !ok)
                    err = EIO;
            }
            dt = mono() - t0;
            if (err)
                (void)kill(pid, SIGKILL); /* a reader waiting for bytes that never come */
            int status = 0;
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
        if (done[0] >= 0) {
            close(done[0]);
            close(done[1]);
        }
        close(master);
        close(slave);
    }
    Py_END_ALLOW_THREADS
    free(wbuf);
    free(rbuf);
    if (err) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyFloat_FromDouble(dt);
}

static PyMethodDef p4bench_functions[] = {
    {"frame_encode", (PyCFunction)py_frame_encode, METH_VARARGS,
     "frame_encode(cmd, flags, payload) -> bytes\n--\n\nA whole frame with its checksum."},
    {"frame_decode", (PyCFunction)(void (*)(void))py_frame_decode, METH_VARARGS | METH_KEYWORDS,
     "frame_decode(data, max_len=..., flags_ok=...) -> (frames, garbage, state)\n--\n\n"
     "Run the incremental decoder over data; frames are (cmd, flags, payload, checksum_ok)."},
    {"codec_bench", (PyCFunction)py_codec_bench, METH_VARARGS,
     "codec_bench(payload_size, iterations) -> (encode_s, decode_s)\n--\n\nTime the codec alone."},
    {"pty_bench", (PyCFunction)(void (*)(void))py_pty_bench, METH_VARARGS | METH_KEYWORDS,
     "pty_bench(size, spin_us=-1, master_to_slave=False) -> seconds\n--\n\nMove size bytes through "
     "a raw pseudo-terminal in C (the caller writes, a child process reads), no protocol: the "
     "transport's ceiling. spin_us < 0: blocking I/O; 0: non-blocking + poll(); > 0: the Link's "
     "bounded spin, then poll()."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef p4bench_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "p4bench",
    .m_doc = "p4jit's native bench and test helpers (not part of the product).",
    .m_size = 0,
    .m_methods = p4bench_functions,
};

PyMODINIT_FUNC PyInit_p4bench(void)
{
    return PyModule_Create(&p4bench_module);
}
