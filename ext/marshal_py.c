/* marshal_py.c — placeholder exec hook; the owner of this part replaces it. */
#include "p4py.h"

int p4py_marshal_exec(PyObject *module)
{
    (void)module;
    return 0;
}
