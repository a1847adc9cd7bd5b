/*
 * A biquad (second-order IIR) filter whose state lives on the device, so a
 * stream of audio blocks can be filtered one block per call.
 *
 * Entry points: biquad_init() sets coefficients and clears the state,
 * biquad_process() filters one block in place. Transposed direct form II.
 */
#include <stdint.h>

typedef struct {
    float b0, b1, b2, a1, a2; /* normalised coefficients (a0 == 1) */
    float z1, z2;             /* state */
} biquad_t;

void biquad_init(biquad_t *bq, const float *coef) {
    bq->b0 = coef[0];
    bq->b1 = coef[1];
    bq->b2 = coef[2];
    bq->a1 = coef[3];
    bq->a2 = coef[4];
    bq->z1 = 0.0f;
    bq->z2 = 0.0f;
}

int32_t biquad_process(biquad_t *bq, float *x, int32_t n) {
    float z1 = bq->z1, z2 = bq->z2;
    for (int32_t i = 0; i < n; i++) {
        float in = x[i];
        float out = bq->b0 * in + z1;
        z1 = bq->b1 * in - bq->a1 * out + z2;
        z2 = bq->b2 * in - bq->a2 * out;
        x[i] = out;
    }
    bq->z1 = z1;
    bq->z2 = z2;
    return n;
}
