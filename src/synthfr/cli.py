"""The ``synthfr`` command line.

Every subcommand is one module in :mod:`synthfr.commands` (file ``sample.py`` -> ``synthfr sample``;
underscores become hyphens). A command module defines::

    HELP = "one line shown in `synthfr --help`"
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int | None: ...   # a thin wrapper over a public API function

Command modules import heavy libraries inside ``run`` so ``synthfr --help`` stays fast. Nothing else in the
package imports this module.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import synthfr.commands as _commands_pkg


def _command_modules():
    for info in sorted(pkgutil.iter_modules(_commands_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        yield info.name.rstrip("_").replace("_", "-"), f"{_commands_pkg.__name__}.{info.name}"


def build_parser() -> argparse.ArgumentParser:
    from synthfr import __version__

    parser = argparse.ArgumentParser(
        prog="synthfr",
        description="Synthetic face-recognition datasets: sample identities, generate faces, train and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"synthfr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, modname in _command_modules():
        mod = importlib.import_module(modname)
        doc = (mod.__doc__ or "").strip()
        p = sub.add_parser(name, help=getattr(mod, "HELP", doc.splitlines()[0] if doc else ""),
                           description=doc or None, formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        rc = args._run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, KeyError, ValueError, NotImplementedError, RuntimeError) as e:
        if getattr(args, "debug", False) or __import__("os").environ.get("SYNTHFR_DEBUG"):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"synthfr {args.command}: error: {msg}", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
