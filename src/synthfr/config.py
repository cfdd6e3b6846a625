"""Dataclass configs (litgpt-style): one dataclass per job, a docstring under every field.

Helpers here turn configs into plain dicts and YAML and back, with errors that name the offending key,
and read the per-field docstrings so the CLI and the docs can show them.
"""
from __future__ import annotations

import ast
import collections.abc
import dataclasses
import inspect
import re
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from synthfr.utils.io import dump_yaml, to_dict  # noqa: F401 - re-exported: the config API

T = TypeVar("T")

__all__ = ["to_dict", "from_dict", "load_yaml", "dump_yaml", "field_docs", "merge", "check_keys",
           "parse_assignment", "parse_assignments", "set_dotted", "add_config_arguments", "config_from_args",
           "config_dict_from_args", "add_common_arguments", "COMMON_OPTIONS", "given_keys", "HIDDEN"]


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but numbers as YAML 1.2 (and Python) read them: ``5e-5`` and ``1e3`` are floats, not
    the strings YAML 1.1 makes of them (``--set lr=5e-5`` would otherwise reach the trainer as text)."""


_Loader.add_implicit_resolver(  # copies SafeLoader's resolvers on first use: yaml.safe_load is unchanged
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def parse_assignment(text: str, what: str = "KEY=VALUE") -> tuple[str, Any]:
    """The one KEY=VALUE parser of synthfr (``--set``, ``--option``, spec strings ``NAME:key=value,...``):
    ``"train.config.epochs=2"`` -> ``("train.config.epochs", 2)``. The value is read as YAML (``[a, b]`` is a
    list, ``0.5`` a float, an empty value None); text that is not valid YAML stays a string."""
    if "=" not in text:
        from synthfr.errors import UsageError

        raise UsageError(f"{what}: {text!r} is not key=value")
    key, value = (t.strip() for t in text.split("=", 1))
    if not key:
        from synthfr.errors import UsageError

        raise UsageError(f"{what}: {text!r} has no key before '='")
    if not value:
        return key, None
    try:
        return key, yaml.load(value, Loader=_Loader)
    except yaml.YAMLError:
        return key, value


def parse_assignments(items: Any, what: str = "KEY=VALUE") -> dict[str, Any]:
    """Several ``KEY=VALUE`` items (see :func:`parse_assignment`) as one dict; later keys win."""
    return dict(parse_assignment(str(it), what) for it in (items or []))


def check_keys(cls: type, data: Mapping[str, Any], where: str = "", owned: tuple[str, ...] = (),
               owner: str = "the caller itself") -> None:
    """The one unknown-key check of synthfr: a ``KeyError`` naming every key of ``data`` that is not a field of
    dataclass ``cls`` (with its section ``where``) and listing the valid ones; keys in ``owned`` are fields that
    ``owner`` sets itself and refuses from the user."""
    names = [f.name for f in dataclasses.fields(cls)]
    prefix = f"{where}." if where else ""
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise KeyError(f"unknown config key(s) {', '.join(prefix + u for u in unknown)} for {cls.__name__}; "
                       f"valid keys: {', '.join(n for n in names if n not in owned)}")
    clash = sorted(set(data) & set(owned))
    if clash:
        raise KeyError(f"{', '.join(prefix + c for c in clash)} is set by {owner}; remove it")


#: ``field(metadata=HIDDEN)``: a field that the caller sets (e.g. the pipeline sets a stage's output folder); it
#: is left out of dumps and of the command line.
HIDDEN = {"hidden": True}


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if value is None:
        return None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return from_dict(tp, value, _where=where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _convert(args[0], value, where)
        return value
    if origin in (list, tuple):
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        seq = [_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(seq) if origin is tuple else seq
    if tp is Path:
        return Path(value)
    if tp in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return tp(value)
    return value


def from_dict(cls: type[T], data: Mapping[str, Any] | None, *, _where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys raise an error that lists the valid ones."""
    data = dict(data or {})
    check_keys(cls, data, _where)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints.get(name, Any), value, f"{_where}.{name}" if _where else name)
    from synthfr.utils.validate import check_types

    # types are checked here, where every config is read, so a YAML `images_per_id: "3"` fails at load time
    obj = check_types(cls(**kwargs), _where)
    try:  # the mapping as given (see given_keys): a digest of "what the user asked for" must not change
        object.__setattr__(obj, "_given", dict(data))  # when a default or a number's type does
    except (AttributeError, TypeError):  # slotted dataclasses
        pass
    return obj


def given_keys(cfg: Any) -> dict[str, Any]:
    """The mapping :func:`from_dict` built ``cfg`` from, as given (YAML values, no defaults filled in); for a
    config built in Python, its fields that differ from their defaults."""
    got = getattr(cfg, "_given", None)
    if got is not None:
        return dict(got)
    out = {}
    for f in dataclasses.fields(cfg):
        default = _default(f)
        value = getattr(cfg, f.name)
        if default is dataclasses.MISSING or to_dict(value) != to_dict(default):
            out[f.name] = to_dict(value)
    return out


