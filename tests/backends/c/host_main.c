/* Test driver for generated C on a hosted system (x86-64, aarch64 Linux): reads images of
 * MODEL_INPUT_BYTES bytes from stdin until EOF and prints, per image, the class and the bits of
 * each float32 score in hex ("07 3f800000 ..."), as examples/cortex-m/main.c does. The model is
 * chosen with -DMODEL=name -DMODEL_UPPER=NAME. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define CAT(a, b) a##b
#define XCAT(a, b) CAT(a, b)
#define STR(a) #a
#define XSTR(a) STR(a)
#include XSTR(MODEL.h)

#define INPUT_BYTES XCAT(MODEL_UPPER, _INPUT_BYTES)
#define NUM_CLASSES XCAT(MODEL_UPPER, _NUM_CLASSES)
#define ARENA_BYTES XCAT(MODEL_UPPER, _ARENA_BYTES)

static uint8_t input[INPUT_BYTES];
static uint64_t arena[(ARENA_BYTES + 7u) / 8u + 1u];

int main(void) {
    float scores[NUM_CLASSES];
    while (fread(input, 1, sizeof input, stdin) == sizeof input) {
        unsigned i;
        int cls = XCAT(MODEL, _predict)(input, scores, arena);
        printf("%04x", (unsigned)cls);
        for (i = 0; i < NUM_CLASSES; ++i) {
            uint32_t bits;
            memcpy(&bits, &scores[i], sizeof bits);
            printf(" %08lx", (unsigned long)bits);
        }
        printf("\n");
        /* scores == NULL must give the same class */
        if (XCAT(MODEL, _predict)(input, NULL, arena) != cls) return 3;
    }
    return 0;
}
