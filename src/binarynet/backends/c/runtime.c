/* ---- binarynet C runtime (C99; <stdint.h>, <stddef.h>, <string.h> only) --------------------
 *
 * Every binary layer of a .bnn graph runs here as one *stage*: the layer (dense or conv2d, on
 * uint8 or packed ±1 input), the max-pools after it, and the threshold (→ packed bits) or the
 * scores (→ float32) that consume its integers. A dense layer is the convolution whose kernel
 * covers its whole input ([1, 1, K] for uint8 or flat bits, [H, W, C] for bits kept channels
 * last), so one routine computes both.
 *
 * Bits: bit 1 = −1, bit 0 = +1, packed along the channels into 32-bit words, element k in bit
 * k % 32 of word k / 32, each position's channels padded to a multiple of 64 with zero bits (the
 * .bnn file's 64-bit words, read as pairs of 32-bit words, low half first). For ±1 vectors a, w
 * of C real elements: a·w = C − 2·popcount(a ⊕ w) (padding bits are zero in both operands).
 *
 * uint8 input (the first layer): y = Σ (pᵢ − zp)·wᵢ = Σ pᵢwᵢ − zp·Σwᵢ, and with N the set of
 * −1 weights, Σ pᵢwᵢ = Σ pᵢ − 2·Σ_{i∈N} pᵢ; zp·Σwᵢ is a per-output constant computed at export
 * (`offset`). With a popcount instruction the sum over N is taken on the patch's 8 bit planes
 * (Algorithm 5 of the paper, 8 AND-popcounts per 32 pixels); on Helium by predicated VADDVA
 * (the weight bits as byte-lane predicates); otherwise it is cheaper to add the pixels
 * themselves: four at a time, each 32-bit word of pixels ANDed with a byte mask made from 4
 * weight bits (a 16-entry table), the masked bytes added by USADA8 (sum of four bytes, on cores
 * with the DSP extension: Cortex-M4, M7, M55, optional on M33) or in two 16-bit lanes
 * elsewhere. Measured on Cortex-M4 (benchmarks/mcu.py): 2.8x fewer instructions than the bit
 * planes with a SWAR popcount for the MNIST MLP.
 * A padded tap is a pixel equal to zp, which contributes (zp − zp)·wᵢ = 0.
 *
 * Padded taps of a ±1 convolution contribute 0 when it pads with 0 (the third value, as torch
 * pads binary activations by default): they are skipped. With pad_value ±1 each padded tap
 * contributes pad·Σ_c w_c (bnr_pad_taps). Max-pooling takes the maximum of the integers y before the threshold, exactly
 * as the graph defines it. The only floating point is the scores: four float32 operations in
 * the engine's order, each stored to a volatile so that no compiler fuses a multiply and an add
 * (an FMA rounds once and would change the last bit).
 */

/* Variants, chosen from the compiler's predefined macros; each can be forced with -D:
 *   popcount of one word: BNR_POPCOUNT_BUILTIN (a popcount instruction: x86 POPCNT, RISC-V Zbb
 *     cpop, Armv8-A cnt), BNR_POPCOUNT_SWAR (2-, 4-, 8-bit partial sums), BNR_POPCOUNT_TABLE;
 *   the XOR-popcount of a weight row against the activations: BNR_XOR_NEON (Armv8-A),
 *     BNR_XOR_MVE (Helium: Cortex-M55, M85), BNR_XOR_CSA (carry-save, for cores without a
 *     popcount instruction), BNR_XOR_WORD (one popcount per word, for cores with one). */
#if defined(__aarch64__) && defined(__ARM_NEON) && defined(__GNUC__)
#include <arm_neon.h>
#define BNR_XOR_NEON 1
#define BNR_POPCOUNT_BUILTIN 1 /* the tail: GCC and Clang emit cnt for it on Armv8-A */
#endif
#if !defined(BNR_POPCOUNT_SWAR) && !defined(BNR_POPCOUNT_TABLE) && !defined(BNR_POPCOUNT_BUILTIN)
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
#define BNR_POPCOUNT_SWAR 1 /* no popcount instruction on Cortex-M */
#elif defined(__GNUC__) && (defined(__POPCNT__) || defined(__riscv_zbb))
#define BNR_POPCOUNT_BUILTIN 1 /* POPCNT, cpop */
#else
#define BNR_POPCOUNT_SWAR 1
#endif
#endif
#if !defined(BNR_XOR_NEON) && !defined(BNR_XOR_MVE) && !defined(BNR_XOR_CSA) && \
    !defined(BNR_XOR_WORD)
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && defined(__GNUC__)
#define BNR_XOR_MVE 1
#elif defined(BNR_POPCOUNT_BUILTIN)
#define BNR_XOR_WORD 1
#else
#define BNR_XOR_CSA 1
#endif
#endif
#if defined(BNR_XOR_MVE)
#include <arm_mve.h>
#endif

/* -DBNR_STAGE_HOOK=f calls void f(int stage) after each stage (to time the layers one by one,
 * as examples/cortex-m/main.c does); by default nothing. */
