#include <stdint.h>
void semihost_write(const char *text);
extern volatile uint32_t systick_wraps;
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
static char *hex(char *p, uint32_t v) { int i; for (i = 7; i >= 0; --i) *p++ = "0123456789abcdef"[(v >> (4 * i)) & 0xfu]; return p; }
int main(void) {
    static const uint32_t counts[3] = {1000u, 100000u, 10000000u};
    char line[32];
    for (int k = 0; k < 3; ++k) {
        uint32_t start, end, ticks, n = counts[k];
        SYST_RVR = 0xFFFFFFu; SYST_CVR = 0; SYST_CSR = 7u;
        while (SYST_CVR == 0) {}
        systick_wraps = 0;
        start = SYST_CVR;
        __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
        end = SYST_CVR;
        ticks = systick_wraps * 0x1000000u + start - end;
        char *p = hex(line, counts[k]); *p++ = ' '; p = hex(p, ticks); *p++ = '\n'; *p = 0;
        semihost_write(line);
    }
    return 0;
}
