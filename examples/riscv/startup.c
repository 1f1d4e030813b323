/* Minimal RV32 start-up for the example under qemu-system-riscv32 -M virt (or, with your part's
 * addresses, on silicon): reset entry (stack pointer, copy .data, zero .bss, paint the free
 * stack, call main, exit), output on the board's 16550 UART, exit through QEMU's test device,
 * and the instret counter (instructions retired) as the counter of ../cortex-m/board.h. */
#include <stdint.h>

#include "board.h"

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern uint32_t __stack_limit, __stack_top;
int main(void);
void board_reset(void);

#define STACK_PAINT 0x5AA5F00Du
#define UART_THR (*(volatile uint8_t *)0x10000000u) /* 16550 transmit register (virt) */
#define UART_LSR (*(volatile uint8_t *)0x10000005u)
#define TEST_DEVICE (*(volatile uint32_t *)0x00100000u) /* sifive_test: exit with a code */

__asm__(".section .text.entry, \"ax\"\n"
        ".global _start\n"
        "_start:\n"
        "    .option push\n"
        "    .option norelax\n"
        "    la gp, __global_pointer$\n" /* the linker relaxes small-data accesses to gp */
        "    .option pop\n"
        "    la sp, __stack_top\n"
        "    j board_reset\n");

void board_write(const char *text) {
    for (; *text; ++text) {
        while (!(UART_LSR & 0x20u)) {
        }
        UART_THR = (uint8_t)*text;
    }
}

void board_exit(int code) {
    /* 0x5555: pass; (code << 16) | 0x3333: fail with code (QEMU exits with it) */
    TEST_DEVICE = code == 0 ? 0x5555u : (((uint32_t)code << 16) | 0x3333u);
    for (;;) {
    }
}

static uint32_t instret(void) {
    uint32_t v;
    __asm__ volatile("rdinstret %0" : "=r"(v));
    return v;
}

static uint32_t counter_start;

void board_counter_start(void) { counter_start = instret(); }

/* Instructions retired since board_counter_start (32 bits: up to 4.29e9). */
uint32_t board_counter_read(void) { return instret() - counter_start; }

uint32_t board_stack_used(void) {
    const uint32_t *p = &__stack_limit;
    while (p < &__stack_top && *p == STACK_PAINT) ++p;
    return (uint32_t)((const uint8_t *)&__stack_top - (const uint8_t *)p);
}

void board_reset(void) {
    uint32_t *src = &__data_load, *dst = &__data_start, sp, *p = &__stack_limit;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    __asm__ volatile("mv %0, sp" : "=r"(sp));
    while ((uint32_t)p < sp - 64u) *p++ = STACK_PAINT;
    board_exit(main());
}
