#include <stdint.h>

// Helper function (can be in separate file)
extern int32_t square(int32_t x);

int32_t compute(int32_t a, int32_t b) {
    return square(a) + square(b);
}
