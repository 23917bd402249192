"""Run a PAM application on a pseudo-terminal, answer its password prompts, and time it.

Usage: converse.py [--password PW] [--send TEXT] [--timeout S] -- COMMAND ARGS...

Prints one JSON object: the exit status, the total time, the time at which the
first password prompt appeared (null if none: the face check answered alone),
and everything the command wrote. Every prompt containing "assword" gets
--password; --send is written once after the first output (for `login`'s shell).
Standard library only, so Debian's python3 runs it as any user.
"""

import argparse
import json
import os
import pty
import select
import signal
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--password", default="")
    p.add_argument("--send", action="append", default=[], help="PROMPT=TEXT: answer PROMPT with TEXT")
    p.add_argument("--timeout", type=float, default=60.0)
    split = sys.argv.index("--")
    args = p.parse_args(sys.argv[1:split])
    argv = sys.argv[split + 1 :]
    answers = [tuple(s.split("=", 1)) for s in args.send]
    started = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    output = b""
    seen = 0
    prompt_at = None
    prompts = 0
    deadline = started + args.timeout
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([fd], [], [], min(left, 0.05))
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        text = output.decode(errors="replace")
        if text.count("assword") > prompts:
            prompts = text.count("assword")
            if prompt_at is None:
                prompt_at = time.monotonic() - started
            os.write(fd, args.password.encode() + b"\n")
        for i, (prompt, reply) in enumerate(answers):
            if prompt in text[seen:]:
                os.write(fd, reply.encode().decode("unicode_escape").encode())
                answers.pop(i)
                seen = len(text)
                break
    _, status = os.waitpid(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    json.dump(
        {
            "rc": rc,
            "elapsed": round(time.monotonic() - started, 3),
            "prompt_at": None if prompt_at is None else round(prompt_at, 3),
            "timed_out": timed_out,
            "output": output.decode(errors="replace"),
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