#if defined(BNR_STAGE_HOOK)
void BNR_STAGE_HOOK(int stage);
#define BNR_STAGE_DONE(k) BNR_STAGE_HOOK(k)
#else
#define BNR_STAGE_DONE(k) ((void)0)
#endif

typedef struct {
    uint32_t kh, kw, sh, sw;
} bnr_pool;

typedef struct {
    uint8_t u8_input;   /* 1: uint8 pixels in (Algorithm 5); 0: packed ±1 bits */
    uint8_t zero_point; /* uint8 input: the pixel value that stands for 0 */
    uint16_t npools;
    uint32_t in_h, in_w, in_c; /* the input as [H, W, C] (a flat vector is [1, 1, K]) */
    uint32_t kh, kw, sh, sw, ph, pw;
    uint32_t out_h, out_w; /* after the layer, before pooling */
    uint32_t out_c;
    uint32_t row_words;   /* 32-bit words of one output's weights */
    uint32_t final_h, final_w; /* the stage's output positions, after pooling */
    const uint32_t *weight;
    const int32_t *offset; /* uint8 input: −zp·Σw per output; else NULL */
    const bnr_pool *pools;
    const int32_t *lo, *hi; /* threshold: +1 iff lo ≤ y ≤ hi; NULL for the scores stage */
    float input_scale;
    const float *bias, *scale, *shift; /* scores stage (bias may be NULL) */
    int32_t pad; /* ±1 input: the value of a padded tap (0, +1 or −1) */
} bnr_stage;

static uint32_t bnr_words64(uint32_t k) { return 2u * ((k + 63u) / 64u); }

#if defined(BNR_POPCOUNT_TABLE)
static const uint8_t bnr_pop8[256] = {
#define BNR_B2(n) n, n + 1, n + 1, n + 2
#define BNR_B4(n) BNR_B2(n), BNR_B2(n + 1), BNR_B2(n + 1), BNR_B2(n + 2)
#define BNR_B6(n) BNR_B4(n), BNR_B4(n + 1), BNR_B4(n + 1), BNR_B4(n + 2)
    BNR_B6(0), BNR_B6(1), BNR_B6(1), BNR_B6(2)};
#endif

#if defined(BNR_POPCOUNT_SWAR) && !defined(BNR_XOR_MVE)
/* The bit counts of the four bytes of v, each in its byte (0..8): 2-, 4-, 8-bit partial sums. */
static uint32_t bnr_byte_counts(uint32_t v) {
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    return (v + (v >> 4)) & 0x0f0f0f0fu;
}
#endif

#if !defined(BNR_XOR_MVE) && !(defined(BNR_XOR_CSA) && defined(BNR_POPCOUNT_SWAR))
static uint32_t bnr_popcount(uint32_t v) {
#if defined(BNR_POPCOUNT_BUILTIN)
    return (uint32_t)__builtin_popcount(v);
#elif defined(BNR_POPCOUNT_TABLE)
    return (uint32_t)bnr_pop8[v & 0xffu] + bnr_pop8[(v >> 8) & 0xffu] +
           bnr_pop8[(v >> 16) & 0xffu] + bnr_pop8[v >> 24];
#else /* SWAR: the byte counts, then one multiply adds the four bytes */
    return (bnr_byte_counts(v) * 0x01010101u) >> 24;
#endif
}
#endif

#if defined(__ARM_FEATURE_SIMD32) && defined(__GNUC__)
/* USADA8 t, x, 0, t: t += the four bytes of x */
#define BNR_ADD4(t, x) __asm__("usada8 %0, %1, %2, %0" : "+r"(t) : "r"(x), "r"(0u))
#define BNR_SUM_BYTES(t, x) BNR_ADD4(t, x) /* t += the four bytes of x */
#else
/* two 16-bit lanes: t += bytes 0 + 1 (low lane) and bytes 2 + 3 (high lane) */
#define BNR_ADD4(t, x) ((t) += ((x) & 0x00ff00ffu) + (((x) >> 8) & 0x00ff00ffu))
/* one multiply adds the four bytes into the top one (their sum must be below 256) */
#define BNR_SUM_BYTES(t, x) ((t) += ((x) * 0x01010101u) >> 24)
#endif

#if defined(BNR_XOR_CSA)
/* Carry-save accumulation (Harley and Seal): the XORed words are added bit-wise, each bit
 * position an independent counter held in bit planes ones, twos, fours, eights (weights 1, 2,
 * 4, 8). A full adder of three words costs five logic operations, so a block of 16 words costs
 * 15 of them and one popcount (of the sixteens carried out) instead of 16 popcounts. At the end
 * Σ popcount = 16·Σ pop(sixteens) + 8·pop(eights) + 4·pop(fours) + 2·pop(twos) + pop(ones). */
#define BNR_CSA(h, l, a, b, c)                  \
    do {                                        \
        const uint32_t a_ = (a), b_ = (b), c_ = (c); \
        const uint32_t u_ = a_ ^ b_;            \
        (h) = (a_ & b_) | (u_ & c_);            \
        (l) = u_ ^ c_;                          \
    } while (0)
#define BNR_HALF(h, l, b)     \
    do {                      \
        const uint32_t b_ = (b); \
        (h) = (l) & b_;       \
        (l) ^= b_;            \
    } while (0)
