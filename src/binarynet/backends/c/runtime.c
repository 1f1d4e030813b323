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
 * (`offset`). The engine sums over N on the patch's 8 bit planes (Algorithm 5 of the paper,
 * 8 AND-popcounts per 32 pixels); without a popcount instruction it is cheaper to add the pixels
 * themselves: four at a time, each 32-bit word of pixels ANDed with a byte mask made from 4
 * weight bits (a 16-entry table), the masked bytes added by USADA8 (sum of four bytes, on cores
 * with the DSP extension: Cortex-M4, M7, M55, optional on M33) or in two 16-bit lanes
 * elsewhere. Measured on Cortex-M4 (benchmarks/mcu.py): 2.8x fewer instructions than the bit
 * planes for the MNIST MLP.
 * A padded tap is a pixel equal to zp, which contributes (zp − zp)·wᵢ = 0.
 *
 * Padded taps of a ±1 convolution contribute 0 (torch pads binary activations with 0): they
 * are skipped. Max-pooling takes the maximum of the integers y before the threshold, exactly
 * as the graph defines it. The only floating point is the scores: four float32 operations in
 * the engine's order, each stored to a volatile so that no compiler fuses a multiply and an add
 * (an FMA rounds once and would change the last bit).
 */

#if defined(__aarch64__) && defined(__ARM_NEON) && defined(__GNUC__)
#include <arm_neon.h>
#define BNR_POPCOUNT_NEON 1
#define BNR_POPCOUNT_BUILTIN 1 /* the tail: GCC and Clang emit cnt for it on Armv8-A */
#elif !defined(BNR_POPCOUNT_SWAR) && !defined(BNR_POPCOUNT_TABLE) && \
    !defined(BNR_POPCOUNT_BUILTIN)
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
#define BNR_POPCOUNT_SWAR 1 /* no popcount instruction on Cortex-M */
#elif defined(__POPCNT__) && defined(__GNUC__)
#define BNR_POPCOUNT_BUILTIN 1
#else
#define BNR_POPCOUNT_SWAR 1
#endif
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
} bnr_stage;

static uint32_t bnr_words64(uint32_t k) { return 2u * ((k + 63u) / 64u); }

#if defined(BNR_POPCOUNT_TABLE)
static const uint8_t bnr_pop8[256] = {
#define BNR_B2(n) n, n + 1, n + 1, n + 2
#define BNR_B4(n) BNR_B2(n), BNR_B2(n + 1), BNR_B2(n + 1), BNR_B2(n + 2)
#define BNR_B6(n) BNR_B4(n), BNR_B4(n + 1), BNR_B4(n + 1), BNR_B4(n + 2)
    BNR_B6(0), BNR_B6(1), BNR_B6(1), BNR_B6(2)};
#endif

static uint32_t bnr_popcount(uint32_t v) {
#if defined(BNR_POPCOUNT_BUILTIN)
    return (uint32_t)__builtin_popcount(v);
#elif defined(BNR_POPCOUNT_TABLE)
    return (uint32_t)bnr_pop8[v & 0xffu] + bnr_pop8[(v >> 8) & 0xffu] +
           bnr_pop8[(v >> 16) & 0xffu] + bnr_pop8[v >> 24];
#else /* SWAR: 2-, 4-, 8-bit partial sums, then one multiply adds the four bytes */
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    v = (v + (v >> 4)) & 0x0f0f0f0fu;
    return (v * 0x01010101u) >> 24;
#endif
}

/* popcount(a ⊕ b) over n 32-bit words. */
static uint32_t bnr_xor_popcount(const uint32_t *a, const uint32_t *b, uint32_t n) {
    uint32_t total = 0, i = 0;
#if defined(BNR_POPCOUNT_NEON)
    /* eor → cnt (bytes) → widening pairwise adds, 31 rounds of byte sums at most (31·8 < 256) */
    uint32x4_t acc = vdupq_n_u32(0);
    while (i + 4 <= n) {
        uint8x16_t bytes = vdupq_n_u8(0);
        uint32_t round = 0;
        for (; round < 31 && i + 4 <= n; ++round, i += 4) {
            uint32x4_t x = veorq_u32(vld1q_u32(a + i), vld1q_u32(b + i));
            bytes = vaddq_u8(bytes, vcntq_u8(vreinterpretq_u8_u32(x)));
        }
        acc = vpadalq_u16(acc, vpaddlq_u8(bytes));
    }
    total = vaddvq_u32(acc);
    for (; i < n; ++i) total += bnr_popcount(a[i] ^ b[i]);
#else
    for (; i < n; ++i) total += bnr_popcount(a[i] ^ b[i]);
#endif
    return total;
}

