#include <stdint.h>
#include <string.h>
#include MODEL_H
#include "inputs.h" /* N_INPUTS, static const uint8_t INPUTS[N_INPUTS][MODEL_INPUT_BYTES] */

void semihost_write(const char *text);
extern volatile uint32_t systick_wraps;

static uint32_t arena[(MODEL_ARENA_BYTES + 3) / 4 + 1];

static char *hex(char *p, uint32_t v, int digits) {
    int i;
    for (i = digits - 1; i >= 0; --i) *p++ = "0123456789abcdef"[(v >> (4 * i)) & 0xfu];
    return p;
}

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

int main(void) {
    float scores[MODEL_NUM_CLASSES];
    char line[16 + 9 * MODEL_NUM_CLASSES + 32];
    uint32_t n, i;
    for (n = 0; n < N_INPUTS; ++n) {
        uint32_t wraps, start, end, ticks;
        char *p = line;
        int cls;
        SYST_RVR = 0xFFFFFFu;
        SYST_CVR = 0;
        SYST_CSR = 7u; /* processor clock, interrupt on wrap, enabled */
        while (SYST_CVR == 0) {
        }
        systick_wraps = 0;
        start = SYST_CVR;
        cls = MODEL_PREDICT(INPUTS[n], scores, arena);
        end = SYST_CVR;
        SYST_CSR = 0;
        wraps = systick_wraps;
        ticks = wraps * 0x1000000u + start - end;
        p = hex(p, (uint32_t)cls, 2);
        for (i = 0; i < MODEL_NUM_CLASSES; ++i) {
            uint32_t u;
            memcpy(&u, &scores[i], 4);
            *p++ = ' ';
            p = hex(p, u, 8);
        }
        *p++ = ' ';
        *p++ = 't';
        p = hex(p, ticks, 8);
        *p++ = '\n';
        *p = 0;
        semihost_write(line);
    }
    return 0;
}
