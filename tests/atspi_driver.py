"""Drive a GTK 4 app through the accessibility bus (AT-SPI), as a screen reader or a person would.

Run it as the app's user, in the app's session bus (DBUS_SESSION_BUS_ADDRESS).
It reads one JSON command per line on stdin and answers one JSON line:

- {"cmd": "find", "role": R, "name": N} -> {"found", "states", "name"}: the first
  node with that role whose name is N (or starts with N when N ends in "*");
- {"cmd": "act", "role": R, "name": N} -> {"done", "action"}: run its first action
  (click for buttons, toggle for switches, activate for check buttons);
- {"cmd": "names", "role": R} -> {"names": [...]}: every node of that role;
- {"cmd": "dump"} -> {"tree": "..."}: the whole tree, for a failing test's message.

Every command looks at the app afresh (the AT-SPI cache is cleared first).
"""

from __future__ import annotations

import json
import sys
import time

import gi

gi.require_version("Atspi", "2.0")
from gi.repository import Atspi  # noqa: E402

RETRIES = 3
"""Times a command is tried again when AT-SPI says a node no longer exists."""

STALE = ("no longer exists", "No such interface", "Unknown object", "UnknownObject")
"""What AT-SPI says when a node it handed out has since been destroyed: GTK tears an object off
the bus between a parent listing it and the walk asking it anything."""


def application(title: str, timeout: float = 30.0):
    """The application whose window has this title."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desktop = Atspi.get_desktop(0)
        for i in range(desktop.get_child_count()):
            app = desktop.get_child_at_index(i)
            if app is None:
                continue
            for j in range(app.get_child_count()):
                window = app.get_child_at_index(j)
                if window is not None and window.get_name() == title:
                    return app
        time.sleep(0.2)
    raise TimeoutError(f"no application with a window titled {title!r}")


def nodes(root, depth: int = 0):
    yield depth, root
    for i in range(root.get_child_count()):
        child = root.get_child_at_index(i)
        if child is not None:
            yield from nodes(child, depth + 1)


def matches(node, role: str, name: str | None) -> bool:
    if node.get_role_name() != role:
        return False
    if name is None:
        return True
    text = node.get_name() or ""
    return text.startswith(name[:-1]) if name.endswith("*") else text == name


def states(node) -> list[str]:
    return sorted(s.value_nick for s in node.get_state_set().get_states())


def find(app, role: str, name: str | None):
    return next((n for _d, n in nodes(app) if matches(n, role, name)), None)


def answer(app, cmd: dict) -> dict:
    app.clear_cache()
    kind = cmd["cmd"]
    if kind == "dump":
        lines = [f"{'  ' * d}{n.get_role_name()} {n.get_name()!r} {states(n)}" for d, n in nodes(app)]
        return {"tree": "\n".join(lines)}
    if kind == "names":
        return {"names": [n.get_name() for _d, n in nodes(app) if n.get_role_name() == cmd["role"]]}
    node = find(app, cmd["role"], cmd.get("name"))
    if kind == "find":
        if node is None:
            return {"found": False}
        return {"found": True, "states": states(node), "name": node.get_name()}
    if kind == "act":
        if node is None:
            return {"done": False, "why": "not found"}
        action = node.get_action_iface()
        if action is None or action.get_n_actions() == 0:
            return {"done": False, "why": "no action"}
        return {"done": bool(action.do_action(0)), "action": action.get_action_name(0)}
    return {"error": f"unknown command {kind!r}"}


def main() -> int:
    title = sys.argv[1]
    app = application(title)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        for attempt in range(RETRIES + 1):
            try:
                reply = answer(app, cmd)
                break
            except Exception as exc:  # noqa: BLE001  (reported to the test, which fails with it)
                reply = {"error": f"{type(exc).__name__}: {exc}"}
                if attempt == RETRIES or not any(m in str(exc) for m in STALE):
                    break
                # A node went away while the tree was walked (a list rebuilt under us): look the
                # application up again, as a screen reader would. A dead app is not found.
                time.sleep(0.2)
                try:
                    app = application(title, timeout=5.0)
                except TimeoutError as gone:
                    reply = {"error": f"{exc}; then {gone}"}
                    break
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
