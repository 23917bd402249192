"""A minimal polkit authentication agent for the process it runs in (real polkitd, inside the container).

Usage: polkit_agent.py TARGET LABEL [ACTION]

It registers itself as the agent of its own process, then asks polkitd whether
its process may do ACTION (default org.freedesktop.systemd1.manage-units, which
lets its holder start any unit as root), allowing interaction. When polkitd asks
it to authenticate, it runs polkit-agent-helper-1 for TARGET, as a desktop agent
does, and answers every password prompt with a wrong password: a success can only
come from the face line of /etc/pam.d/polkit-1. Prints "LABEL: authorized=True|False".
Standard library and Debian's python3-gi only.
"""

import os
import subprocess
import sys

from gi.repository import Gio, GLib

HELPER = "/usr/lib/polkit-1/polkit-agent-helper-1"
PK = "org.freedesktop.PolicyKit1"
AUTHORITY_PATH = "/org/freedesktop/PolicyKit1/Authority"
AUTHORITY = "org.freedesktop.PolicyKit1.Authority"
AGENT_XML = """<node><interface name="org.freedesktop.PolicyKit1.AuthenticationAgent">
<method name="BeginAuthentication"><arg type="s" direction="in"/><arg type="s" direction="in"/>
<arg type="s" direction="in"/><arg type="a{ss}" direction="in"/><arg type="s" direction="in"/>
<arg type="a(sa{sv})" direction="in"/></method>
<method name="CancelAuthentication"><arg type="s" direction="in"/></method></interface></node>"""


def answer_helper(target: str, cookie: str, label: str) -> None:
    """Run the helper as polkit agents do: the cookie on stdin, then answers to its PAM prompts."""
    helper = subprocess.Popen(
        [HELPER, target], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    helper.stdin.write(cookie + "\n")
    helper.stdin.flush()
    for line in helper.stdout:
        line = line.strip()
        print(f"{label}: helper says {line!r}", flush=True)
        if line.startswith(("PAM_PROMPT_ECHO_OFF", "PAM_PROMPT_ECHO_ON")):
            helper.stdin.write("not-the-password\n")
            helper.stdin.flush()
        elif line in ("SUCCESS", "FAILURE"):
            break
    helper.wait(timeout=60)


def own_subject() -> tuple:
    stat = open("/proc/self/stat").read()
    start = int(stat[stat.rindex(")") + 2 :].split()[19])
    return (
        "unix-process",
        {
            "pid": GLib.Variant("u", os.getpid()),
            "start-time": GLib.Variant("t", start),
            "uid": GLib.Variant("i", os.getuid()),
        },
    )


def main() -> int:
    target, label = sys.argv[1], sys.argv[2]
    action = sys.argv[3] if len(sys.argv) > 3 else "org.freedesktop.systemd1.manage-units"
    con = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)

    def on_call(connection, sender, path, iface, method, params, invocation):
        if method == "BeginAuthentication":
            answer_helper(target, params.unpack()[4], label)
        invocation.return_value(None)

    agent = Gio.DBusNodeInfo.new_for_xml(AGENT_XML).interfaces[0]
    con.register_object("/agent", agent, on_call, None, None)
    subject = own_subject()
    args = GLib.Variant("((sa{sv})ss)", (subject, "C.UTF-8", "/agent"))
    con.call_sync(PK, AUTHORITY_PATH, AUTHORITY, "RegisterAuthenticationAgent", args, None, 0, 5000, None)
    loop = GLib.MainLoop()
    result = {}

    def done(connection, res):
        try:
            result["authorized"] = connection.call_finish(res).unpack()[0][0]
        except GLib.Error as exc:
            result["authorized"] = f"error {exc.message}"
        loop.quit()

    check = GLib.Variant("((sa{sv})sa{ss}us)", (subject, action, {}, 1, ""))
    con.call(PK, AUTHORITY_PATH, AUTHORITY, "CheckAuthorization", check, None, 0, 60000, None, done)
    loop.run()
    print(f"{label}: authorized={result['authorized']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