/* A byte mask per 4 weight bits: bit k set → byte k all ones. */
static const uint32_t bnr_byte_mask[16] = {
    0x00000000u, 0x000000ffu, 0x0000ff00u, 0x0000ffffu, 0x00ff0000u, 0x00ff00ffu,
    0x00ffff00u, 0x00ffffffu, 0xff000000u, 0xff0000ffu, 0xff00ff00u, 0xff00ffffu,
    0xffff0000u, 0xffff00ffu, 0xffffff00u, 0xffffffffu};

/* The 4 pixels px[4g..4g+3] masked by bits 4g..4g+3 of `bits`. */
#define BNR_MASKED4(px, bits, g, out)                                   \
    do {                                                                \
        memcpy(&(out), (px) + 4 * (g), 4);                              \
        (out) &= bnr_byte_mask[((bits) >> (4 * (g))) & 0xfu];           \
    } while (0)

#if defined(__ARM_FEATURE_SIMD32) && defined(__GNUC__)
/* USADA8 t, x, 0, t: t += the four bytes of x */
#define BNR_ADD4(t, x) __asm__("usada8 %0, %1, %2, %0" : "+r"(t) : "r"(x), "r"(0u))
#else
/* two 16-bit lanes: t += bytes 0 + 1 (low lane) and bytes 2 + 3 (high lane) */
#define BNR_ADD4(t, x) ((t) += ((x) & 0x00ff00ffu) + (((x) >> 8) & 0x00ff00ffu))
#endif

/* Σ of the pixels px[i] whose bit i is set in w (n words of w, 32·n pixels, 4-byte aligned);
 * the eight groups of a word unrolled by hand so that every shift is a constant. */
static uint32_t bnr_masked_sum(const uint8_t *px, const uint32_t *w, uint32_t n) {
    uint32_t total = 0, i;
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
    return total;
}

/* The integers y [out_c] of the layer at output position (r, c). uint8 input: `patch` holds
 * 32·row_words bytes (scratch, 4-byte aligned): the kh·kw·C pixels, then zeros. */
static void bnr_layer_at(const bnr_stage *s, const void *in, uint32_t r, uint32_t c,
                         int32_t *y, uint8_t *patch) {
    const int32_t top = (int32_t)(r * s->sh) - (int32_t)s->ph;
    const int32_t left = (int32_t)(c * s->sw) - (int32_t)s->pw;
    uint32_t o, i, j;
    if (s->u8_input) {
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
        for (o = 0; o < s->out_c; ++o) {
            const uint32_t *w = s->weight + (size_t)o * s->row_words;
            const uint32_t neg = bnr_masked_sum(patch, w, s->row_words);
            y[o] = (int32_t)sum - 2 * (int32_t)neg + s->offset[o];
        }
    } else {
        const uint32_t *x = (const uint32_t *)in;
        const uint32_t wp = bnr_words64(s->in_c); /* words per position */
        for (o = 0; o < s->out_c; ++o) y[o] = 0;
        for (i = 0; i < s->kh; ++i) {
            const int32_t hi_ = top + (int32_t)i;
            if (hi_ < 0 || hi_ >= (int32_t)s->in_h) continue;
            for (j = 0; j < s->kw; ++j) {
                const int32_t wi = left + (int32_t)j;
                const uint32_t *a;
                if (wi < 0 || wi >= (int32_t)s->in_w) continue;
                a = x + ((uint32_t)hi_ * s->in_w + (uint32_t)wi) * wp;
                for (o = 0; o < s->out_c; ++o) {
                    const uint32_t *w = s->weight + (size_t)o * s->row_words +
                                        (i * s->kw + j) * wp;
                    y[o] += (int32_t)s->in_c - 2 * (int32_t)bnr_xor_popcount(a, w, wp);
                }
            }
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
