"""The schema users read and the code that loads a job agree on every default and every bound.

Every `default` in schemas/job.schema.json is the dataclass default (scanjobs.jobfile.model) and
what a job that leaves the key out gets. Every bound (minimum, maximum, exclusiveMinimum,
minLength, minItems, ...) is checked by loading a job at the bound and just past it: accepted at
the bound, refused past it with a JobError (exit code 2 from `scanjobs validate`), never later.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanjobs.cli import main
from scanjobs.errors import JobError
from scanjobs.jobfile import load_job, parse_duration
from scanjobs.jobfile.model import (
    AnalysisOptions,
    Backoff,
    BaseJob,
    BatchOptions,
    CopyOptions,
    DbSpec,
    DownloadOptions,
    Gate,
    InstanceLimits,
    InstanceSpec,
    RetryOptions,
    ScanQuery,
    Timeout,
    Workers,
)
from scanjobs.modes.download.naming import MIN_LENGTH, file_name, safe_component

ROOT = Path(__file__).resolve().parents[3]
SCHEMA: dict[str, Any] = json.loads((ROOT / "schemas" / "job.schema.json").read_text(encoding="utf-8"))
OPTION_CLASSES = (
    ScanQuery,
    CopyOptions,
    BatchOptions,
    Workers,
    RetryOptions,
    Backoff,
    Timeout,
    AnalysisOptions,
    DownloadOptions,
    DbSpec,
    InstanceLimits,
)
# Schema key -> dataclass field, where they differ.
FIELD_OF_KEY = {"from": "date_from", "to": "date_to"}
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
LENGTHS = ("minLength", "maxLength", "minItems", "maxItems")
# Values that must go with a value at a bound, to keep another rule of the job satisfied.
COMPANIONS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("retry", "backoff", "max"): ("retry", "backoff", "initial"),  # initial <= max
    ("retry", "backoff", "initial"): ("retry", "backoff", "max"),
}
# Bounds no job can sit at, each with the stricter rule that makes it so.
UNREACHABLE = {
    ("instances", "*", "password"): "a secret is a ${VAR} reference, never 1 character long",
    ("instances", "*", "db", "password"): "a secret is a ${VAR} reference, never 1 character long",
    ("instances", "*", "token"): "a secret is a ${VAR} reference, never 1 character long",
    ("notify", "[]"): "a notify target is a URL (scheme://...), never 1 character long",
    # this test writes numbers as list items; test_notify_message.py checks that an empty list is refused
    ("notify",): "its items are URLs, not numbers",
}

Path_ = tuple[str, ...]


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/$defs/"), ref
        node = {**SCHEMA["$defs"][ref.split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _walk(node: dict[str, Any], path: Path_ = ()) -> Iterator[tuple[Path_, dict[str, Any]]]:
    """Every schema node of the job file with its path of keys (`*` any instance, `[]` an item);
    a oneOf's branches each at the path of the oneOf."""
    node = _resolve(node)
    yield path, node
    for key, sub in node.get("properties", {}).items():
        yield from _walk(sub, (*path, key))
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], (*path, "*"))
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], (*path, "[]"))
    for branch in node.get("oneOf", []) + node.get("anyOf", []):
        yield from _walk(branch, path)


NODES = list(_walk(SCHEMA))


def _mode_for(path: Path_) -> str:
    if path[:1] == ("compare",):
        return "compare"
    if path[:1] == ("download",):
        return "download"
    if path[:2] in (("scans", "pairs"), ("scans", "from_job")):
        return "analyze"
    return "copy"


def _job_data(
    path: Path_, value: Any = None, *, set_value: bool = False, companion: bool = True
) -> dict[str, Any]:
    """The smallest valid job of the mode `path` belongs to, with `value` at `path` if set."""
    mode = _mode_for(path)
    if mode == "compare":  # no platform: neither source nor scans
        data = {"version": 1, "mode": "compare", "compare": {"baseline": "b", "candidate": "c"}}
        return _set(data, path, value) if set_value else data
    data: dict[str, Any] = {
        "version": 1,
        "mode": mode,
        "source": "a",
        "scans": {"ids": [1]},
        "instances": {"a": {}, "b": {}},
    }
    if mode == "copy":
        data["target"] = {"instance": "b", "store": 8}
    if mode == "analyze":
        data["target"] = {"instance": "b"}
    if path[:3] == ("instances", "*", "limits"):  # limits give a rate or a concurrency
        data["instances"]["a"]["limits"] = {"requests_per_second": 1}
    if path[:1] == ("scans",) and len(path) > 1:
        data["scans"] = {"query": {"store": 1}} if path[1] == "query" else {path[1]: "x"}
    if not set_value:
        return data
    if companion and path in COMPANIONS:
        data = _job_data(COMPANIONS[path], value, set_value=True, companion=False)
    return _set(data, path, value)


