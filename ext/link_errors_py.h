/*
 * link_errors_py.h - a Link's failures as Python exceptions (link_errors_py.c):
 * a transport status with the link's details, and the notes and errors the
 * Link attaches to a call.
 */
#ifndef P4_EXT_LINK_ERRORS_PY_H
#define P4_EXT_LINK_ERRORS_PY_H

#include "p4py.h"

/* Raise the exception for a failed status (never P4_LINK_OK): the message
 * names l->op, what was dropped meanwhile, and for device errors the fault
 * (stack guard, function). Returns NULL. */
PyObject *p4py_link_raise(p4py_state *s, const p4_link_t *l, p4_link_status_t st,
                          uint32_t timeout_ms, const char *function);

/* Add a note to an exception a signal handler raised during a call: whether
 * the device stopped the kernel. */
void p4py_link_note_interrupt(const p4_link_t *l, PyObject *exc);

/* On the pending exception of a failed call: .arrays_unchanged = True and a
 * note that the caller's arrays are as before. */
void p4py_note_arrays_unchanged(void);

/* Raise BadFreeError (.pointer, .function). */
void p4py_raise_bad_free(p4py_state *s, const p4_link_t *l, const char *function, uint32_t ptr);

#endif /* P4_EXT_LINK_ERRORS_PY_H */
