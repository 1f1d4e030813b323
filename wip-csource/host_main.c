#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include MODEL_H
int main(void) {
    static unsigned char input[MODEL_INPUT_BYTES];
    static double arena_store[(MODEL_ARENA_BYTES + 7) / 8 + 1];
    float scores[MODEL_NUM_CLASSES];
    while (fread(input, 1, sizeof input, stdin) == sizeof input) {
        int cls = MODEL_PREDICT(input, scores, arena_store);
        printf("%d", cls);
        for (unsigned i = 0; i < MODEL_NUM_CLASSES; ++i) {
            unsigned u; memcpy(&u, &scores[i], 4); printf(" %08x", u);
        }
        printf("\n");
    }
    return 0;
}
