"""The ``synthfr`` command line.

Every subcommand is one module in :mod:`synthfr.app.commands` (file ``sample.py`` -> ``synthfr sample``;
underscores become hyphens). A command module defines::

    HELP = "one line shown in `synthfr --help`"
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int | None: ...   # a thin wrapper over a public API function

Command modules import heavy libraries inside ``run`` so ``synthfr --help`` stays fast. Nothing in the library
imports the app; ``synthfr.cli`` only hands ``main`` on for ``python -m synthfr.cli``.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import synthfr.app.commands as _commands_pkg


def _command_modules():
    for info in sorted(pkgutil.iter_modules(_commands_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        yield info.name.rstrip("_").replace("_", "-"), f"{_commands_pkg.__name__}.{info.name}"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2): ``synthfr CMD: error: ... (see synthfr CMD --help)``."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class _Help(argparse.RawDescriptionHelpFormatter):
    """Shows a config field's default (and what a ``--no-NAME`` switch does) after its docstring."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = getattr(action, "config_default", None)
        if isinstance(action, argparse._StoreFalseAction):
            text += " (this switch turns it off)"
        elif default not in (None, [], {}, "") and not isinstance(action, argparse._StoreTrueAction):
            text += f" (default: {default})".replace("%", "%%")
        return text


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only`` (a command name), only that command's options are built: they come from
    config dataclasses whose modules may import torch, which `synthfr --help` and other commands never pay."""
    from synthfr import __version__

    parser = _Parser(
        prog="synthfr",
        description="Synthetic face-recognition datasets: sample identities, generate faces, train and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"synthfr {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, modname in _command_modules():
        mod = importlib.import_module(modname)
        doc = (mod.__doc__ or "").strip()
        p = sub.add_parser(name, help=getattr(mod, "HELP", doc.splitlines()[0] if doc else ""),
                           description=doc or None, formatter_class=_Help)
        if only is None or only == name:
            mod.add_arguments(p)
        # also accepted after the command; SUPPRESS keeps a `synthfr --debug CMD` given before it
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the Python traceback of an error")
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure becomes one line on stderr (exit 2: usage, 1: runtime; see
    :mod:`synthfr.errors`). ``--debug`` or ``SYNTHFR_DEBUG=1`` re-raises with the traceback."""
    import os

    from synthfr.errors import describe_exception

    names = {name for name, _ in _command_modules()}
    given = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(next((a for a in given if a in names), ""))
    args = parser.parse_args(given)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False) or os.environ.get("SYNTHFR_DEBUG"))
    try:
        rc = args._run(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"synthfr {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place where failures become one-line messages
        if debug:
            raise
        msg, code = describe_exception(e)
        print(f"synthfr {args.command}: error: {msg}", file=sys.stderr)
        return code
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
