/* The daemon's answer to pam_faceunlock, as the module reads it: a typed outcome and a message fit
 * to show. Kept apart from the PAM and bus code so that a fuzz driver can feed it any bytes. */
#ifndef FACEUNLOCK_REPLY_H
#define FACEUNLOCK_REPLY_H

#include <stddef.h>

enum fu_outcome {
	FU_MATCH,       /* the user is in view and live: PAM_SUCCESS */
	FU_NO_MATCH,    /* judged, not the user (or no face, a timeout): the password */
	FU_REFUSED,     /* refused before any scan (presence, service, requester, lockout) */
	FU_CONFIRM,     /* the service wants an empty Enter first (confirm mode) */
	FU_READY,       /* (the check step) a scan would run: show "Looking for your face" */
	FU_UNAVAILABLE, /* the daemon could not answer (busy, an error, an unknown answer) */
};

/* The outcome a reply's result string names; anything unknown is FU_UNAVAILABLE (never a match). */
enum fu_outcome fu_outcome_of(const char *result);

/* Copy a message from the daemon into out (size n >= 1) as one printable line: control characters
 * become spaces, invalid or overlong UTF-8 is dropped, and it is cut at a character boundary.
 * Returns the length written. A NULL message gives "". */
size_t fu_clean_message(const char *message, char *out, size_t n);

#endif
