/* README, "Arrays, synced back": scale 8-bit samples in place, saturating at 255. */
#include <stdint.h>

float apply_gain(uint8_t *data, int len, float gain) {
    for (int i = 0; i < len; i++) {
        float val = (float)data[i] * gain;
        if (val > 255.0f) val = 255.0f;
        data[i] = (uint8_t)val;
    }
    return gain;
}