#if defined(BNR_POPCOUNT_SWAR)
#define BNR_POP_ADD(t, v) BNR_SUM_BYTES(t, bnr_byte_counts(v))
#else
#define BNR_POP_ADD(t, v) ((t) += bnr_popcount(v))
#endif
#define BNR_X(k) (p[k] ^ q[k])
#if defined(__thumb2__) && defined(__GNUC__)
/* x0, x1 = the two XORed words at k (LDRD: two words per load instruction) */
#define BNR_X2(x0, x1, k)                                                           \
    do {                                                                            \
        uint32_t a0_, a1_, w0_, w1_;                                                \
        __asm__("ldrd %0, %1, [%2, %3]" : "=r"(a0_), "=r"(a1_)                      \
                : "r"(p), "i"(4 * (k)), "m"(*(const uint32_t(*)[2])(p + (k))));     \
        __asm__("ldrd %0, %1, [%2, %3]" : "=r"(w0_), "=r"(w1_)                      \
                : "r"(q), "i"(4 * (k)), "m"(*(const uint32_t(*)[2])(q + (k))));     \
        (x0) = a0_ ^ w0_;                                                           \
        (x1) = a1_ ^ w1_;                                                           \
    } while (0)
#else
#define BNR_X2(x0, x1, k) ((x0) = BNR_X(k), (x1) = BNR_X((k) + 1))
#endif
/* four words into ones and twos; the fours carried out in f */
#define BNR_CSA4(f, k)                                     \
    do {                                                   \
        uint32_t ta_, tb_, x0_, x1_, x2_, x3_;             \
        BNR_X2(x0_, x1_, k);                               \
        BNR_X2(x2_, x3_, (k) + 2);                         \
        BNR_CSA(ta_, ones, ones, x0_, x1_);                \
        BNR_CSA(tb_, ones, ones, x2_, x3_);                \
        BNR_CSA(f, twos, twos, ta_, tb_);                  \
    } while (0)
#define BNR_CSA8(e, k)                        \
    do {                                      \
        uint32_t fa_, fb_;                    \
        BNR_CSA4(fa_, k);                     \
        BNR_CSA4(fb_, (k) + 4);               \
        BNR_CSA(e, fours, fours, fa_, fb_);   \
    } while (0)
#endif

/* Σ over `rows` rows r of popcount(a[r·as + k] ⊕ w[r·ws + k]) for k < n: the −1 agreements of a
 * weight row with the activations it meets (a convolution's rows of taps, or one dense row). */
