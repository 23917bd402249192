/* pam_faceunlock: face unlock for PAM, a thin client of the faceunlock daemon.
 *
 * The module only collects what the daemon cannot see for itself (the PAM items, the
 * application's real uid, SSH markers of its environment) and asks the daemon on the system bus
 * (org.faceunlock.FaceUnlock1.Authenticate). The daemon sees this process's pid and uid from the
 * bus and holds every rule: presence, services, requester, confirm mode, lockout. No bus address
 * or path is taken from the environment.
 *
 * auth:    PAM_SUCCESS only on a verified match; PAM_AUTHINFO_UNAVAIL when the daemon cannot be
 *          asked; PAM_IGNORE on every other outcome, so the next line (the password) decides.
 * account: the application reaches account management only after its auth stack succeeded; when
 *          our auth ran in this handle and did not match, another module let the user in (the
 *          password), so tell the daemon (PasswordUsed): it ends a lockout and satisfies the
 *          "password recently" rule. (libpam has wiped PAM_AUTHTOK by then.) Always PAM_IGNORE.
 *
 * Options: timeout=S (seconds the scan may take, 1-60, default 5), quiet (no messages),
 * bus=ADDRESS (tests only; default the system bus socket).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <systemd/sd-bus.h>

#include "faceunlock_reply.h"

#define BUS_NAME "org.faceunlock.FaceUnlock1"
#define OBJECT_PATH "/org/faceunlock/FaceUnlock1"
#define INTERFACE "org.faceunlock.FaceUnlock1"
#define SYSTEM_BUS "unix:path=/run/dbus/system_bus_socket"
#define PROBE_USEC (500 * 1000ULL)
#define SLACK_USEC (3 * 1000 * 1000ULL)
#define DATA_KEY "pam_faceunlock_outcome"
#define CONFIRM_PROMPT "Press Enter to use your face, or type your password: "
#define MESSAGE_MAX 256
/* Everything else is hidden (-fvisibility=hidden and pam_faceunlock.ver). */
#define EXPORT __attribute__((visibility("default")))

struct options {
	unsigned int timeout_s;
	int quiet;
	const char *bus;
};

static void parse_options(pam_handle_t *pamh, int flags, int argc, const char **argv, struct options *o)
{
	o->timeout_s = 5;
	o->quiet = (flags & PAM_SILENT) != 0;
	o->bus = SYSTEM_BUS;
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "timeout=", 8) == 0) {
			char *end = NULL;
			unsigned long t = strtoul(argv[i] + 8, &end, 10);

			if (end != argv[i] + 8 && *end == '\0' && t >= 1 && t <= 60)
				o->timeout_s = (unsigned int)t;
			else
				pam_syslog(pamh, LOG_ERR, "ignoring bad option %s (1-60 seconds)", argv[i]);
		} else if (strcmp(argv[i], "quiet") == 0) {
			o->quiet = 1;
		} else if (strncmp(argv[i], "bus=", 4) == 0 && argv[i][4] != '\0') {
			o->bus = argv[i] + 4;
		} else {
			pam_syslog(pamh, LOG_ERR, "unknown option %s", argv[i]);
		}
	}
}

static void say(pam_handle_t *pamh, const struct options *o, const char *text)
{
	if (!o->quiet && text[0] != '\0')
		pam_info(pamh, "%s", text);
}

static const char *item(pam_handle_t *pamh, int type)
{
	const void *value = NULL;

	if (pam_get_item(pamh, type, &value) != PAM_SUCCESS || value == NULL)
		return "";
	return value;
}

static int over_ssh(pam_handle_t *pamh)
{
	static const char *const vars[] = {"SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = pam_getenv(pamh, vars[i]);

		if ((v != NULL && v[0] != '\0') || getenv(vars[i]) != NULL)
			return 1;
	}
	return 0;
}

