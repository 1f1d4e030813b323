/* What the example's start-up code (startup.c) gives main.c: output and exit through ARM
 * semihosting (QEMU -semihosting, or a debugger), an instruction/cycle counter, and the stack's
 * high-water mark. On a real board, replace these with its UART and DWT->CYCCNT. */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

void board_write(const char *text);   /* one NUL-terminated string to the host */
void board_exit(int code);            /* ends the program (QEMU exits with this code) */
void board_counter_start(void);       /* SysTick on the processor clock, free-running */
uint32_t board_counter_read(void);    /* SysTick ticks since board_counter_start */
uint32_t board_stack_used(void);      /* bytes of stack ever used since reset (painting) */

#endif
