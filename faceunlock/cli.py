"""The `faceunlock` command: argument parsing, and turning every failure into a clear message."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from faceunlock import __version__
from faceunlock.errors import EXIT_ERROR, describe

COMMANDS = (
    "enroll",
    "verify",
    "live_test",
    "manage",
    "evaluate",
    "train",
    "export",
    "bench",
    "daemon",
    "unlock_now",
    "install",
    "configure",
    "doctor",
)
"""Modules under faceunlock.commands; each has register(subparsers), which sets args.run."""

GROUPS = (
    ("Use", ("enroll", "verify", "list", "remove", "clear", "unlock-now", "test", "doctor")),
    ("Administer", ("config", "disable", "enable", "install", "uninstall", "daemon", "password-used")),
    ("Measure and develop", ("eval", "bench", "train", "export")),
)
"""How `faceunlock --help` lists the commands: a person's everyday ones first."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceunlock",
        usage="faceunlock [-h] [--version] [--debug] COMMAND ...",
        description="Face unlock for Linux desktops.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"faceunlock {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS)
    for name in COMMANDS:
        importlib.import_module(f"faceunlock.commands.{name}").register(sub)
    parser.epilog = command_list({a.dest: a.help or "" for a in sub._choices_actions})
    return parser


def command_list(helps: dict[str, str]) -> str:
    """The commands under GROUPS' headings, each with its help line; a command in no group is an error."""
    grouped = [name for _title, names in GROUPS for name in names]
    if sorted(grouped) != sorted(helps):
        raise AssertionError(f"cli.GROUPS and the registered commands differ: {set(grouped) ^ set(helps)}")
    width = max(map(len, helps)) + 2
    blocks = [
        "\n".join([f"{title}:", *(f"  {name:<{width}}{helps[name]}" for name in names)])
        for title, names in GROUPS
    ]
    return "\n\n".join([*blocks, "faceunlock COMMAND --help describes one command; man faceunlock, all."])


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 done (a match), 1 not recognised, 2 usage, 3 error
    (faceunlock.errors); every error is one line starting `faceunlock: error:`."""
    args = build_parser().parse_args(argv)
    try:
        if args.debug or os.environ.get("FACEUNLOCK_DEBUG"):
            return finish(dispatch(args))
        try:
            return finish(dispatch(args))
        except KeyboardInterrupt:
            print("faceunlock: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            raise
        except Exception as exc:  # noqa: BLE001  (fail closed with a one-line message, never a traceback)
            print(f"faceunlock: error: {describe(exc)}", file=sys.stderr)
            return EXIT_ERROR
    except BrokenPipeError:
        return reader_left()


def finish(code: int) -> int:
    """Flush the output here, so that a reader that left (`| head`) is noticed while we can act."""
    sys.stdout.flush()
    return code


def reader_left() -> int:
    """The reader of our output went away (`faceunlock config show | head -1`): stop quietly, as a
    command killed by SIGPIPE does, without a message and without Python's complaint at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + 13


def dispatch(args: argparse.Namespace) -> int:
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
