"""The one error type of synthfr, and how the CLI turns any failure into one line.

``SynthfrError(message, kind="runtime"|"usage")``: the message names the input and says what to do. The CLI
(:func:`synthfr.app.cli.main`) prints it as one line ``synthfr CMD: error: MESSAGE`` and exits with 2 for usage
errors (a flag, config value or path given by the user is wrong: fix the command) and 1 for runtime failures
(the command was well formed but an input file is corrupt, the disk is full, a device is missing, another
process holds the output folder). ``--debug`` (or ``SYNTHFR_DEBUG=1``) shows the traceback instead.

:class:`UsageError` and :class:`InputError` are also :class:`ValueError` so code (and tests) that catch
``ValueError`` around validation keep working.
"""
from __future__ import annotations

import errno

__all__ = ["SynthfrError", "UsageError", "InputError", "LockedError", "Interrupted", "describe_exception"]


class SynthfrError(Exception):
    """A failure reported to the user as one line; ``kind`` is ``usage`` (exit 2) or ``runtime`` (exit 1)."""

    kind = "runtime"

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        if kind is not None:
            if kind not in ("usage", "runtime"):
                raise ValueError(f"kind must be usage or runtime, got {kind!r}")
            self.kind = kind

    @property
    def exit_code(self) -> int:
        return 2 if self.kind == "usage" else 1


class UsageError(SynthfrError, ValueError):
    """A flag, config value or path is wrong (exit 2): the message says which and what is allowed."""

    kind = "usage"


class InputError(SynthfrError, ValueError):
    """An input file holds bad data (exit 1): the message names the file and the first bad row/record."""

    kind = "runtime"


class LockedError(SynthfrError):
    """Another synthfr process holds the output folder (exit 1)."""

    kind = "runtime"


class Interrupted(SynthfrError):
    """A run stopped by SIGINT/SIGTERM after saving its state; exit 130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, message: str, signum: int = 2):
        super().__init__(message, "runtime")
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _first_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 600 else text[:597] + "..."


def describe_exception(e: BaseException) -> tuple[str, int]:
    """``(one-line message, exit code)`` for any exception that reaches the CLI."""
    if isinstance(e, SynthfrError):
        return _first_line(e), e.exit_code
    try:
        import yaml

        if isinstance(e, yaml.YAMLError):
            where = ""
            mark = getattr(e, "problem_mark", None)
            if mark is not None:
                where = f" ({mark.name}, line {mark.line + 1}, column {mark.column + 1})"
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            return _first_line(f"cannot read YAML{where}: {problem}; fix the file (synthfr reads plain YAML "
                               "only: no !tags)"), 2
    except ImportError:  # pragma: no cover
        pass
    name = type(e).__name__
    if name == "SafetensorError" or type(e).__module__.startswith("safetensors"):
        return _first_line(f"cannot read a safetensors weights file ({e}): it is corrupt, truncated or not a "
                           "safetensors file; re-export or re-download it"), 1
    if isinstance(e, FileNotFoundError):
        msg = str(e) if not e.filename else f"{e.filename}: no such file or folder; check the path"
        return _first_line(msg), 2
    if isinstance(e, IsADirectoryError) or isinstance(e, NotADirectoryError):
        return _first_line(f"{e.filename or e}: {e.strerror or 'wrong kind of path'}; pass a file where a file is "
                           "expected and a folder where a folder is expected"), 2
    if isinstance(e, PermissionError):
        return _first_line(f"{e.filename or ''}: permission denied; choose a path you can write to"), 1
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return _first_line(f"disk full writing {e.filename or 'output'}: free some space or choose an --out on "
                           "another disk, then run the same command again (with --resume where it has one)"), 1
    if isinstance(e, OSError):
        return _first_line(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}"), 1
    if isinstance(e, KeyError):
        return _first_line(e.args[0] if e.args else "missing key"), 2
    if isinstance(e, (ValueError, TypeError)):
        return _first_line(e), 2
    if isinstance(e, (NotImplementedError, RuntimeError)):
        return _first_line(e), 1
    if isinstance(e, MemoryError):
        return "out of memory; use a smaller --batch-size or fewer identities", 1
    return _first_line(f"unexpected {name}: {e} (run again with --debug for the traceback and report it)"), 1