static uint32_t bnr_xor_rows(const uint32_t *a, uint32_t as, const uint32_t *w, uint32_t ws,
                             uint32_t rows, uint32_t n) {
    uint32_t total = 0, r, k;
#if defined(BNR_XOR_NEON)
    for (r = 0; r < rows; ++r, a += as, w += ws) {
        /* eor → cnt (bytes) → widening pairwise adds, 31 rounds of byte sums at most */
        uint32x4_t acc = vdupq_n_u32(0);
        k = 0;
        while (k + 4 <= n) {
            uint8x16_t bytes = vdupq_n_u8(0);
            uint32_t round = 0;
            for (; round < 31 && k + 4 <= n; ++round, k += 4) {
                uint32x4_t x = veorq_u32(vld1q_u32(a + k), vld1q_u32(w + k));
                bytes = vaddq_u8(bytes, vcntq_u8(vreinterpretq_u8_u32(x)));
            }
            acc = vpadalq_u16(acc, vpaddlq_u8(bytes));
        }
        total += vaddvq_u32(acc);
        for (; k < n; ++k) total += bnr_popcount(a[k] ^ w[k]);
    }
#elif defined(BNR_XOR_MVE)
    /* MVE has no popcount. Three XORed 128-bit vectors go through one carry-save adder (ones
     * l, twos h); each gets the 2- and 4-bit partial sums (nibbles ≤ 4, the second step as
     * v − 3·((v >> 2) & 0x33)), n = nib(l) + 2·nib(h) ≤ 12, the bytes as n − 15·(n >> 4) (one
     * VMLA), summed across the vector into a scalar by VADDVA: 30 instructions per 384 bits.
     * Vectors left over take the same steps alone; a row's last words (fewer than four) are
     * loaded under a tail predicate. */
    const uint8x16_t m1 = vdupq_n_u8(0x55), m2 = vdupq_n_u8(0x33);
#define BNR_MVE_NIB(v) \
    ((v) = vsubq_u8((v), vandq_u8(vshrq_n_u8((v), 1), m1)), \
     (v) = vmlaq_n_u8((v), vandq_u8(vshrq_n_u8((v), 2), m2), (uint8_t)253u))
#define BNR_MVE_SUM(v) \
    (total = vaddvaq_u8(total, vmlaq_n_u8((v), vshrq_n_u8((v), 4), (uint8_t)241u)))
    for (r = 0; r < rows; ++r, a += as, w += ws) {
        const uint32_t *p = a, *q = w;
        for (k = n; k >= 12; k -= 12, p += 12, q += 12) {
            const uint8x16_t x0 = vreinterpretq_u8_u32(veorq_u32(vldrwq_u32(p), vldrwq_u32(q)));
            const uint8x16_t x1 =
                vreinterpretq_u8_u32(veorq_u32(vldrwq_u32(p + 4), vldrwq_u32(q + 4)));
            const uint8x16_t x2 =
                vreinterpretq_u8_u32(veorq_u32(vldrwq_u32(p + 8), vldrwq_u32(q + 8)));
            const uint8x16_t u = veorq_u8(x0, x1);
            uint8x16_t h = vorrq_u8(vandq_u8(x0, x1), vandq_u8(u, x2)), l = veorq_u8(u, x2);
            BNR_MVE_NIB(l);
            BNR_MVE_NIB(h);
            l = vmlaq_n_u8(l, h, (uint8_t)2u);
            BNR_MVE_SUM(l);
        }
        for (; k >= 4; k -= 4, p += 4, q += 4) {
            uint8x16_t x = vreinterpretq_u8_u32(veorq_u32(vldrwq_u32(p), vldrwq_u32(q)));
            BNR_MVE_NIB(x);
            BNR_MVE_SUM(x);
        }
        if (k > 0) {
            const mve_pred16_t t = vctp32q(k);
            uint8x16_t x = vreinterpretq_u8_u32(veorq_u32(vldrwq_z_u32(p, t), vldrwq_z_u32(q, t)));
            BNR_MVE_NIB(x);
            BNR_MVE_SUM(x);
        }
    }
#undef BNR_MVE_NIB
#undef BNR_MVE_SUM
#elif defined(BNR_XOR_CSA)
    uint32_t ones = 0, twos = 0, fours = 0, eights = 0, sixteens = 0;
    for (r = 0; r < rows; ++r, a += as, w += ws) {
        const uint32_t *p = a, *q = w;
        uint32_t s, e, f, t;
        for (k = n; k >= 16; k -= 16, p += 16, q += 16) {
            uint32_t ea, eb;
            BNR_CSA8(ea, 0);
            BNR_CSA8(eb, 8);
            BNR_CSA(s, eights, eights, ea, eb);
            BNR_POP_ADD(sixteens, s);
        }
        if (k >= 8) {
            BNR_CSA8(e, 0);
            BNR_HALF(s, eights, e);
            BNR_POP_ADD(sixteens, s);
            k -= 8, p += 8, q += 8;
        }
        if (k >= 4) {
            BNR_CSA4(f, 0);
            BNR_HALF(e, fours, f);
            BNR_HALF(s, eights, e);
            BNR_POP_ADD(sixteens, s);
            k -= 4, p += 4, q += 4;
        }
        for (; k > 0; --k, ++p, ++q) {
            BNR_HALF(t, ones, BNR_X(0));
            BNR_HALF(f, twos, t);
            BNR_HALF(e, fours, f);
            BNR_HALF(s, eights, e);
            BNR_POP_ADD(sixteens, s);
        }
    }
#if defined(BNR_POPCOUNT_SWAR)
    /* the four planes' byte counts weighted in one word: each byte ≤ 8·(1 + 2 + 4 + 8) < 256 */
    k = bnr_byte_counts(ones) + (bnr_byte_counts(twos) << 1) + (bnr_byte_counts(fours) << 2) +
        (bnr_byte_counts(eights) << 3);
#if defined(__ARM_FEATURE_SIMD32) && defined(__GNUC__)
    BNR_ADD4(total, k);
#else /* the four bytes (their sum may pass 255) in two 16-bit lanes, then the lanes */
    k = (k & 0x00ff00ffu) + ((k >> 8) & 0x00ff00ffu);
    total = (k & 0xffffu) + (k >> 16);
#endif
#else
    total = bnr_popcount(ones) + 2u * bnr_popcount(twos) + 4u * bnr_popcount(fours) +
            8u * bnr_popcount(eights);
#endif
    total += 16u * sixteens;
#else /* BNR_XOR_WORD */
    for (r = 0; r < rows; ++r, a += as, w += ws) {
        for (k = 0; k < n; ++k) total += bnr_popcount(a[k] ^ w[k]);
    }
#endif
    return total;
}

/* Register blocking: t[0], t[1] = bnr_xor_rows for the weight rows w and w + wo (two outputs),
 * each activation word loaded once for both. */
