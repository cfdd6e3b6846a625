"""One config system (issue 16, acceptance 2): every subcommand's options come from config dataclasses.

* every option of every subcommand is a field of one of the command's dataclasses and its help is that field's
  docstring (or a generated alias / dict-key option, or one of the few common options with their fixed help);
* the package holds one KEY=VALUE parser (:func:`synthfr.config.parse_assignment`) and one unknown-key check
  (:func:`synthfr.config.check_keys`).
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from pathlib import Path

import pytest

import synthfr
from synthfr.config import (COMMON_OPTIONS, add_config_arguments, check_keys, config_from_args, field_docs,
                            parse_assignment, parse_assignments)

SRC = Path(synthfr.__file__).resolve().parent


def _commands() -> list[str]:
    from synthfr.app.cli import _command_modules

    return [name for name, _ in _command_modules()]


def _field_doc(classes: list[type], dest: str) -> str | None:
    """The docstring of the (possibly nested, ``augment.flip``) field ``dest`` in any of ``classes``."""
    for cls in classes:
        owner, parts = cls, dest.split(".")
        for p in parts[:-1]:
            tp = typing.get_type_hints(owner).get(p)
            if not (tp and dataclasses.is_dataclass(tp)):
                owner = None
                break
            owner = tp
        if owner is not None and parts[-1] in {f.name for f in dataclasses.fields(owner)}:
            return field_docs(owner).get(parts[-1])
    return None


def _config_classes(parser: argparse.ArgumentParser) -> list[type]:
    """Every dataclass whose fields made options of ``parser`` (recorded by add_config_arguments)."""
    return list(getattr(parser, "config_classes", []))


@pytest.mark.parametrize("command", _commands())
def test_every_option_is_a_documented_config_field(command):
    from synthfr.app.cli import build_parser

    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    classes = _config_classes(sub)
    assert classes, f"synthfr {command}: its options are not generated from a config dataclass"
    common_help = {kw["help"] for kw in COMMON_OPTIONS.values()}
    fields = 0
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction) or action.dest == "debug":
            continue
        text = (action.help or "").replace("%%", "%")
        if text in common_help:
            continue
        if text.startswith("same as --"):  # a generated alias (--no-check) or dict-key option (--margin)
            target = action.dest.rpartition(".")[0] if "=VALUE" in text else action.dest
            assert _field_doc(classes, target) is not None, (command, action.option_strings)
            continue
        doc = _field_doc(classes, action.dest)
        assert doc, f"synthfr {command} {action.option_strings or action.dest}: no config field {action.dest!r}"
        assert text == doc, (command, action.option_strings, text, doc)
        fields += 1
    assert fields >= 1


def test_help_shows_the_field_docstring_and_default(capsys):
    from synthfr.app.cli import main

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    from synthfr.evaluation.config import EvalConfig

    doc = " ".join(field_docs(EvalConfig)["batch_size"].split())
    assert f"{doc} (default: 64)" in out


# -- one KEY=VALUE parser --------------------------------------------------------------------------------------
_SECOND_PARSER = re.compile(r"""(?:split|partition|rpartition|index|find)\(\s*['"]=['"]""")


def test_one_key_value_parser_in_the_package():
    hits = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "config.py":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _SECOND_PARSER.search(line):
                hits.append(f"{path.relative_to(SRC)}:{i}: {line.strip()}")
    assert not hits, "KEY=VALUE parsed outside synthfr.config.parse_assignment:\n" + "\n".join(hits)
    assert _SECOND_PARSER.search('k, v = item.split("=", 1)') and _SECOND_PARSER.search("s.partition('=')")


def test_the_parser_and_its_users_agree():
    from synthfr.app.pipeline import parse_overrides
    from synthfr.registry import parse_spec

    assert parse_assignment("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_assignment("x=") == ("x", None) and parse_assignment("p= a: b: c") == ("p", "a: b: c")
    assert parse_assignments(["n=3", "s=x", "n=4"]) == {"n": 4, "s": "x"}
    # numbers as Python reads them (YAML 1.1 would leave "5e-5" a string), versions and names untouched
    assert parse_assignment("lr=5e-5") == ("lr", 5e-5) and parse_assignment("n=1E3") == ("n", 1000.0)
    assert parse_assignment("lr=[1e-4, -2.5e+2]") == ("lr", [1e-4, -250.0])
    assert parse_assignment("v=1.2.3") == ("v", "1.2.3") and parse_assignment("x=e5") == ("x", "e5")
    assert parse_assignment("n=7") == ("n", 7) and type(parse_assignment("n=7")[1]) is int
    with pytest.raises(ValueError, match="not key=value"):
        parse_assignment("nokey")
    assert parse_spec("noise:beta=0.1,n=3") == ("noise", {"beta": 0.1, "n": 3})
    assert parse_overrides(["train.config.epochs=2"]) == {"train.config.epochs": 2}


# -- one unknown-key check ---------------------------------------------------------------------------------------
_SECOND_VALIDATOR = re.compile(r"valid keys|unknown .*(?:config key|setting)|fields\(.*\)\}?\s*-|- \{f\.name")


def test_one_unknown_key_check_in_the_package():
    hits = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "config.py":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _SECOND_VALIDATOR.search(line):
                hits.append(f"{path.relative_to(SRC)}:{i}: {line.strip()}")
    assert not hits, "unknown config keys checked outside synthfr.config.check_keys:\n" + "\n".join(hits)


def test_check_keys_names_the_section_and_the_valid_keys():
    from synthfr.genmodel.model import GenModelConfig
    from synthfr.genmodel.trainer import config_from_json

    @dataclasses.dataclass
    class C:
        a: int = 1
        b: int = 2

    check_keys(C, {"a": 3})
    with pytest.raises(KeyError, match=r"unknown config key\(s\) sec\.z for C; valid keys: a, b"):
        check_keys(C, {"z": 1}, "sec")
    with pytest.raises(KeyError, match="sec.b is set by the app; remove it"):
        check_keys(C, {"b": 1}, "sec", owned=("b",), owner="the app")
    with pytest.raises(KeyError, match="model.nope"):
        GenModelConfig.from_json({"nope": 1})
    with pytest.raises(KeyError, match="unknown config key.*bogus"):
        config_from_json({"bogus": 1})


# -- the generated options ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Inner:
    rate: float = 0.5
    """A rate."""


@dataclasses.dataclass
class _Job:
    name: str
    """The name."""
    items: list[str] = dataclasses.field(default_factory=list)
    """Some items."""
    kwargs: dict = dataclasses.field(default_factory=dict)
    """Keyword options."""
    inner: _Inner = dataclasses.field(default_factory=_Inner)
    """Inner settings."""
    on: bool = True
    """A switch that is on."""
    mode: typing.Literal["a", "b"] = "a"
    """The mode."""
    n: int | None = None
    """A count."""


def test_options_from_a_dataclass(tmp_path):
    p = argparse.ArgumentParser()
    p.add_argument("--config")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[])
    add_config_arguments(p, _Job, positional=("name",), nested={"inner": "in"}, aliases={"--b": ("mode", "b")},
                         keys={"--k": "kwargs.k"})
    (tmp_path / "c.yaml").write_text("kwargs: {x: 1}\nn: 2\n")
    args = p.parse_args(["job", "--items", "u", "v", "--kwargs", "y=[1, 2]", "--k", "0.5", "--in-rate", "0.25",
                         "--no-on", "--b", "--config", str(tmp_path / "c.yaml"), "--set", "n=5"])
    cfg = config_from_args(_Job, args)
    assert cfg == _Job(name="job", items=["u", "v"], kwargs={"x": 1, "y": [1, 2], "k": 0.5}, inner=_Inner(0.25),
                       on=False, mode="b", n=5)
    assert config_from_args(_Job, p.parse_args(["j"])) == _Job(name="j")
    with pytest.raises(SystemExit):
        p.parse_args(["j", "--mode", "c"])  # choices from the Literal


# -- every public job takes one dataclass ------------------------------------------------------------------------
@pytest.mark.parametrize("job, config", [("sample_identities", "SampleConfig"), ("generate_dataset", "GenerateConfig"),
                                         ("measure_quality", "QualityConfig"), ("train", "TrainConfig"),
                                         ("evaluate", "EvalConfig"), ("run_pipeline", "PipelineConfig")])
def test_every_public_job_takes_its_config(job, config):
    import inspect

    first = next(iter(inspect.signature(getattr(synthfr, job)).parameters.values()))
    assert config in str(first.annotation), f"synthfr.{job}'s first argument is not a {config}"
    assert dataclasses.is_dataclass(getattr(synthfr, config))


def test_sample_identities_takes_a_sample_config(tmp_path):
    import numpy as np

    cfg = synthfr.SampleConfig("uniform", 20, dim=8, seed=1, out=str(tmp_path / "ids.npy"))
    x, stats = synthfr.sample_identities(cfg)
    y, _ = synthfr.sample_identities("uniform", 20, dim=8, seed=1)
    assert np.array_equal(x, y) and np.array_equal(np.load(tmp_path / "ids.npy"), x) and stats["n"] == 20
    with pytest.raises(TypeError):
        synthfr.sample_identities(cfg, 5)
