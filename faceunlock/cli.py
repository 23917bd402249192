"""The `faceunlock` command: argument parsing, and turning every failure into a clear message."""

from __future__ import annotations

import argparse
import os
import sys

from faceunlock import __version__


class UserError(Exception):
    """A failure to report to the user as one line, without a traceback."""


def add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="template directory (default: from config, /var/lib/faceunlock)")


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (default: /etc/faceunlock/config.toml if present)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceunlock", description="Face unlock for Linux desktops.")
    parser.add_argument("--version", action="version", version=f"faceunlock {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("enroll", help="capture and store a user's face")
    p.add_argument("--user", required=True)
    p.add_argument("--source", help="camera device or index, video, image or folder of images")
    p.add_argument("--label", default="default", help="name of this enrolment (default: default)")
    p.add_argument("--frames", type=int, help="good frames to capture (default 10)")
    p.add_argument("--timeout", type=float, help="seconds to try for (default 30)")
    add_store(p)
    add_common(p)

    p = sub.add_parser("verify", help="check whether the enrolled user is in view")
    p.add_argument("--user", required=True)
    p.add_argument("--source", help="camera device or index, video, image or folder of images")
    p.add_argument("--timeout", type=float, help="seconds a scan may take (default 5)")
    p.add_argument("--level", choices=("strict", "balanced", "fast"), help="security level")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_store(p)
    add_common(p)

    for name, text in (
        ("list", "list a user's enrolments"),
        ("remove", "remove one enrolment by label"),
        ("clear", "remove all of a user's enrolments"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--user", required=True)
        if name == "remove":
            p.add_argument("--label", required=True)
        add_store(p)
        p.add_argument("--config", help="TOML config file")

    p = sub.add_parser("eval", help="measure accuracy and error rates on a benchmark")
    esub = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    e = esub.add_parser("lfw", help="LFW: 10-fold View 2 protocol, plus all cross-identity pairs")
    e.add_argument("--root", required=True, help="folder of LFW person folders (lfw-deepfunneled)")
    e.add_argument("--pairs", required=True, help="pairs.txt (View 2) or a View 1 pairs file")
    e.add_argument("--folds", type=int, nargs="*", help="only these folds (1-based), for a quick check")
    e.add_argument(
        "--all-pairs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure TAR at FAR 1e-5 and 1e-6 on every cross-identity pair of the images under --root",
    )
    f = esub.add_parser("folder", help="any root/<identity>/<image> dataset: all genuine and impostor pairs")
    f.add_argument("--root", required=True, help="folder of identity folders")
    f.add_argument("--min-face-size", type=int, default=20, help="detector minimum face size (pixels)")
    f.add_argument("--max-impostor", type=int, default=50_000_000, help="sample impostor pairs above this")
    for bench in (e, f):
        bench.add_argument("--json", dest="json_out", help="write the results to this JSON file")
        bench.add_argument("--plots", help="write roc.png and hist.png into this folder")
        bench.add_argument("--cache", help="folder for cached landmarks and embeddings")
        bench.add_argument("--model", default=None, help="model card name in models/")
        bench.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None, help="flip-average")
        bench.add_argument("--threads", type=int, default=2)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.debug or os.environ.get("FACEUNLOCK_DEBUG"):
        return dispatch(args)
    try:
        return dispatch(args)
    except KeyboardInterrupt:
        print("faceunlock: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (fail closed with a one-line message, never a traceback)
        print(f"faceunlock: error: {describe(exc)}", file=sys.stderr)
        return 1


def describe(exc: BaseException) -> str:
    """One line naming the problem; unexpected exceptions also name their type."""
    from faceunlock.errors import EXPECTED

    if isinstance(exc, EXPECTED):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "enroll":
        from faceunlock.commands.enroll import run
    elif args.command == "verify":
        from faceunlock.commands.verify import run
    elif args.command in ("list", "remove", "clear"):
        from faceunlock.commands.manage import run
    elif args.command == "eval":
        from faceunlock.commands.evaluate import run
    else:
        raise UserError(f"unknown command {args.command}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
