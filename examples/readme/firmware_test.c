/* README, "Firmware functions": printf and malloc come from the firmware. */
#include <stdio.h>
#include <stdlib.h>

int test_firmware_calls(void) {
    printf("Hello from JIT!\n");
    int *data = malloc(4 * sizeof(int));
    if (data == NULL)
        return -1;
    data[0] = 42;
    printf("Allocated and set data[0] = %d\n", data[0]);
    int value = data[0];
    free(data);
    return value;
}
