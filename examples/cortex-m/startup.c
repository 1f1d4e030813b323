/* Minimal Cortex-M start-up for the example: vector table, reset handler (enable the FPU and
 * MVE, copy .data, zero .bss, paint the free stack, call main, exit), ARM semihosting, SysTick
 * counting. */
#include <stdint.h>

#include "board.h"

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern uint32_t __stack_limit, __stack_top;
int main(void);

#define STACK_PAINT 0x5AA5F00Du

/* ARM semihosting: r0 = operation, r1 = argument block; "bkpt 0xab" on M-profile. */
static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void board_write(const char *text) { semihost(0x04, text); } /* SYS_WRITE0 */

void board_exit(int code) {
    /* SYS_EXIT_EXTENDED with ADP_Stopped_ApplicationExit: QEMU exits with `code` */
    uint32_t block[2] = {0x20026u, (uint32_t)code};
    semihost(0x20, block);
    for (;;) {
    }
}

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static volatile uint32_t systick_wraps;
static uint32_t systick_start;

static void SysTick_Handler(void) { ++systick_wraps; }

void board_counter_start(void) {
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt on wrap, enabled */
    while (SYST_CVR == 0) {
    }
    systick_wraps = 0;
    systick_start = SYST_CVR;
}

uint32_t board_counter_read(void) {
    uint32_t wraps, now;
    do { /* a wrap between the two reads would be counted in neither */
        wraps = systick_wraps;
        now = SYST_CVR;
    } while (wraps != systick_wraps);
    return wraps * 0x1000000u + systick_start - now;
}

uint32_t board_stack_used(void) {
    const uint32_t *p = &__stack_limit;
    while (p < &__stack_top && *p == STACK_PAINT) ++p;
    return (uint32_t)((const uint8_t *)&__stack_top - (const uint8_t *)p);
}

static void paint_stack(void) {
    /* everything below the current stack pointer, less a margin for this function's frame */
    uint32_t sp, *p = &__stack_limit;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    while ((uint32_t)p < sp - 64u) *p++ = STACK_PAINT;
}

void Reset_Handler(void);
void Reset_Handler(void) {
    uint32_t *src = &__data_load, *dst = &__data_start;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* first: at -O3 the compiler may vectorize the loops below (MVE on Cortex-M55) */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20); /* CPACR: CP10, CP11 full access */
    __asm__ volatile("dsb\n\tisb");
#endif
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    paint_stack();
    board_exit(main());
}

static void Default_Handler(void) {
    board_write("unexpected exception\n");
    board_exit(99);
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&__stack_top), Reset_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler,
    Default_Handler, 0, Default_Handler, SysTick_Handler,
};