def merge(cfg: T, overrides: Mapping[str, Any]) -> T:
    """Return a copy of ``cfg`` with ``overrides`` (dotted keys allowed: ``{"optim.lr": 0.1}``) applied."""
    return from_dict(type(cfg), set_dotted(to_dict(cfg), overrides))


def load_yaml(path: str | Path, cls: type[T] | None = None) -> Any:
    """Read a YAML file; with ``cls``, build that dataclass from it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist; pass the path of a YAML file")
    with open(path) as f:
        try:
            data = yaml.load(f, Loader=_Loader) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            from synthfr.errors import UsageError

            raise UsageError(f"config file {path}{where}: {problem}; fix the YAML (plain YAML only: tags such as "
                             "!!python/object are refused)") from None
    return from_dict(cls, data) if cls is not None else data


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (attribute docstrings, as litgpt does); a subclass
    inherits its bases' and may write its own."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            docs.update(_own_field_docs(klass))
    return docs


def _own_field_docs(cls: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    tree = ast.parse(source)
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, nxt in zip(body, body[1:] + [None]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant) \
                    and isinstance(nxt.value.value, str):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


# -- the command line of a config (litgpt's way: the dataclass is the only description of its options) -----
#: Options a command may add beside its config's fields (not config fields: how the command reads and
#: reports); their help is fixed here, once.
COMMON_OPTIONS: dict[str, dict[str, Any]] = {
    "config": dict(metavar="CONFIG.yaml", help="the YAML config file (configs/ holds examples)"),
    "--config": dict(metavar="YAML", help="read the config's fields from a YAML file (options given on the "
                                          "command line override it)"),
    "--set": dict(dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                  help="override any config field, dotted for sections (e.g. model.depth=6; repeatable; values "
                       "are YAML)"),
    "--json": dict(metavar="PATH", help="also write the command's result as JSON"),
    "--quiet": dict(action="store_true", help="no progress bar"),
    "--no-progress": dict(action="store_true", help="no progress bar"),
}


def add_common_arguments(parser: Any, *names: str) -> None:
    """Add options of :data:`COMMON_OPTIONS` (``"--json"``, ``"--config"``, ...) to an argparse parser."""
    for name in names:
        parser.add_argument(name, **COMMON_OPTIONS[name])


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])
        return tuple(args)
    return tp


def _option_settings(tp: Any, default: Any) -> dict[str, Any]:
    """argparse settings of a field from its type (after Optional is removed) and default."""
    tp = _strip_optional(tp)
    if isinstance(tp, tuple):  # e.g. str | list: one value or several
        if any(a is list or typing.get_origin(a) is list for a in tp):
            return {"nargs": "+", "one_or_many": True}
        return {"type": tp[0]}
    origin = typing.get_origin(tp)
    if tp is bool:
        return {"action": "store_false" if default is True else "store_true"}
    if tp is dict or origin is dict:
        return {"action": "append", "metavar": "KEY=VALUE"}
    if tp is list or tp is tuple or origin in (list, tuple, collections.abc.Sequence):
        inner = (typing.get_args(tp) or [None])[0]
        if inner is None and isinstance(default, (list, tuple)) and default:
            inner = type(default[0])
        return {"nargs": "+", **({"type": inner} if inner in (int, float) else {})}
    if origin is typing.Literal:
        return {"choices": list(typing.get_args(tp))}
    if tp in (int, float):
        return {"type": tp}
    return {}


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def add_config_arguments(parser: Any, cls: type, *, positional: tuple[str, ...] = (),
                         flags: Mapping[str, Mapping[str, Any]] | None = None,
                         aliases: Mapping[str, tuple[str, Any]] | None = None,
                         keys: Mapping[tuple[str, ...] | str, str] | None = None, skip: tuple[str, ...] = (),
                         nested: Mapping[str, str] | None = None, _dest: str = "", _flag: str = "") -> None:
    """One option per field of dataclass ``cls``: ``--field-name``, its help the field's docstring, its kind
    from the annotation (bool: a switch, ``--no-NAME`` when the default is true; list: several values; dict:
    repeatable KEY=VALUE; a nested dataclass: its fields as ``--PREFIX-NAME``); a field without a default is
    required. ``positional`` fields are positional arguments; ``flags`` gives a field other option strings or
    argparse settings (``{"benchmarks": {"flags": ["--benchmark"], "action": "append"}}``), ``aliases`` extra
    switches that set a field to one value (``{"--no-check": ("check", "sampled")}``), ``nested`` the option
    prefix of a nested dataclass field (``{"augment": "aug"}``), ``keys`` options that set one key of a dict
    field (``{("--margin", "-m"): "head_kwargs.m"}``); ``skip`` fields get no option. Every default
    stays None so that :func:`config_from_args` applies only what was given; help shows the config's default."""
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    flags, nested = dict(flags or {}), dict(nested or {})
    if not _dest:  # which dataclasses describe this parser's options (the tests read it)
        parser.config_classes = [*getattr(parser, "config_classes", []), cls]
    for f in dataclasses.fields(cls):
        dest = _dest + f.name
        if f.name in skip or dest in skip or f.metadata.get("hidden"):
            continue
        default, tp = _default(f), hints.get(f.name, Any)
        if dataclasses.is_dataclass(tp):
            add_config_arguments(parser, tp, flags=flags, skip=skip, _dest=f"{dest}.",
                                 _flag=_flag + nested.get(dest, f.name.replace("_", "-")) + "-")
            continue
        settings = {**_option_settings(tp, default), **flags.get(dest, {})}
        if settings.get("action") == "append" and "KEY=VALUE" != settings.get("metavar"):
            settings.pop("nargs", None)  # a list given one value per option (--benchmark A --benchmark B)
        names = list(settings.pop("flags", []))
        one_or_many = settings.pop("one_or_many", False)
        if dest in positional:
            if default is not dataclasses.MISSING:
                settings.setdefault("nargs", "?")
            settings.setdefault("metavar", f.name.upper())
            action = parser.add_argument(dest, default=None, help=docs.get(f.name, "").replace("%", "%%"),
                                         **settings)
        else:
            if not names:
                stem = _flag + f.name.replace("_", "-")
                names = [f"--no-{stem}" if settings.get("action") == "store_false" else f"--{stem}"]
            if default is dataclasses.MISSING:
                settings["required"] = True
            if settings.get("action") not in ("store_true", "store_false") and "choices" not in settings:
                settings.setdefault("metavar", f.name.upper())
            action = parser.add_argument(*names, dest=dest, default=None,
                                         help=docs.get(f.name, "").replace("%", "%%"), **settings)
        action.config_default = None if default is dataclasses.MISSING else to_dict(default)
        action.one_or_many = one_or_many
    for flag, (dest, value) in (aliases or {}).items():
        parser.add_argument(flag, dest=dest, action="store_const", const=value, default=None,
                            help=f"same as --{dest.replace('_', '-')} {value}")
    for names, dest in (keys or {}).items():
        field_name, key = dest.rsplit(".", 1)
        option = flags.get(field_name, {}).get("flags", [field_name])[0].lstrip("-").replace("_", "-")
        parser.add_argument(*([names] if isinstance(names, str) else names), dest=dest, default=None,
                            metavar="VALUE", help=f"same as --{option} {key}=VALUE")


