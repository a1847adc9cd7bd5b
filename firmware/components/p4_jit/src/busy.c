/*
 * busy.c — frames that arrive while a kernel runs (busy mode).
 *
 * A port that reads its transport during p4_port_exec feeds the bytes to
 * p4_core_feed; complete requests land here instead of the dispatcher,
 * because the running command still owns the rx buffer, the tx buffer and the
 * reply channel's next frame. So:
 *   PING    answered at once (payload up to P4_BUSY_PAYLOAD_MAX)
 *   CANCEL  noted: the port stops the kernel, the running command is answered
 *           P4_ERR_CANCELLED, then this CANCEL is answered OK (empty)
 *   other   answered P4_ERR_BUSY at once
 * Each answer goes out in the framing (and seq) its request came in.
 */
#include "core_internal.h"

void p4_busy_request(p4_core_t *core, bool v2, uint32_t seq, uint8_t cmd, const uint8_t *req,
                     uint32_t len)
{
    if (cmd == P4_CMD_CANCEL && !core->cfg.v1_only && len == 0 && !core->cancel_ack_pending) {
        core->cancel_requested = true;
        core->cancel_ack_pending = true;
        core->cancel_v2 = v2;
        core->cancel_seq = seq;
        return;
    }
    uint8_t err[4];
    const uint8_t *payload = req;
    uint8_t flags = P4_FLAG_OK;
    if (cmd == P4_CMD_CANCEL && !core->cfg.v1_only && len == 0) {
        payload = NULL; /* a second CANCEL for the same kernel: nothing more to do */
    } else if (cmd != P4_CMD_PING) {
        core->frames_busy++;
        p4_wire_put_u32(err, P4_ERR_BUSY);
        payload = err;
        len = sizeof err;
        flags = P4_FLAG_ERROR;
    }
    p4_frame_send_as(core, v2, seq, cmd, flags, payload, len);
}

void p4_busy_answer_cancel(p4_core_t *core)
{
    if (!core->cancel_ack_pending)
        return;
    core->cancel_ack_pending = false;
    core->cancel_requested = false;
    p4_frame_send_as(core, core->cancel_v2, core->cancel_seq, P4_CMD_CANCEL, P4_FLAG_OK, NULL, 0);
}

bool p4_core_cancel_requested(const p4_core_t *core)
{
    return core != NULL && core->executing && core->cancel_requested;
}