static int connect_bus(pam_handle_t *pamh, const char *address, sd_bus **out)
{
	sd_bus *bus = NULL;
	int r = sd_bus_new(&bus);

	if (r >= 0)
		r = sd_bus_set_address(bus, address);
	if (r >= 0)
		r = sd_bus_set_bus_client(bus, 1);
	if (r >= 0)
		r = sd_bus_set_method_call_timeout(bus, PROBE_USEC);
	if (r >= 0)
		r = sd_bus_start(bus);
	if (r < 0) {
		pam_syslog(pamh, LOG_NOTICE, "cannot connect to %s: %s", address, strerror(-r));
		sd_bus_unref(bus);
		return r;
	}
	*out = bus;
	return 0;
}

/* The daemon answers a property read within PROBE_USEC: a stopped or wedged one is not asked. */
static int probe(sd_bus *bus)
{
	sd_bus_message *m = NULL, *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	int r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH,
					       "org.freedesktop.DBus.Properties", "Get");

	if (r >= 0)
		r = sd_bus_message_append(m, "ss", INTERFACE, "Version");
	if (r >= 0)
		r = sd_bus_message_set_auto_start(m, 0);
	if (r >= 0)
		r = sd_bus_call(bus, m, PROBE_USEC, &error, &reply);
	sd_bus_error_free(&error);
	sd_bus_message_unref(reply);
	sd_bus_message_unref(m);
	return r;
}

struct request {
	const char *user, *service, *ruser, *rhost, *tty;
	char ruid[32];
	int ssh;
};

/* One Authenticate call; on success the outcome and the cleaned message are filled in. */
static int authenticate(pam_handle_t *pamh, sd_bus *bus, const struct request *q, const char *step,
			int confirmed, unsigned int timeout_s, enum fu_outcome *outcome, char *message)
{
	sd_bus_message *m = NULL, *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	const char *result = NULL, *text = NULL;
	const char *pairs[][2] = {
		{"user", q->user},	 {"service", q->service},	   {"ruser", q->ruser},
		{"rhost", q->rhost},	 {"tty", q->tty},		   {"ruid", q->ruid},
		{"ssh", q->ssh ? "1" : ""}, {"confirmed", confirmed ? "1" : ""}, {"step", step},
	};
	int r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, INTERFACE, "Authenticate");

	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "{ss}");
	for (size_t i = 0; r >= 0 && i < sizeof(pairs) / sizeof(pairs[0]); i++)
		r = sd_bus_message_append(m, "{ss}", pairs[i][0], pairs[i][1]);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = sd_bus_message_append(m, "u", (uint32_t)(timeout_s * 1000));
	if (r >= 0)
		r = sd_bus_message_set_auto_start(m, 0);
	if (r >= 0)
		r = sd_bus_call(bus, m, timeout_s * 1000000ULL + SLACK_USEC, &error, &reply);
	if (r >= 0)
		r = sd_bus_message_read(reply, "ss", &result, &text);
	if (r < 0) {
		pam_syslog(pamh, LOG_NOTICE, "the daemon cannot be asked: %s",
			   error.message != NULL ? error.message : strerror(-r));
	} else {
		*outcome = fu_outcome_of(result);
		fu_clean_message(text, message, MESSAGE_MAX);
	}
	sd_bus_error_free(&error);
	sd_bus_message_unref(reply);
	sd_bus_message_unref(m);
	return r;
}

/* Confirm mode: 1 when the user pressed Enter alone, 0 when a password was typed (it stays as
 * PAM_AUTHTOK for the next module, so nobody is asked twice), -1 when nothing could be read. */
static int confirmed(pam_handle_t *pamh)
{
	const char *token = NULL;

	if (pam_get_authtok(pamh, PAM_AUTHTOK, &token, CONFIRM_PROMPT) != PAM_SUCCESS || token == NULL)
		return -1;
	if (token[0] != '\0')
		return 0;
	pam_set_item(pamh, PAM_AUTHTOK, NULL);
	return 1;
}

static void cleanup_outcome(pam_handle_t *pamh, void *data, int error_status)
{
	(void)pamh;
	(void)error_status;
	free(data);
}

static void remember(pam_handle_t *pamh, enum fu_outcome outcome)
{
	enum fu_outcome *copy = malloc(sizeof(*copy));

	if (copy == NULL)
		return;
	*copy = outcome;
	if (pam_set_data(pamh, DATA_KEY, copy, cleanup_outcome) != PAM_SUCCESS)
		free(copy);
}

