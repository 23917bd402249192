/* Fuzz driver for the module's reply parsing (faceunlock_reply.c), built with AddressSanitizer and
 * UndefinedBehaviorSanitizer (make check). Usage: fuzz_reply [ITERATIONS] [SEED].
 *
 * Each round builds an input from random bytes, UTF-8 fragments and the known result names (and
 * mutations of them), at random lengths and output sizes, and checks what must always hold:
 * only the exact name "match" is FU_MATCH; the cleaned message fits its buffer, is NUL-terminated,
 * holds no control character and is valid UTF-8. Any violation or sanitizer report exits non-zero.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faceunlock_reply.h"

static uint64_t state;

static uint32_t next(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return (uint32_t)state;
}

static const char *const PIECES[] = {
	"match", "no-match", "refused", "confirm", "ready", "busy", "error", "MATCH", "match ", " match",
	"matc", "match\n", "\xc3\xa9", "\xe2\x80\xa6", "\xf0\x9f\x98\x80", "\xc0\xaf", "\xed\xa0\x80",
	"\xc2\x85", "\xf4\x90\x80\x80", "\x1b[31m", "\r\n", "\x7f", "%s%n", "\xff\xfe",
};

static size_t build(char *buf, size_t cap)
{
	size_t len = 0, parts = next() % 12;

	for (size_t p = 0; p < parts && len < cap - 1; p++) {
		if (next() % 2) {
			const char *piece = PIECES[next() % (sizeof(PIECES) / sizeof(PIECES[0]))];
			size_t n = strlen(piece);

			if (n > cap - 1 - len)
				n = cap - 1 - len;
			memcpy(buf + len, piece, n);
			len += n;
		} else {
			size_t n = next() % 40;

			for (size_t i = 0; i < n && len < cap - 1; i++) {
				char c = (char)(next() % 255 + 1);

				buf[len++] = c;
			}
		}
	}
	buf[len] = '\0';
	return len;
}

static int valid_utf8_without_controls(const unsigned char *s)
{
	while (*s) {
		size_t len;

		if (*s < 0x20 || *s == 0x7F)
			return 0;
		if (*s < 0x80)
			len = 1;
		else if ((*s & 0xE0) == 0xC0)
			len = 2;
		else if ((*s & 0xF0) == 0xE0)
			len = 3;
		else if ((*s & 0xF8) == 0xF0)
			len = 4;
		else
			return 0;
		for (size_t i = 1; i < len; i++)
			if ((s[i] & 0xC0) != 0x80)
				return 0;
		s += len;
	}
	return 1;
}

int main(int argc, char **argv)
{
	unsigned long rounds = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	char input[512];
	char canary[8];

	state = argc > 2 ? strtoull(argv[2], NULL, 10) : 0x9E3779B97F4A7C15ULL;
	if (state == 0)
		state = 1;
	if (fu_outcome_of(NULL) != FU_UNAVAILABLE || fu_clean_message(NULL, canary, 1) != 0 || canary[0])
		return fprintf(stderr, "NULL handling\n"), 1;
	for (unsigned long r = 0; r < rounds; r++) {
		size_t cap = 1 + next() % 300, len = build(input, sizeof(input));
		char *out = malloc(cap);
		size_t written;

		if (out == NULL)
			return 1;
		if ((fu_outcome_of(input) == FU_MATCH) != (strcmp(input, "match") == 0))
			return fprintf(stderr, "round %lu: %s read as a match\n", r, input), 1;
		written = fu_clean_message(input, out, cap);
		if (written >= cap || out[written] != '\0' || strlen(out) != written || written > len)
			return fprintf(stderr, "round %lu: length %zu in %zu\n", r, written, cap), 1;
		if (!valid_utf8_without_controls((const unsigned char *)out))
			return fprintf(stderr, "round %lu: not clean: %s\n", r, out), 1;
		free(out);
	}
	printf("fuzz_reply: %lu rounds, no violation\n", rounds);
	return 0;
}
