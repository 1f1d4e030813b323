/* The example firmware: classify the images of inputs.h with the exported model and print, per
 * image, "class score0 score1 ... ticks" (scores as the hex bits of their float32, ticks of
 * SysTick around the call), then "stack <bytes>" (the stack's high-water mark).
 *
 * MODEL names the generated model (binarynet export MODEL OUT_DIR --format c --name MODEL);
 * the Makefile passes it and the include path. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "inputs.h" /* N_INPUTS, static const uint8_t INPUTS[N_INPUTS][INPUT_BYTES] */

#define CAT(a, b) a##b
#define XCAT(a, b) CAT(a, b)
#define STR(a) #a
#define XSTR(a) STR(a)
#include XSTR(MODEL.h)

#define UPPER_INPUT_BYTES XCAT(MODEL_UPPER, _INPUT_BYTES)
#define UPPER_NUM_CLASSES XCAT(MODEL_UPPER, _NUM_CLASSES)
#define UPPER_ARENA_BYTES XCAT(MODEL_UPPER, _ARENA_BYTES)
#define PREDICT XCAT(MODEL, _predict)

typedef char input_size_matches[(INPUT_BYTES == UPPER_INPUT_BYTES) ? 1 : -1];

/* The scratch NAME_predict needs, 8-byte aligned. */
static uint64_t arena[(UPPER_ARENA_BYTES + 7u) / 8u];

static char *hex(char *p, uint32_t v, int digits) {
    int i;
    for (i = digits - 1; i >= 0; --i) *p++ = "0123456789abcdef"[(v >> (4 * i)) & 0xfu];
    return p;
}

#if defined(BNR_STAGE_HOOK)
/* -DBNR_STAGE_HOOK=board_stage_done: the counter at the end of each stage of the model, printed
 * after each image as "stages t0 t1 ..." (cumulative, in counter ticks) */
#define MAX_STAGES 64
void board_stage_done(int stage);
static uint32_t stage_ticks[MAX_STAGES];
static int stages_seen;
void board_stage_done(int stage) {
    if (stage < MAX_STAGES) stage_ticks[stage] = board_counter_read();
    if (stage + 1 > stages_seen) stages_seen = stage + 1;
}
#endif

int main(void) {
    float scores[UPPER_NUM_CLASSES];
    char line[16 + 9 * UPPER_NUM_CLASSES + 16];
    uint32_t n, i;
    for (n = 0; n < N_INPUTS; ++n) {
        uint32_t ticks;
        char *p = line;
        int cls;
        board_counter_start();
        cls = PREDICT(INPUTS[n], scores, arena);
        ticks = board_counter_read();
        p = hex(p, (uint32_t)cls, 4);
        for (i = 0; i < UPPER_NUM_CLASSES; ++i) {
            uint32_t bits;
            memcpy(&bits, &scores[i], sizeof bits);
            *p++ = ' ';
            p = hex(p, bits, 8);
        }
        *p++ = ' ';
        p = hex(p, ticks, 8);
        *p++ = '\n';
        *p = 0;
        board_write(line);
#if defined(BNR_STAGE_HOOK)
        {
            char stages[8 + 9 * MAX_STAGES + 2], *q = stages;
            int k;
            strcpy(q, "stages");
            q += 6;
            for (k = 0; k < stages_seen && k < MAX_STAGES; ++k) {
                *q++ = ' ';
                q = hex(q, stage_ticks[k], 8);
            }
            *q++ = '\n';
            *q = 0;
            board_write(stages);
        }
#endif
    }
    strcpy(line, "stack ");
    *hex(line + 6, board_stack_used(), 8) = 0;
    board_write(line);
    board_write("\n");
    return 0;
}