def _set(data: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    """`data` with `value` at `path`."""
    node: Any = data
    keys = ["a" if k == "*" else k for k in path]
    for key, after in zip(keys, [*keys[1:], None], strict=True):
        if after == "[]":
            node[key] = [value]
            return data
        if after is None:
            node[key] = value
            return data
        node = node.setdefault(key, {})
    return data


def _load(tmp_path: Path, data: dict[str, Any]) -> Any:
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return load_job(path, environ={})


def _owner(job: Any, path: Path_) -> Any:
    """The object of the loaded job that holds the value at `path` (a dataclass or a tuple)."""
    obj = job
    for key in path:
        if key == "*":
            obj = job.source
        elif key == "instances":
            continue
        elif key in ("ids", "file", "pairs", "from_job") and obj is job.scans:
            obj = job.scans.ids if key == "ids" else job.scans.file
        elif key == "[]":
            obj = obj[0]
        elif key == "store" and isinstance(obj, ScanQuery):  # one store or a list of them: a tuple
            obj = obj.stores
        elif isinstance(obj, Gate):  # a limit's subject: the count it allows
            obj = obj.limit(key).count
        else:
            obj = getattr(obj, FIELD_OF_KEY.get(key, key))
    return obj


def _dotted(path: Path_) -> str:
    return ".".join("a" if k == "*" else "0" if k == "[]" else k for k in path)


# --- defaults -------------------------------------------------------------------------------


DEFAULTS = [(path, node) for path, node in NODES if "default" in node]


def test_the_schema_has_defaults_to_check() -> None:
    assert len(DEFAULTS) >= 20


@pytest.mark.parametrize(("path", "node"), DEFAULTS, ids=[_dotted(p) for p, _ in DEFAULTS])
def test_schema_default_is_the_dataclass_default(tmp_path: Path, path: Path_, node: dict[str, Any]) -> None:
    job = _load(tmp_path, _job_data(path))
    owner = _owner(job, path[:-1])
    assert dataclasses.is_dataclass(owner) and isinstance(owner, OPTION_CLASSES), (path, owner)
    field = {f.name: f for f in dataclasses.fields(owner)}[FIELD_OF_KEY.get(path[-1], path[-1])]
    expected = parse_duration(node["default"]) if "oneOf" in node else node["default"]  # a duration
    assert field.default == expected, (path, field.default, node["default"])
    assert isinstance(field.default, bool) == isinstance(expected, bool), (path, field.default)
    # what a job that leaves the key out gets: the dataclass default, not another one
    assert getattr(owner, field.name) == field.default
    # and the description says the same default
    described = node.get("description", "").split("Default: ", 1)
    if len(described) == 2:
        assert described[1].startswith(json.dumps(node["default"]).strip('"')), (path, described[1])


def test_every_dataclass_default_is_in_the_schema(tmp_path: Path) -> None:
    """The other way round: each option with a default (not None: no value) says it in the schema."""
    missing = []
    for path, node in NODES:
        if "properties" not in node or path[-1:] == ("target",):
            continue
        owner = _owner(_load(tmp_path, _job_data(path)), path) if path else None
        if not isinstance(owner, OPTION_CLASSES):
            continue
        keys = {FIELD_OF_KEY.get(k, k): k for k in node["properties"]}
        for field in dataclasses.fields(owner):
            if field.default is dataclasses.MISSING or field.default is None:
                continue
            if dataclasses.is_dataclass(field.default):  # a section of its own, walked itself
                continue
            prop = _resolve(node["properties"].get(keys.get(field.name, ""), {}))
            if "default" not in prop:
                missing.append(f"{_dotted(path)}.{keys.get(field.name, field.name)}")
    assert not missing


def test_defaults_that_depend_on_a_name_are_described(tmp_path: Path) -> None:
    instance = SCHEMA["$defs"]["instance"]["properties"]
    assert InstanceSpec.default_api_url("{name}") in instance["api_url"]["description"]
    assert DbSpec.default_host("{name}") in instance["db"]["properties"]["host"]["description"]
    what = "<the job file's name without extension>"
    assert BaseJob.default_output(Path(what + ".yaml")) in SCHEMA["properties"]["output"]["description"]
    job = _load(tmp_path, _job_data(()))
    assert job.source.api_url == InstanceSpec.default_api_url("a")
    assert job.source.db.host == DbSpec.default_host("a") and job.source.db.dbname == "a"
    assert job.name == "job" and job.output == (tmp_path / BaseJob.default_output(job.path)).resolve()


# --- bounds ---------------------------------------------------------------------------------


def _bound_cases() -> list[tuple[Path_, str, Any, Any]]:
    """(path, keyword, a value the code must accept, the value just past the bound)."""
    cases = []
    for path, node in NODES:
        kind = node.get("type")
        kinds = kind if isinstance(kind, list) else [kind]  # scans.query.store: a number or a list
        step: float = 1 if "integer" in kinds else 0.001
        for keyword in BOUNDS:
            if keyword not in node:
                continue
            bound = node[keyword]
            inside, outside = {
                "minimum": (bound, bound - step),
                "maximum": (bound, bound + step),
                "exclusiveMinimum": (bound + step, bound),
                "exclusiveMaximum": (bound - step, bound),
            }[keyword]
            cases.append((path, keyword, inside, outside))
        for keyword in LENGTHS:
            if keyword not in node or path in UNREACHABLE:
                continue
            bound = node[keyword]
            past = bound - 1 if keyword.startswith("min") else bound + 1
            if "array" in kinds:
                cases.append((path, keyword, [1] * bound, [1] * past))
            else:
                cases.append((path, keyword, "x" * bound, "x" * past))
    return cases


CASES = _bound_cases()


def test_the_schema_has_bounds_to_check() -> None:
    keywords = {keyword for _, keyword, _, _ in CASES}
    assert {"minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "minItems"} <= keywords
    walked = {path for path, _ in NODES}
    assert set(UNREACHABLE) <= walked  # the exceptions still name real places


@pytest.mark.parametrize(
    ("path", "keyword", "inside", "outside"), CASES, ids=[f"{_dotted(p)}-{k}" for p, k, _, _ in CASES]
)
def test_bound_is_what_the_code_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: Path_, keyword: str, inside: Any, outside: Any
) -> None:
    job = _load(tmp_path, _job_data(path, inside, set_value=True))
    value = _owner(job, path)
    if hasattr(value, "reveal"):  # a username given as text
        value = value.reveal()
    if isinstance(value, tuple) and not isinstance(inside, list):  # scans.query.store: one store
        (value,) = value
    if isinstance(inside, str) and isinstance(value, Path):
        assert value.name == inside
    elif isinstance(inside, list):
        assert list(value) == inside
    else:
        assert value == inside, (path, value, inside)

    data = _job_data(path, outside, set_value=True)
    with pytest.raises(JobError, match=re.escape(_dotted(path))):
        _load(tmp_path, data)
    assert main(["validate", str(tmp_path / "job.yaml")]) == 2
    assert _dotted(path) in capsys.readouterr().err


def test_duration_text_and_number_agree_on_zero(tmp_path: Path) -> None:
    """0 and 0s are the same duration: both accepted (no wait / no retry after a failure)."""
    for value in (0, "0s", "0m"):
        for path in (("retry", "deadline"), ("analysis", "wait_for_processing")):
            job = _load(tmp_path, _job_data(path, value, set_value=True))
            assert _owner(job, path) == 0.0


def test_section_max_length_bounds_are_the_naming_code_s(tmp_path: Path) -> None:
    """A download job valid by the schema names its files; one the naming code refuses is invalid."""
    node = _resolve(SCHEMA["properties"]["download"]["properties"]["section_max_length"])
    lowest, highest = node["minimum"], node["maximum"]
    assert lowest == MIN_LENGTH
    safe_component("a/" + "x" * 300, max_length=lowest)
    with pytest.raises(ValueError):
        safe_component("a/" + "x" * 300, max_length=lowest - 1)
    for value in (lowest, highest):
        path = ("download", "section_max_length")
        job = _load(tmp_path, _job_data(path, value, set_value=True))
        name = file_name(
            1234567890,
            "Section/" + "é" * 300,
            987654,
            index=12,
            extension=".jpeg",
            section_max_length=job.download.section_max_length,
        )
        assert len(name.encode("utf-8")) <= 255
    with pytest.raises(JobError, match="download.section_max_length"):
        _load(tmp_path, _job_data(("download", "section_max_length"), lowest - 1, set_value=True))
