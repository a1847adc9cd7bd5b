/*
 * sim_start.c — bringing the virtual device up, serving sessions, and
 * taking it down: shared by p4jit-sim's main (sim_main.c) and the sim's
 * fuzz target (tests/c/fuzz_sim.c), so both run exactly the same device.
 */
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>

#include "sim.h"

static uint32_t session_heap_free(void *ctx, uint32_t *bytes)
{
    return p4_sim_session_reset(ctx, bytes);
}

bool p4_sim_start(p4_sim_t *s, char *err, size_t errlen)
{
    /* Buffers are touched only as far as frames use them. */
    s->rx_payload = malloc(P4_SIM_MAX_PAYLOAD);
    s->tx_payload = malloc(P4_SIM_MAX_PAYLOAD);
    if (s->rx_payload == NULL || s->tx_payload == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    p4_core_config_t cfg = {
        .port_ctx = s,
        .rx_payload = s->rx_payload,
        .rx_payload_cap = P4_SIM_MAX_PAYLOAD,
        .tx_payload = s->tx_payload,
        .tx_payload_cap = P4_SIM_MAX_PAYLOAD,
        .table = s->table,
        .table_cap = P4_SIM_TABLE_CAP,
        .v1_only = s->v1,
        .default_budget_ms = s->budget_ms,
        .session_heap_free = s->v1 ? NULL : session_heap_free,
    };
    if (p4_core_init(&s->core, &cfg) != P4_OK) {
        snprintf(err, errlen, "core init failed");
        return false;
    }
    return p4_sim_machine_open(s, err, errlen) && p4_sim_heap_setup(s) &&
           p4_sim_rom_load(s, s->rom_path, err, errlen) && p4_sim_machine_arm(s, err, errlen) &&
           p4_sim_rom_init(s, err, errlen) && p4_sim_session_snapshot(s);
}

void p4_sim_serve(p4_sim_t *s)
{
    for (;;) {
        p4_core_run(&s->core);
        if (s->closed)
            return;
        if (s->client_gone) {
            /* A pty client went away; the next one starts a fresh session.
             * Host allocations stay: a client may reopen the port and go on. */
            p4_core_session_end(&s->core, false);
            (void)p4_sim_session_reset(s, NULL); /* kernels' blocks, ROM data */
            if (s->pty_slave >= 0)
                (void)tcflush(s->pty_slave, TCIFLUSH); /* replies nobody will read */
            s->client_gone = false;
        }
    }
}

void p4_sim_stop(p4_sim_t *s)
{
    p4_sim_machine_close(s);
    p4_sim_session_release(s);
    p4_sim_heap_destroy(&s->heap);
    free(s->carry);
    s->carry = NULL;
    free(s->rx_payload);
    free(s->tx_payload);
    s->rx_payload = s->tx_payload = NULL;
}
