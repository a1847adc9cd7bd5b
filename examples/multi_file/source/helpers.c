#include <stdint.h>

int32_t square(int32_t x) {
    return x * x;
}