#if defined(BNR_XOR_WORD)
#define BNR_XOR_BLOCK 2
static void bnr_xor_block(const uint32_t *a, uint32_t as, const uint32_t *w, uint32_t ws,
                          uint32_t wo, uint32_t rows, uint32_t n, uint32_t *t) {
    uint32_t t0 = 0, t1 = 0, r, k;
    for (r = 0; r < rows; ++r, a += as, w += ws) {
        const uint32_t *q = w + wo;
        for (k = 0; k + 4 <= n; k += 4) {
            const uint32_t x0 = a[k], x1 = a[k + 1], x2 = a[k + 2], x3 = a[k + 3];
            t0 += bnr_popcount(x0 ^ w[k]) + bnr_popcount(x1 ^ w[k + 1]) +
                  bnr_popcount(x2 ^ w[k + 2]) + bnr_popcount(x3 ^ w[k + 3]);
            t1 += bnr_popcount(x0 ^ q[k]) + bnr_popcount(x1 ^ q[k + 1]) +
                  bnr_popcount(x2 ^ q[k + 2]) + bnr_popcount(x3 ^ q[k + 3]);
        }
        for (; k < n; ++k) {
            t0 += bnr_popcount(a[k] ^ w[k]);
            t1 += bnr_popcount(a[k] ^ q[k]);
        }
    }
    t[0] = t0;
    t[1] = t1;
}
#elif defined(BNR_XOR_MVE)
#define BNR_XOR_BLOCK 2
static void bnr_xor_block(const uint32_t *a, uint32_t as, const uint32_t *w, uint32_t ws,
                          uint32_t wo, uint32_t rows, uint32_t n, uint32_t *t) {
    uint32_t t0 = 0, t1 = 0, r, k;
#if defined(BNR_XOR_MVE)
    const uint8x16_t m1 = vdupq_n_u8(0x55), m2 = vdupq_n_u8(0x33);
#define BNR_MVE_NIB(v) \
    ((v) = vsubq_u8((v), vandq_u8(vshrq_n_u8((v), 1), m1)), \
     (v) = vmlaq_n_u8((v), vandq_u8(vshrq_n_u8((v), 2), m2), (uint8_t)253u))
#define BNR_MVE_BYTES(v) vmlaq_n_u8((v), vshrq_n_u8((v), 4), (uint8_t)241u)
/* the carry-save group of three vectors against the weights at q: Σ popcount into acc */
#define BNR_MVE_GROUP(acc, q)                                                   \
    do {                                                                        \
        const uint8x16_t x0_ = veorq_u8(a0, vreinterpretq_u8_u32(vldrwq_u32(q))); \
        const uint8x16_t x1_ = veorq_u8(a1, vreinterpretq_u8_u32(vldrwq_u32((q) + 4))); \
        const uint8x16_t x2_ = veorq_u8(a2, vreinterpretq_u8_u32(vldrwq_u32((q) + 8))); \
        const uint8x16_t u_ = veorq_u8(x0_, x1_);                                \
        uint8x16_t h_ = vorrq_u8(vandq_u8(x0_, x1_), vandq_u8(u_, x2_));         \
        uint8x16_t l_ = veorq_u8(u_, x2_);                                       \
        BNR_MVE_NIB(l_);                                                        \
        BNR_MVE_NIB(h_);                                                        \
        l_ = vmlaq_n_u8(l_, h_, (uint8_t)2u);                                    \
        (acc) = vaddvaq_u8((acc), BNR_MVE_BYTES(l_));                           \
    } while (0)
    for (r = 0; r < rows; ++r, a += as, w += ws) {
        const uint32_t *p = a, *q = w;
        for (k = n; k >= 12; k -= 12, p += 12, q += 12) {
            const uint8x16_t a0 = vreinterpretq_u8_u32(vldrwq_u32(p));
            const uint8x16_t a1 = vreinterpretq_u8_u32(vldrwq_u32(p + 4));
            const uint8x16_t a2 = vreinterpretq_u8_u32(vldrwq_u32(p + 8));
            BNR_MVE_GROUP(t0, q);
            BNR_MVE_GROUP(t1, q + wo);
        }
        for (; k > 0; k = k > 4 ? k - 4 : 0, p += 4, q += 4) {
            const mve_pred16_t pr = vctp32q(k);
            const uint32x4_t x = vldrwq_z_u32(p, pr);
            uint8x16_t x0 = vreinterpretq_u8_u32(veorq_u32(x, vldrwq_z_u32(q, pr)));
            uint8x16_t x1 = vreinterpretq_u8_u32(veorq_u32(x, vldrwq_z_u32(q + wo, pr)));
            BNR_MVE_NIB(x0);
            BNR_MVE_NIB(x1);
            t0 = vaddvaq_u8(t0, BNR_MVE_BYTES(x0));
            t1 = vaddvaq_u8(t1, BNR_MVE_BYTES(x1));
        }
    }
#undef BNR_MVE_GROUP
#undef BNR_MVE_NIB
#undef BNR_MVE_BYTES
#endif
    t[0] = t0;
    t[1] = t1;
}
#endif

#if !defined(BNR_XOR_MVE) && !(defined(BNR_POPCOUNT_BUILTIN) && !defined(BNR_XOR_MVE))
/* A byte mask per 4 weight bits: bit k set → byte k all ones. */
static const uint32_t bnr_byte_mask[16] = {
    0x00000000u, 0x000000ffu, 0x0000ff00u, 0x0000ffffu, 0x00ff0000u, 0x00ff00ffu,
    0x00ffff00u, 0x00ffffffu, 0xff000000u, 0xff0000ffu, 0xff00ff00u, 0xff00ffffu,
    0xffff0000u, 0xffff00ffu, 0xffffff00u, 0xffffffffu};
#endif

#if !defined(BNR_POPCOUNT_BUILTIN) || defined(BNR_XOR_MVE)
/* The 4 pixels px[4g..4g+3] masked by bits 4g..4g+3 of `bits`. */
#define BNR_MASKED4(px, bits, g, out)                                   \
    do {                                                                \
        memcpy(&(out), (px) + 4 * (g), 4);                              \
        (out) &= bnr_byte_mask[((bits) >> (4 * (g))) & 0xfu];           \
    } while (0)