def config_from_args(cls: type[T], args: Any, base: Any = None) -> T:
    """The config of a command line made by :func:`add_config_arguments`: ``base`` (a dataclass or mapping)
    < ``--config`` YAML < the options given < ``--set KEY=VALUE``. Unknown keys fail with the valid ones."""
    return from_dict(cls, config_dict_from_args(cls, args, base))


def config_dict_from_args(cls: type, args: Any, base: Any = None) -> dict[str, Any]:
    """:func:`config_from_args` as a plain mapping (for configs with their own loader)."""
    data = to_dict(base) if base is not None else {}
    if getattr(args, "config", None):
        from_file = load_yaml(args.config) or {}
        if not isinstance(from_file, Mapping):
            from synthfr.errors import UsageError

            raise UsageError(f"{args.config} must hold a YAML mapping of {cls.__name__} fields")
        data = set_dotted(data, from_file)
    # dotted keys, so that a dict field's KEY=VALUE items (and --margin-like options) add to the dict they find
    given: dict[str, Any] = {}
    hints_of = _nested_hints(cls)
    for dest, tp in hints_of.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        kind = _option_settings(tp, None)
        if kind.get("action") == "append" and kind.get("metavar") == "KEY=VALUE":  # dict fields
            items = parse_assignments(value, f"--{dest.replace('_', '-')}")
            given.update({f"{dest}.{k}": v for k, v in items.items()})
            continue
        if kind.get("one_or_many") and isinstance(value, list) and len(value) == 1:
            value = value[0]
        given[dest] = value
    for dest, value in vars(args).items():  # options of one key of a dict field (--margin: head_kwargs.m)
        head = dest.rpartition(".")[0]
        if value is not None and head in hints_of and dest not in hints_of and isinstance(value, str):
            given.update(parse_assignments([f"{dest}={value}"], f"--{dest}"))
    data = set_dotted(data, given)
    return set_dotted(data, parse_assignments(getattr(args, "overrides", None) or [], "--set"))


def _nested_hints(cls: type, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints.get(f.name, Any)
        if dataclasses.is_dataclass(tp):
            out.update(_nested_hints(tp, f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = tp
    return out


def set_dotted(data: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with dotted ``values`` (``{"optim.lr": 0.1}``) applied; a section in the way of a
    dotted key must be a mapping."""
    import copy

    out = copy.deepcopy(dict(data))
    for key, value in values.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                from synthfr.errors import UsageError

                raise UsageError(f"{key}: {p} is not a section")
            node = nxt
        node[parts[-1]] = value
    return out
