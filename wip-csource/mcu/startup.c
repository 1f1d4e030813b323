/* Minimal Cortex-M start-up: vector table, reset handler (copy .data, zero .bss, call main,
 * exit through semihosting), a SysTick counter for instruction counts under QEMU -icount. */
#include <stdint.h>
#include <string.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
int main(void);

/* ARM semihosting: r0 = operation, r1 = argument block; bkpt 0xab on M-profile. */
static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void semihost_write(const char *text) { semihost(0x04, text); } /* SYS_WRITE0 */

void semihost_exit(int code) {
    /* SYS_EXIT_EXTENDED: ADP_Stopped_ApplicationExit with the exit code */
    uint32_t block[2] = {0x20026u, (uint32_t)code};
    semihost(0x20, block);
    for (;;) {
    }
}

volatile uint32_t systick_wraps;
void SysTick_Handler(void) { ++systick_wraps; }

void Reset_Handler(void) {
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
#if defined(__ARM_FP)
    /* enable the FPU: CP10 and CP11 full access */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb");
#endif
    semihost_exit(main());
}

static void Default_Handler(void) {
    semihost_write("unexpected exception\n");
    semihost_exit(99);
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&__stack_top), Reset_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler,
    Default_Handler, 0, Default_Handler, SysTick_Handler,
};