/* Σ of the pixels px[i] whose bit i is set in w (n words of w, 32·n pixels, 4-byte aligned);
 * the eight groups of a word unrolled by hand so that every shift is a constant. */
static uint32_t bnr_masked_sum(const uint8_t *px, const uint32_t *w, uint32_t n) {
    uint32_t total = 0, i;
#if defined(__GNUC__) && !defined(__ARM_FEATURE_UNALIGNED)
    /* the patch is 4-byte aligned: one load per 4 pixels where unaligned loads are not allowed
     * (RISC-V), not four byte loads */
    px = (const uint8_t *)__builtin_assume_aligned(px, 4);
#endif
#if defined(BNR_XOR_MVE)
    /* Helium: each half of a weight word is the byte-lane predicate of 16 pixels; a predicated
     * VADDVA adds the pixels of the −1 weights */
    for (i = 0; i < n; ++i, px += 32) {
        const uint32_t bits = w[i];
        total = vaddvaq_p_u8(total, vldrbq_u8(px), (mve_pred16_t)(bits & 0xffffu));
        total = vaddvaq_p_u8(total, vldrbq_u8(px + 16), (mve_pred16_t)(bits >> 16));
    }
#else
    for (i = 0; i < n; ++i, px += 32) {
        const uint32_t bits = w[i];
        uint32_t t = 0, x0, x1, x2, x3, x4, x5, x6, x7;
        BNR_MASKED4(px, bits, 0, x0);
        BNR_MASKED4(px, bits, 1, x1);
        BNR_MASKED4(px, bits, 2, x2);
        BNR_MASKED4(px, bits, 3, x3);
        BNR_MASKED4(px, bits, 4, x4);
        BNR_MASKED4(px, bits, 5, x5);
        BNR_MASKED4(px, bits, 6, x6);
        BNR_MASKED4(px, bits, 7, x7);
        BNR_ADD4(t, x0);
        BNR_ADD4(t, x1);
        BNR_ADD4(t, x2);
        BNR_ADD4(t, x3);
        BNR_ADD4(t, x4);
        BNR_ADD4(t, x5);
        BNR_ADD4(t, x6);
        BNR_ADD4(t, x7);
#if defined(__ARM_FEATURE_SIMD32) && defined(__GNUC__)
        total += t;
#else
        total += (t & 0xffffu) + (t >> 16); /* each lane ≤ 8 · 510 < 2^16 */
#endif
    }
#endif
    return total;
}
#endif

#if defined(BNR_POPCOUNT_BUILTIN) && !defined(BNR_XOR_MVE)
/* With a popcount instruction the paper's bit planes are cheaper than adding pixels: the patch
 * is turned, in place and 32 pixels at a time, into its 8 bit planes (word b of chunk j: bit i
 * = bit b of pixel 32j + i), once per position for all outputs; then Σ_{i∈N} pᵢ =
 * Σ_b 2^b·popcount(plane_b ∧ w), 8 AND-popcounts per 32 pixels (Algorithm 5). */
#define BNR_U8_PLANES 1
static void bnr_bit_planes(uint8_t *patch, uint32_t n) {
    uint32_t j, i, b;
    for (j = 0; j < n; ++j, patch += 32) {
        uint32_t planes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (i = 0; i < 32; ++i) {
            const uint32_t p = patch[i];
            for (b = 0; b < 8; ++b) planes[b] |= ((p >> b) & 1u) << i;
        }
        memcpy(patch, planes, sizeof planes);
    }
}

static uint32_t bnr_plane_sum(const uint32_t *planes, const uint32_t *w, uint32_t n) {
    uint32_t total = 0, j;
    for (j = 0; j < n; ++j, planes += 8) {
        const uint32_t x = w[j];
        total += bnr_popcount(planes[0] & x) + 2u * bnr_popcount(planes[1] & x) +
                 4u * bnr_popcount(planes[2] & x) + 8u * bnr_popcount(planes[3] & x) +
                 16u * bnr_popcount(planes[4] & x) + 32u * bnr_popcount(planes[5] & x) +
                 64u * bnr_popcount(planes[6] & x) + 128u * bnr_popcount(planes[7] & x);
    }
    return total;
}
#endif

#if defined(BNR_XOR_MVE)
#if defined(__ARM_BIG_ENDIAN)
#define BNR_BIG_ENDIAN 1
#else
#define BNR_BIG_ENDIAN 0
#endif
/* bnr_masked_sum for the four weight rows w + j·wo (four outputs), each pixel vector loaded once
 * for all of them. */
