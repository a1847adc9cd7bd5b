#include <stdint.h>

// Apply gain to audio samples
float apply_gain(uint8_t* data, int len, float gain) {
    for(int i=0; i<len; i++) {
        float val = (float)data[i] * gain;
        if (val > 255.0f) val = 255.0f;
        data[i] = (uint8_t)val;
    }
    return gain;
}
