"""What every perception command-line tool shares: argument parsing, one-line errors, exits.

A user who passes a wrong path should read one line that names the input and the fix, not
forty lines of traceback; scripts calling the tools should be able to tell "bad input"
from "worked". So:

- exit 0: done;
- exit 2: bad input or bad arguments (a common.errors.InputError, an OS error reading
  or writing a file, or an argparse complaint), one line on stderr;
- exit 130: interrupted (Ctrl-C), e.g. ending a webcam run;
- anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, List, Optional

from common.errors import InputError

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (plus a pointer to --help), exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write("%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))
        sys.exit(EXIT_BAD_INPUT)


def make_parser(prog: str, description: str, epilog: Optional[str] = None) -> ArgumentParser:
    """A parser whose --help keeps the description's line breaks."""
    return ArgumentParser(prog=prog, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def fail(prog: str, message: str) -> int:
    """Print ``prog: error: message`` as one line on stderr; returns EXIT_BAD_INPUT."""
    sys.stderr.write("%s: error: %s\n" % (prog, " ".join(str(message).split())))
    return EXIT_BAD_INPUT


def run(prog: str, body: Callable[[], Optional[int]]) -> int:
    """Call ``body()`` and turn bad input into one line and an exit code."""
    try:
        code = body()
    except InputError as exc:
        return fail(prog, str(exc))
    except OSError as exc:  # permission denied, disk full, a folder where a file should be
        name = getattr(exc, "filename", None)
        return fail(prog, "%s%s; check the path and its permissions"
                    % ("%s: " % name if name else "", exc.strerror or exc))
    except KeyboardInterrupt:
        sys.stderr.write("%s: interrupted\n" % prog)
        return EXIT_INTERRUPTED
    return EXIT_OK if code is None else int(code)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an integer >= 1, got %r" % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("expected an integer >= 1, got %r" % text)
    return value


def unit_float(text: str) -> float:
    """argparse type: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number in (0, 1], got %r" % text) from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError("expected a number in (0, 1], got %r" % text)
    return value


def upscale_factor(text: str) -> float:
    """argparse type: a detector upscale factor in [1, 4]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number in [1, 4], got %r" % text) from None
    if not 1.0 <= value <= 4.0:
        raise argparse.ArgumentTypeError("expected a number in [1, 4], got %r" % text)
    return value


def argv_or_sys(argv: Optional[List[str]]) -> List[str]:
    return list(sys.argv[1:] if argv is None else argv)