static void bnr_masked_sum4(const uint8_t *px, const uint32_t *w, uint32_t wo, uint32_t n,
                            uint32_t *t) {
    uint32_t t0 = 0, t1 = 0, t2 = 0, t3 = 0, i;
    const uint32_t *w1 = w + wo, *w2 = w1 + wo, *w3 = w2 + wo;
    for (i = 0; i < n; ++i, px += 32) {
        const uint8x16_t lo = vldrbq_u8(px), hi = vldrbq_u8(px + 16);
/* the weight word's halves as two 16-bit loads (a uint32 → uint16 conversion costs GCC a trip
 * through the stack); byte order: Armv8.1-M as built little-endian */
#define BNR_MVE_MASKED(t, q)                                                      \
    do {                                                                          \
        uint16_t h0_, h1_;                                                        \
        memcpy(&h0_, (const uint8_t *)((q) + i) + (BNR_BIG_ENDIAN ? 2 : 0), 2);   \
        memcpy(&h1_, (const uint8_t *)((q) + i) + (BNR_BIG_ENDIAN ? 0 : 2), 2);   \
        (t) = vaddvaq_p_u8((t), lo, h0_);                                         \
        (t) = vaddvaq_p_u8((t), hi, h1_);                                         \
    } while (0)
        BNR_MVE_MASKED(t0, w);
        BNR_MVE_MASKED(t1, w1);
        BNR_MVE_MASKED(t2, w2);
        BNR_MVE_MASKED(t3, w3);
#undef BNR_MVE_MASKED
    }
    t[0] = t0;
    t[1] = t1;
    t[2] = t2;
    t[3] = t3;
}
#endif

/* ±1 padding: a padded tap of a ±1 input is the value `pad` in every channel, which adds
 * pad·Σ_c w_c = pad·(C − 2·#{c : w_c = −1}) to each output; the taps inside the input, rows
 * i0..i1−1 and columns j0..j1−1 of the kernel, are summed by the caller. Only border positions
 * get here, so the bits are counted one at a time. */
static void bnr_pad_taps(const bnr_stage *s, int32_t i0, int32_t i1, int32_t j0, int32_t j1,
                         int32_t *y) {
    const uint32_t wp = bnr_words64(s->in_c);
    uint32_t o, k;
    int32_t i, j;
    for (o = 0; o < s->out_c; ++o) {
        const uint32_t *w = s->weight + (size_t)o * s->row_words;
        int32_t extra = 0;
        for (i = 0; i < (int32_t)s->kh; ++i) {
            for (j = 0; j < (int32_t)s->kw; ++j) {
                const uint32_t *tap = w + ((uint32_t)i * s->kw + (uint32_t)j) * wp;
                uint32_t neg = 0;
                if (i >= i0 && i < i1 && j >= j0 && j < j1) continue;
                for (k = 0; k < wp; ++k) {
                    uint32_t v = tap[k];
                    for (; v != 0u; v &= v - 1u) ++neg;
                }
                extra += (int32_t)s->in_c - 2 * (int32_t)neg;
            }
        }
        y[o] += s->pad * extra;
    }
}

/* The integers y [out_c] of the layer at output position (r, c). uint8 input: `patch` holds
 * 32·row_words bytes (scratch, 4-byte aligned): the kh·kw·C pixels, then zeros. */
