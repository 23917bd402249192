/* Reading the daemon's answer: see faceunlock_reply.h. */
#include "faceunlock_reply.h"

#include <string.h>

static const struct {
	const char *name;
	enum fu_outcome outcome;
} OUTCOMES[] = {
	{"match", FU_MATCH},
	{"no-match", FU_NO_MATCH},
	{"no-face", FU_NO_MATCH},
	{"timeout", FU_NO_MATCH},
	{"refused", FU_REFUSED},
	{"locked-out", FU_REFUSED},
	{"not-enrolled", FU_REFUSED},
	{"confirm", FU_CONFIRM},
	{"ready", FU_READY},
	{"busy", FU_UNAVAILABLE},
	{"error", FU_UNAVAILABLE},
};

enum fu_outcome fu_outcome_of(const char *result)
{
	if (result == NULL)
		return FU_UNAVAILABLE;
	for (size_t i = 0; i < sizeof(OUTCOMES) / sizeof(OUTCOMES[0]); i++)
		if (strcmp(result, OUTCOMES[i].name) == 0)
			return OUTCOMES[i].outcome;
	return FU_UNAVAILABLE;
}

/* Length of the valid UTF-8 sequence at s (at most left bytes), or 0 if it is not one. */
static size_t utf8_length(const unsigned char *s, size_t left)
{
	size_t len;
	unsigned int min;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0) {
		len = 2, min = 0x80, cp = s[0] & 0x1F;
	} else if ((s[0] & 0xF0) == 0xE0) {
		len = 3, min = 0x800, cp = s[0] & 0x0F;
	} else if ((s[0] & 0xF8) == 0xF0) {
		len = 4, min = 0x10000, cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > left)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	if (cp >= 0x80 && cp < 0xA0)
		return 0; /* C1 controls */
	return len;
}

size_t fu_clean_message(const char *message, char *out, size_t n)
{
	size_t w = 0;

	if (n == 0)
		return 0;
	if (message != NULL) {
		const unsigned char *s = (const unsigned char *)message;
		size_t left = strlen(message);

		while (left > 0) {
			size_t len = utf8_length(s, left);

			if (len == 0) {
				s++, left--;
				continue;
			}
			if (w + len > n - 1)
				break;
			if (len == 1 && (s[0] < 0x20 || s[0] == 0x7F))
				out[w++] = ' ';
			else
				memcpy(out + w, s, len), w += len;
			s += len, left -= len;
		}
	}
	out[w] = '\0';
	return w;
}