static int scan(pam_handle_t *pamh, const struct options *o, sd_bus *bus, const struct request *q)
{
	enum fu_outcome outcome = FU_UNAVAILABLE;
	char message[MESSAGE_MAX];
	int yes = 0;

	remember(pamh, FU_NO_MATCH);
	if (authenticate(pamh, bus, q, "check", 0, o->timeout_s, &outcome, message) < 0)
		return PAM_AUTHINFO_UNAVAIL;
	if (outcome == FU_CONFIRM) {
		yes = confirmed(pamh);
		if (yes != 1)
			return yes == 0 ? PAM_IGNORE : PAM_AUTHINFO_UNAVAIL;
	} else if (outcome != FU_READY) {
		say(pamh, o, message);
		return outcome == FU_UNAVAILABLE ? PAM_AUTHINFO_UNAVAIL : PAM_IGNORE;
	}
	say(pamh, o, "Looking for your face…");
	if (authenticate(pamh, bus, q, "scan", yes, o->timeout_s, &outcome, message) < 0)
		return PAM_AUTHINFO_UNAVAIL;
	switch (outcome) {
	case FU_MATCH:
		remember(pamh, FU_MATCH);
		say(pamh, o, "Face recognised.");
		return PAM_SUCCESS;
	case FU_UNAVAILABLE:
		say(pamh, o, message);
		return PAM_AUTHINFO_UNAVAIL;
	default:
		say(pamh, o, message[0] != '\0' ? message : "Face not recognised.");
		return PAM_IGNORE;
	}
}

EXPORT PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct options o;
	struct request q;
	sd_bus *bus = NULL;
	int rc;

	parse_options(pamh, flags, argc, argv, &o);
	if (pam_get_user(pamh, &q.user, NULL) != PAM_SUCCESS || q.user == NULL || q.user[0] == '\0')
		return PAM_USER_UNKNOWN;
	q.service = item(pamh, PAM_SERVICE);
	q.ruser = item(pamh, PAM_RUSER);
	q.rhost = item(pamh, PAM_RHOST);
	q.tty = item(pamh, PAM_TTY);
	q.ssh = over_ssh(pamh);
	snprintf(q.ruid, sizeof(q.ruid), "%u", (unsigned int)getuid());
	if (connect_bus(pamh, o.bus, &bus) < 0)
		return PAM_AUTHINFO_UNAVAIL;
	if (probe(bus) < 0) {
		pam_syslog(pamh, LOG_NOTICE, "the faceunlock daemon does not answer");
		rc = PAM_AUTHINFO_UNAVAIL;
	} else {
		rc = scan(pamh, &o, bus, &q);
	}
	sd_bus_flush_close_unref(bus);
	return rc;
}

EXPORT PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_SUCCESS;
}

EXPORT PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const void *data = NULL;
	const char *user = NULL;
	struct options o;
	sd_bus *bus = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL, *reply = NULL;
	int r;

	parse_options(pamh, flags, argc, argv, &o);
	if (pam_get_data(pamh, DATA_KEY, &data) != PAM_SUCCESS || data == NULL)
		return PAM_IGNORE;
	if (*(const enum fu_outcome *)data == FU_MATCH)
		return PAM_IGNORE;
	if (pam_get_item(pamh, PAM_USER, (const void **)&user) != PAM_SUCCESS || user == NULL)
		return PAM_IGNORE;
	if (connect_bus(pamh, o.bus, &bus) < 0)
		return PAM_IGNORE;
	r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, INTERFACE, "PasswordUsed");
	if (r >= 0)
		r = sd_bus_message_append(m, "s", user);
	if (r >= 0)
		r = sd_bus_message_set_auto_start(m, 0);
	if (r >= 0)
		r = sd_bus_call(bus, m, 2 * PROBE_USEC, &error, &reply);
	if (r < 0)
		pam_syslog(pamh, LOG_NOTICE, "cannot record the password login: %s",
			   error.message != NULL ? error.message : strerror(-r));
	sd_bus_error_free(&error);
	sd_bus_message_unref(reply);
	sd_bus_message_unref(m);
	sd_bus_flush_close_unref(bus);
	return PAM_IGNORE;
}