static void bnr_layer_at(const bnr_stage *s, const void *in, uint32_t r, uint32_t c,
                         int32_t *y, uint8_t *patch) {
    const int32_t top = (int32_t)(r * s->sh) - (int32_t)s->ph;
    const int32_t left = (int32_t)(c * s->sw) - (int32_t)s->pw;
    uint32_t o;
    if (s->u8_input) {
        uint32_t i, j;
        const uint8_t *x = (const uint8_t *)in;
        const uint32_t cin = s->in_c, k = (uint32_t)s->kh * s->kw * cin;
        uint32_t sum = 0;
        for (i = 0; i < s->kh; ++i) {
            for (j = 0; j < s->kw; ++j) {
                const int32_t hi_ = top + (int32_t)i, wi = left + (int32_t)j;
                uint8_t *dst = patch + (i * s->kw + j) * cin;
                if (hi_ < 0 || wi < 0 || hi_ >= (int32_t)s->in_h || wi >= (int32_t)s->in_w) {
                    memset(dst, s->zero_point, cin);
                } else {
                    memcpy(dst, x + ((uint32_t)hi_ * s->in_w + (uint32_t)wi) * cin, cin);
                }
            }
        }
        memset(patch + k, 0, 32u * s->row_words - k);
        for (i = 0; i < k; ++i) sum += patch[i];
#if defined(BNR_U8_PLANES)
        bnr_bit_planes(patch, s->row_words);
#endif
        o = 0;
#if defined(BNR_XOR_MVE)
        for (; o + 4 <= s->out_c; o += 4) {
            uint32_t neg[4], j;
            bnr_masked_sum4(patch, s->weight + (size_t)o * s->row_words, s->row_words,
                            s->row_words, neg);
            for (j = 0; j < 4; ++j) {
                y[o + j] = (int32_t)sum - 2 * (int32_t)neg[j] + s->offset[o + j];
            }
        }
#endif
        for (; o < s->out_c; ++o) {
            const uint32_t *w = s->weight + (size_t)o * s->row_words;
#if defined(BNR_U8_PLANES)
            const uint32_t neg = bnr_plane_sum((const uint32_t *)(const void *)patch, w, s->row_words);
#else
            const uint32_t neg = bnr_masked_sum(patch, w, s->row_words);
#endif
            y[o] = (int32_t)sum - 2 * (int32_t)neg + s->offset[o];
        }
    } else {
        /* the taps inside the input: rows i0..i1−1, columns j0..j1−1 of the kernel; each row's
         * taps are contiguous in the weights and in the activations (channels last) */
        const uint32_t *x = (const uint32_t *)in;
        const uint32_t wp = bnr_words64(s->in_c); /* words per position */
        const int32_t i0 = top < 0 ? -top : 0, j0 = left < 0 ? -left : 0;
        int32_t i1 = (int32_t)s->kh, j1 = (int32_t)s->kw;
        if (top + i1 > (int32_t)s->in_h) i1 = (int32_t)s->in_h - top;
        if (left + j1 > (int32_t)s->in_w) j1 = (int32_t)s->in_w - left;
        if (i0 >= i1 || j0 >= j1) {
            for (o = 0; o < s->out_c; ++o) y[o] = 0;
        } else {
            const uint32_t *a = x + ((uint32_t)(top + i0) * s->in_w + (uint32_t)(left + j0)) * wp;
            const uint32_t rows = (uint32_t)(i1 - i0), n = (uint32_t)(j1 - j0) * wp;
            const int32_t valid = (int32_t)(rows * (uint32_t)(j1 - j0) * s->in_c);
            const uint32_t *w = s->weight + ((uint32_t)i0 * s->kw + (uint32_t)j0) * wp;
            o = 0;
#if defined(BNR_XOR_BLOCK)
            for (; o + 2 <= s->out_c; o += 2, w += 2 * s->row_words) {
                uint32_t t[2];
                bnr_xor_block(a, s->in_w * wp, w, s->kw * wp, s->row_words, rows, n, t);
                y[o] = valid - 2 * (int32_t)t[0];
                y[o + 1] = valid - 2 * (int32_t)t[1];
            }
#endif
            for (; o < s->out_c; ++o, w += s->row_words) {
                y[o] = valid - 2 * (int32_t)bnr_xor_rows(a, s->in_w * wp, w, s->kw * wp, rows, n);
            }
        }
        if (s->pad != 0 && (i0 > 0 || j0 > 0 || i1 < (int32_t)s->kh || j1 < (int32_t)s->kw)) {
            bnr_pad_taps(s, i0, i1, j0, j1, y);
        }
    }
}

/* y at position (r, c) of the value after `level` pools (0: the layer's own output): the
 * window maximum of the level below. `acc` holds (level + 1)·out_c int32. */
static void bnr_pooled_at(const bnr_stage *s, const void *in, uint32_t level, uint32_t r,
                          uint32_t c, int32_t *acc, uint8_t *patch) {
    const bnr_pool *p;
    int32_t *below;
    uint32_t i, j, o;
    if (level == 0) {
        bnr_layer_at(s, in, r, c, acc, patch);
        return;
    }
    p = &s->pools[level - 1];
    below = acc + s->out_c;
    for (i = 0; i < p->kh; ++i) {
        for (j = 0; j < p->kw; ++j) {
            bnr_pooled_at(s, in, level - 1, r * p->sh + i, c * p->sw + j, below, patch);
            for (o = 0; o < s->out_c; ++o) {
                if ((i == 0 && j == 0) || below[o] > acc[o]) acc[o] = below[o];
            }
        }
    }
}

/* One stage: `in` → packed bits `out` ([H', W', words64(out_c)] words) or, for the scores
 * stage, float32 scores. `scratch` holds the accumulators, then the uint8 patch. */
static void bnr_stage_run(const bnr_stage *s, const void *in, void *out, void *scratch) {
    int32_t *acc = (int32_t *)scratch;
    uint8_t *patch = (uint8_t *)(acc + (size_t)(s->npools + 1u) * s->out_c);
    const uint32_t wp = bnr_words64(s->out_c);
    const uint32_t out_h = s->final_h, out_w = s->final_w;
    uint32_t r, c, o;
    for (r = 0; r < out_h; ++r) {
        for (c = 0; c < out_w; ++c) {
            bnr_pooled_at(s, in, s->npools, r, c, acc, patch);
            if (s->lo != NULL) {
                uint32_t *bits = (uint32_t *)out + ((size_t)r * out_w + c) * wp;
                memset(bits, 0, wp * sizeof(uint32_t));
                for (o = 0; o < s->out_c; ++o) {
                    if (!(s->lo[o] <= acc[o] && acc[o] <= s->hi[o])) bits[o >> 5] |= 1u << (o & 31u);
                }
            } else {
                float *scores = (float *)out;
                for (o = 0; o < s->out_c; ++o) {
                    volatile float v = (float)acc[o] * s->input_scale;
                    if (s->bias != NULL) v = v + s->bias[o];
                    v = v * s->scale[o];
                    v = v + s->shift[o];
                    scores[o] = v;
                }
            }
        }
    }
}

/* The first index of the largest score (numpy's and torch's argmax). */
static int bnr_argmax(const float *scores, uint32_t n) {
    uint32_t i, best = 0;
    for (i = 1; i < n; ++i) {
        if (scores[i] > scores[best]) best = i;
    }
    return (int)best;
}
