"""Job file -> validated `Job`: safe YAML, JSON Schema, ${VAR} expansion, semantic checks.

The loader passes a dataclass only what the file says: a key the file leaves out is left out,
so every default is the dataclass's (scanjobs.jobfile.model), never repeated here.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from scanjobs.errors import JobError
from scanjobs.jobfile.dates import DateSpec, local_today
from scanjobs.jobfile.env import REFERENCE, SECRET_REFERENCE, UnsetVariable, env_var_for, expand, read_dotenv
from scanjobs.jobfile.model import (
    AnalysisOptions,
    AnalyzeJob,
    AnalyzeTarget,
    Backoff,
    BaseJob,
    BatchOptions,
    CompareJob,
    CompareOptions,
    CopyJob,
    CopyOptions,
    CopyTarget,
    DbSpec,
    DownloadJob,
    DownloadOptions,
    Gate,
    GateLimit,
    InstanceLimits,
    InstanceSpec,
    Job,
    NotifyTarget,
    RetryOptions,
    ScanQuery,
    ScanSelection,
    Secret,
    Timeout,
    Workers,
)
from scanjobs.jobfile.scanlist import read_id_column, read_pairs_csv
from scanjobs.jobfile.textfile import read_utf8
from scanjobs.jobfile.yamlio import LineMap, load_yaml

__all__ = ["load_job", "load_schema", "schema_path", "parse_duration", "INSTANCES_FILE"]

INSTANCES_FILE = "instances.yaml"
# Where an instance holds a secret, and the name its default variable ends with (env_var_for).
_SECRET_FIELDS = ((("password",), "PASSWORD"), (("db", "password"), "DB_PASSWORD"), (("token",), "TOKEN"))
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# An apprise URL's scheme; the plain webhooks that may be written out (no user, no parameters).
_NOTIFY_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PLAIN_WEBHOOK = re.compile(r"^(json|form|xml)s?://[^/?#@\s]+(/[^?#@\s]*)?$", re.IGNORECASE)
# The password of a URL's user:password@, which a message quoting the URL must not show.
_URL_PASSWORD = re.compile(r"(://[^/?#@\s:]*:)[^/?#@\s]*@")
# What mode compare reads instead of a platform: these keys of other modes mean nothing there.
_NOT_FOR_COMPARE = ("source", "target", "scans", "copy", "download", "analysis", "batch", "retry")


def schema_path() -> Path:
    """The job schema: packaged inside the wheel, or at the repo root in a source checkout."""
    packaged = resources.files("scanjobs.jobfile").joinpath("job.schema.json")
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "schemas" / "job.schema.json"


@cache
def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return schema


def parse_duration(value: float | int | str) -> float:
    """'1h30m' / '90s' / '250ms' / 45 -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    parts = _DURATION_PART.findall(text)
    if not parts or _DURATION_PART.sub("", text).strip():
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 30m, 1h30m)")
    return sum(float(n) * _UNITS[unit] for n, unit in parts)


def _url_problem(url: str) -> str | None:
    """Why the HTTP client could not use `url` (it would raise at login: an internal error), or None."""
    if not re.fullmatch(r"https?://[!-~]+", url):
        return "is not an http(s) URL in ASCII without spaces (write a host in its xn-- form)"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError as exc:
        return f"is not a usable URL ({exc})"
    if not parts.hostname:
        return "names no host"
    if "@" in parts.netloc:  # the URL is shown in messages; credentials have their own keys
        return "holds credentials: give them as username and password (${VAR} references)"
    return None


def _given(section: Mapping[str, Any], **convert: Callable[[Any], Any]) -> dict[str, Any]:
    """The keys a section of the file gives, as keyword arguments of its dataclass (the schema
    admits only the field names), each through its `convert` if it has one. A key the file
    leaves out stays out, so the dataclass default applies."""
    return {key: convert[key](value) if key in convert else value for key, value in section.items()}


_SHOWN = 60  # characters of a value's repr shown in a message


def _shown(value: Any) -> str:
    """A value as a message shows it: its repr, cut short when long (a hostile or mistaken job
    may hold a text of thousands of characters where a number belongs)."""
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 3]}... ({len(text)} characters)"


def _where(path: tuple[str | int, ...], lines: LineMap, file: Path) -> str:
    dotted = ".".join(str(p) if len(str(p)) <= _SHOWN else _shown(p) for p in path) or "(top level)"
    probe = path
    while probe not in lines and probe:
        probe = probe[:-1]
    line = lines.get(probe)
    return f"{dotted} ({file.name}, line {line})" if line else dotted


def _kind(value: Any) -> str:
    """What a value is, in the words of the schema, without what it holds."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return "text" if isinstance(value, str) else type(value).__name__


def _credential_message(error: jsonschema.ValidationError) -> str:
    """The problem with a credential (a `writeOnly` node of the schema), never its value: a
    literal password written as a number would otherwise be echoed in the message."""
    hidden = "(a credential's value is never shown)"
    if error.validator == "type":
        return f"expected {error.validator_value}, got {_kind(error.instance)} {hidden}"
    if error.validator == "minLength":
        return "must not be empty"
    return f"breaks the rule {error.validator!r} {hidden}"


def _schema_message(error: jsonschema.ValidationError) -> str:
    """The problem in the user's words, every value shown short (`_shown`)."""
    message = _schema_text(error)
    long = repr(error.instance)
    return message.replace(long, _shown(error.instance)) if len(long) > _SHOWN else message


def _schema_text(error: jsonschema.ValidationError) -> str:
    if isinstance(error.schema, dict) and error.schema.get("writeOnly"):
        return _credential_message(error)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extras = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
        bits = []
        for key in extras:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
            bits.append(f"unknown key {_shown(key)}{hint}")
        return "; ".join(bits) or error.message
    if error.validator == "oneOf" and "duration" in json.dumps(error.schema.get("description", "")):
        return f"{error.instance!r} is not a duration (use e.g. 90s, 30m, 1h30m, or seconds)"
    if error.validator == "pattern" and error.schema.get("title") == "query date":
        return f"{error.instance!r} is not a date ({error.schema['description']})"
    if error.validator == "oneOf" and "gate's limit" in json.dumps(error.schema.get("description", "")):
        return f"{error.instance!r} is not a gate limit (a count of scans like 3, or a share like 5%)"
    if error.validator in ("minProperties", "maxProperties") and isinstance(error.instance, dict):
        options = ", ".join(error.schema.get("properties", {}))
        return f"give exactly one of: {options}"
    if error.validator == "minItems" and error.instance == []:
        return "must not be empty"
    if error.validator == "type" and isinstance(error.validator_value, str):
        if isinstance(error.instance, float) and not math.isfinite(error.instance):
            return f"expected a finite {error.validator_value}, got {error.instance!r}"
        return f"expected {error.validator_value}, got {type(error.instance).__name__} {error.instance!r}"
    return str(error.message)


def _is_integer(_checker: Any, value: Any) -> bool:
    # JSON Schema admits 5.0 as an integer; a count or an id written so reached a deque's maxlen
    # or a slice as a float and failed at run time.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(_checker: Any, value: Any) -> bool:
    # NaN passes every minimum and maximum (it compares false), and YAML writes it as .nan.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": _is_integer, "number": _is_number}
    ),
)


def _schema_problems(
    data: Any, schema: Mapping[str, Any], lines: LineMap, file: Path, prefix: tuple[str | int, ...] = ()
) -> list[str]:
    validator = _Validator(schema, format_checker=jsonschema.FormatChecker())
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = (*prefix, *error.absolute_path)
        message = _URL_PASSWORD.sub(r"\1***@", _schema_message(error))
        problems.append(f"{_where(path, lines, file)}: {message}")
    return problems


def _read_document(path: Path) -> tuple[Any, LineMap]:
    if not path.exists():
        raise JobError(f"{path.name} not found: {path}")
    text = read_utf8(path, path.name)
    try:
        data, lines, problems = load_yaml(text, path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "python/" in str(exc):
            problem = f"{problem} (Python tags are not allowed in job files; nothing was executed)"
        raise JobError(f"{path.name}: invalid YAML at {where}: {problem}") from None
    if problems:
        raise JobError(f"{path.name} is not a valid job file:", problems)
    return data, lines


class _Builder:
    """Turns the schema-valid document into the dataclasses, collecting every problem."""

    def __init__(
        self,
        path: Path,
        data: dict[str, Any],
        lines: LineMap,
        env: Mapping[str, str],
        shared_instances: dict[str, Any],
    ) -> None:
        self.path, self.data, self.lines, self.env = path, data, lines, env
        self.shared_instances = shared_instances
        self.problems: list[str] = []
        self.notes: list[str] = []

    def where(self, *path: str | int) -> str:
        return _where(path, self.lines, self.path)

    def text(self, value: str, *path: str | int) -> str:
        try:
            return str(expand(value, self.env))
        except UnsetVariable as exc:
            why = exc.message or "and has no default"
            self.problems.append(f"{self.where(*path)}: ${{{exc.var}}} is not set {why}".rstrip())
            return value

    def secret(self, raw: str | None, default_var: str, what: str, *path: str | int) -> Secret:
        if raw is None:  # not in the file: the default variable, checked when connecting
            return Secret(what, default_var, self.env.get(default_var))
        match = SECRET_REFERENCE.match(raw.strip())
        if not match:  # reported by check_secret_literals, once, with the remedy
            return Secret(what, default_var)
        var, op, arg = match.groups()
        if op == ":-" and arg:
            self.problems.append(
                f"{self.where(*path)}: a default value in a secret reference is a literal secret; "
                f"use ${{{var}}}"
            )
        value = self.env.get(var)
        if value is None:
            why = arg if op == ":?" and arg else "and has no default"
            self.problems.append(f"{self.where(*path)}: ${{{var}}} is not set {why}")
        return Secret(what, var, value)

    def instance(self, name: str, used_at: tuple[str | int, ...]) -> InstanceSpec | None:
        defined = {**self.shared_instances, **(self.data.get("instances") or {})}
        if name not in defined:
            known = sorted(defined)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            listing = ", ".join(known) if known else "none"
            self.problems.append(
                f"{self.where(*used_at)}: unknown instance {name!r} ({hint}defined: {listing}; "
                f"define it under `instances:` or in {INSTANCES_FILE} beside the job)"
            )
            return None
        spec = defined[name] or {}
        base: tuple[str | int, ...] = ("instances", name)
        db = spec.get("db") or {}
        api_url_written = spec.get("api_url", InstanceSpec.default_api_url(name))
        api_url = self.text(api_url_written, *base, "api_url")
        why = _url_problem(api_url)
        if why:
            # As written (what a ${VAR} in it gave may be a secret), and not at all when it may
            # hold a password (user:password@host).
            shown = "the URL" if "@" in api_url_written else repr(api_url_written)
            self.problems.append(f"{self.where(*base, 'api_url')}: {shown} {why}")
        username, password, token = self.api_credentials(name, spec, base)
        return InstanceSpec(
            name=name,
            api_url=api_url.rstrip("/"),
            db=DbSpec(
                host=self.text(db.get("host", DbSpec.default_host(name)), *base, "db", "host"),
                dbname=self.text(db.get("dbname", DbSpec.default_dbname(name)), *base, "db", "dbname"),
                **_given(
                    {k: db[k] for k in ("port", "user") if k in db},
                    port=int,
                    user=lambda user: self.text(user, *base, "db", "user"),
                ),
                password=self.secret(
                    db.get("password"),
                    env_var_for(name, "DB_PASSWORD"),
                    f"instance {name} database password",
                    *base,
                    "db",
                    "password",
                ),
            ),
            username=username,
            password=password,
            token=token,
            limits=_limits(spec.get("limits")),
        )

    def api_credentials(
        self, name: str, spec: Mapping[str, Any], base: tuple[str | int, ...]
    ) -> tuple[Secret | None, Secret | None, Secret | None]:
        """(username, password, token) of an instance: a token, or a username and password.

        The file says which by the keys it gives. An instance that gives none of them takes a
        token when NAME_TOKEN is set, else NAME_USERNAME and NAME_PASSWORD; with both NAME_TOKEN
        and NAME_PASSWORD set it must say which.
        """
        token_var, password_var = env_var_for(name, "TOKEN"), env_var_for(name, "PASSWORD")
        login_written = "username" in spec or "password" in spec
        by_default = not login_written and "token" not in spec  # the file says neither
        if "token" in spec and login_written:
            self.problems.append(
                f"{self.where(*base, 'token')}: give `token` or `username` and `password`, not both"
            )
        elif by_default and self.env.get(token_var) and self.env.get(password_var):
            self.problems.append(
                f"{self.where(*base)}: both {token_var} and {password_var} are set: write "
                f"`token: ${{{token_var}}}` or `password: ${{{password_var}}}` in instance {name} to "
                "say which to use"
            )
        if "token" in spec or (by_default and self.env.get(token_var)):
            token = self.secret(spec.get("token"), token_var, f"instance {name} API token", *base, "token")
            return None, None, token
        username_raw = spec.get("username")
        username = (
            Secret(f"instance {name} API username", "", self.text(username_raw, *base, "username"))
            if username_raw is not None
            else Secret(
                f"instance {name} API username",
                env_var_for(name, "USERNAME"),
                self.env.get(env_var_for(name, "USERNAME")),
            )
        )
        password = self.secret(
            spec.get("password"), password_var, f"instance {name} API password", *base, "password"
        )
        return username, password, None

    def check_secret_literals(self) -> None:
        """Literal secrets are refused even in instances the job does not use."""
        sources = [(("instances",), self.data.get("instances") or {}), ((), self.shared_instances)]
        for prefix, instances in sources:
            for name, spec in instances.items():
                for fields, suffix in _SECRET_FIELDS:
                    node: Any = spec or {}
                    for key in fields:
                        node = node.get(key) if isinstance(node, dict) else None
                    if isinstance(node, str) and not SECRET_REFERENCE.match(node.strip()):
                        where = (
                            self.where(*prefix, name, *fields)
                            if prefix
                            else (f"{INSTANCES_FILE}: {name}.{'.'.join(fields)}")
                        )
                        var = env_var_for(name, suffix)
                        self.problems.append(
                            f"{where}: a literal secret is not allowed in a job file; write a "
                            f"reference like ${{{var}}} and set {var} in the environment or in "
                            ".env beside the job"
                        )

    def selection(self) -> ScanSelection:
        scans = self.data["scans"]
        kind = next(iter(scans))
        if kind == "ids":
            return ScanSelection("ids", ids=tuple(dict.fromkeys(int(i) for i in scans["ids"])))
        if kind == "query":
            q = scans["query"]
            stores = q["store"] if isinstance(q["store"], list) else [q["store"]]
            given: dict[str, Any] = {k: q[k] for k in ("status", "limit") if k in q}
            for key, field_name in (("from", "date_from"), ("to", "date_to")):
                if key in q:
                    try:
                        given[field_name] = DateSpec.parse(q[key])
                    except ValueError as exc:
                        self.problems.append(f"{self.where('scans', 'query', key)}: {exc}")
            query = ScanQuery(tuple(int(s) for s in stores), **given)
            first, last = query.date_from, query.date_to
            # Both absolute or both relative: in order whatever the day (a mixed pair may be in
            # order today and not next month; a run that finds it reversed selects nothing and says so).
            if first and last and first.relative == last.relative:
                today = local_today(self.env)
                if first.resolve(today) > last.resolve(today):
                    self.problems.append(
                        f"{self.where('scans', 'query', 'to')}: `to` ({last}) is before `from` ({first})"
                    )
            return ScanSelection("query", query=query)
        file = self.file_path(scans[kind], "scans", kind)
        if file is not None and kind in ("file", "pairs"):
            self.check_scan_list(kind, file)
        return ScanSelection(kind, file=file)

    def file_path(self, value: str, *path: str | int) -> Path | None:
        """A path the file gives, relative to the file's folder, resolved; None (and a problem
        recorded) when it names no file: Path raises ValueError for a NUL, RuntimeError for a
        symlink loop."""
        text = self.text(value, *path)
        if "\x00" in text:
            self.problems.append(f"{self.where(*path)}: a path cannot hold a NUL character")
            return None
        try:
            return (self.path.parent / text).resolve()
        except (OSError, RuntimeError) as exc:
            self.problems.append(f"{self.where(*path)}: not a usable path ({exc})")
            return None

    def check_folder(self, folder: Path, *path: str | int) -> None:
        """A folder a run creates (or uses) where no file stands in the way: its mkdir would fail."""
        probe = folder
        try:
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            if not probe.is_dir():
                self.problems.append(f"{self.where(*path)}: {probe} is a file, not a folder")
        except OSError as exc:
            self.problems.append(f"{self.where(*path)}: not a usable folder ({exc})")

    def check_scan_list(self, kind: str, file: Path) -> None:
        """What a run would refuse in a scan list is refused now. A list that is not there yet
        is left to the run: it may be written after `validate`, and `status` still works on
        a job whose list was removed after its run."""
        try:
            if not file.exists():
                return
        except OSError:
            pass  # the reader says why it cannot be read
        try:
            read_id_column(file) if kind == "file" else read_pairs_csv(file)
        except JobError as exc:
            first = exc.message.split("\n", 1)[0]
            self.problems.append(f"{self.where('scans', kind)}: {'; '.join([first, *exc.problems])}")

    def duration(self, value: Any, *path: str | int) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.problems.append(f"{self.where(*path)}: {exc}")
            return 1.0
        # The schema bounds a number; a text (99999999999d) is bounded here, by the same figure.
        longest = float(load_schema()["$defs"]["positiveNumber"]["maximum"])
        if seconds > longest:
            self.problems.append(
                f"{self.where(*path)}: {value!r} is longer than {longest / 86400:g} days "
                f"({longest:.0f} seconds), the longest time a job may give"
            )
        return seconds

    def batch(self) -> BatchOptions:
        def workers(w: Mapping[str, Any]) -> Workers:
            return Workers(**_given(w))

        return BatchOptions(**_given(self.data.get("batch", {}), workers=workers, max_failed_ratio=float))

    def retry(self) -> RetryOptions:
        def backoff(bo: Mapping[str, Any]) -> Backoff:
            return Backoff(**_given(bo, initial=float, max=float, multiplier=float, jitter=bool))

        def timeout(to: Mapping[str, Any]) -> Timeout:
            return Timeout(**_given(to, connect=float, read=float, total=float))

        def deadline(value: Any) -> float:
            return self.duration(value, "retry", "deadline")

        return RetryOptions(
            **_given(self.data.get("retry", {}), backoff=backoff, timeout=timeout, deadline=deadline)
        )

    def analysis(self) -> AnalysisOptions:
        def wait(value: Any) -> float:
            return self.duration(value, "analysis", "wait_for_processing")

        def gate(limits: Mapping[str, Any]) -> Gate:
            return self.gate(limits, "analysis", "gate")

        return AnalysisOptions(**_given(self.data.get("analysis", {}), wait_for_processing=wait, gate=gate))

    def gate(self, limits: Mapping[str, Any], *path: str) -> Gate:
        """A gate's limits (the schema admits a count, or a share as text like `5%`)."""
        parsed = []
        for subject, value in limits.items():
            if isinstance(value, int):
                parsed.append(GateLimit(subject, count=value))
                continue
            percent = float(str(value).strip().rstrip("%"))
            if percent > 100:
                self.problems.append(f"{self.where(*path, subject)}: {value!r} is more than 100%")
            parsed.append(GateLimit(subject, share=percent / 100))
        return Gate(tuple(parsed))

    def build_compare(self) -> CompareJob | None:
        """mode compare: the two sides and the gate; no instance is read."""
        d = self.data
        for key in _NOT_FOR_COMPARE:
            if key in d:
                self.problems.append(
                    f"{self.where(key)}: mode compare reads two analyses, not the platform; remove {key}"
                )
        section = d["compare"]
        baseline = self.file_path(section["baseline"], "compare", "baseline")
        candidate = self.file_path(section["candidate"], "compare", "candidate")
        gate = self.gate(section.get("gate", {}), "compare", "gate")
        if baseline is not None and baseline == candidate:
            self.problems.append(f"{self.where('compare', 'candidate')}: the candidate is the baseline")
        name = self.text(d.get("name", BaseJob.default_name(self.path)), "name")
        output = self.file_path(d.get("output", BaseJob.default_output(self.path)), "output")
        if output is not None:
            self.check_folder(output, "output")
        if self.problems or baseline is None or candidate is None or output is None:
            return None
        return CompareJob(
            path=self.path, name=name, output=output, compare=CompareOptions(baseline, candidate, gate)
        )

    def notify(self) -> tuple[NotifyTarget, ...]:
        """The `notify` URLs, each a secret. A URL written out in full may only be a plain
        webhook to a host (json://, form://, xml://) without credentials or parameters: any
        other carries its tokens in the URL, which a job file must not hold."""
        targets = []
        for i, raw in enumerate(self.data.get("notify", [])):
            place = f"notify[{i}]"
            url = self.text(raw, "notify", i)
            scheme = _NOTIFY_SCHEME.match(url)
            if scheme is None:
                self.problems.append(
                    f"{self.where('notify', i)}: not an apprise URL (scheme://...; the value is not shown)"
                )
                continue
            variables = [m.group(1) for m in REFERENCE.finditer(raw) if m.group(1)]
            if not variables and not _PLAIN_WEBHOOK.match(url):
                self.problems.append(
                    f"{self.where('notify', i)}: a {scheme.group(1)}:// URL written out holds its tokens: "
                    "write them (or the whole URL) as ${VAR} references, set in the environment or .env"
                )
            secret = Secret(f"notification target {place}", variables[0] if variables else "", url)
            targets.append(NotifyTarget(place, scheme.group(1).lower(), secret))
        return tuple(targets)

    def build(self) -> Job | None:
        """The job of the file's mode, or None when a problem was recorded."""
        d = self.data
        self.check_secret_literals()
        mode = d["mode"]
        if mode == "compare":
            return self.build_compare()
        if "compare" in d:
            self.problems.append(f"{self.where('compare')}: compare is for mode compare; remove it")
        source = self.instance(d["source"], ("source",))
        target: InstanceSpec | None = None
        store: int | None = None
        if "target" in d:
            target = self.instance(d["target"]["instance"], ("target", "instance"))
            store = d["target"].get("store")
            source_name, target_name = d["source"], d["target"]["instance"]
            shared = env_var_for(source_name, "PASSWORD")
            if source_name != target_name and shared == env_var_for(target_name, "PASSWORD"):
                # a-b and a_b: one variable would silently give both instances one password
                self.problems.append(
                    f"{self.where('target', 'instance')}: instances {source_name!r} and {target_name!r} "
                    f"would share their secrets' variables ({shared}, ...): rename one of them"
                )
        selection = self.selection()

        if mode == "copy":
            if "target" not in d:
                self.problems.append("target: mode copy needs a target: {instance: NAME, store: ID}")
            elif store is None:
                self.problems.append(f"{self.where('target')}: mode copy needs target.store")
        if mode == "analyze" and "target" not in d:
            self.problems.append("target: mode analyze needs a target: {instance: NAME}")
        if mode in ("copy", "download") and selection.kind in ("pairs", "from_job"):
            self.problems.append(
                f"{self.where('scans', selection.kind)}: scans.{selection.kind} is for mode analyze; "
                f"mode {mode} takes ids, query or file"
            )
        if mode == "analyze" and selection.kind not in ("pairs", "from_job"):
            self.problems.append(
                f"{self.where('scans', selection.kind)}: mode analyze takes scans.pairs (a CSV) or "
                "scans.from_job (a copy job)"
            )
        if mode == "copy" and d.get("analysis", {}).get("enabled") is False and "gate" in d["analysis"]:
            self.problems.append(
                f"{self.where('analysis', 'gate')}: a gate judges the analysis, which this job turns off "
                "(analysis.enabled: false)"
            )
        if mode == "download" and "gate" in d.get("analysis", {}):
            self.problems.append(
                f"{self.where('analysis', 'gate')}: mode download writes no analysis to judge"
            )
        if mode == "download" and "target" in d:
            self.problems.append(
                f"{self.where('target')}: mode download reads only the source; remove target"
            )

        name = self.text(d.get("name", BaseJob.default_name(self.path)), "name")
        output = self.file_path(d.get("output", BaseJob.default_output(self.path)), "output")
        if output is not None:
            self.check_folder(output, "output")
        # Every section is read (and its problems reported) whatever the mode, as the schema
        # admits each in every mode; a mode's job keeps only the sections it uses.
        batch, retry, analysis, notify = self.batch(), self.retry(), self.analysis(), self.notify()
        copy = CopyOptions(**_given(d.get("copy", {})))
        download = DownloadOptions(**_given(d.get("download", {})))
        if retry.backoff.initial > retry.backoff.max:
            self.problems.append(f"{self.where('retry', 'backoff')}: initial is larger than max")
        if self.problems or source is None or output is None:
            return None
        common: dict[str, Any] = {
            "path": self.path,
            "name": name,
            "source": source,
            "scans": selection,
            "output": output,
            "batch": batch,
            "retry": retry,
            "notify": notify,
        }
        if mode == "copy" and target is not None and store is not None:
            return CopyJob(**common, target=CopyTarget(target, store), copy=copy, analysis=analysis)
        if mode == "download":
            return DownloadJob(**common, download=download)
        if mode == "analyze" and target is not None:
            return AnalyzeJob(
                **common, target=AnalyzeTarget(target), analysis=analysis, target_store_as_written=store
            )
        raise AssertionError(f"mode {mode}: no job and no problem recorded")


def _limits(spec: Mapping[str, Any] | None) -> InstanceLimits | None:
    """An instance's `limits` (the schema checked them) as InstanceLimits; None if not given."""
    if spec is None:
        return None
    return InstanceLimits(**_given(spec, requests_per_second=float, concurrent_requests=int))


def _shared_instances(job_dir: Path, env: Mapping[str, str]) -> dict[str, Any]:
    path = job_dir / INSTANCES_FILE
    if not path.is_file():
        return {}
    data, lines = _read_document(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise JobError(f"{path}: expected a mapping of instance name -> settings")
    instance_schema = {**load_schema()["$defs"]["instance"], "$defs": load_schema()["$defs"]}
    problems = []
    for name, spec in data.items():
        problems += _schema_problems(spec or {}, instance_schema, lines, path, (str(name),))
    if problems:
        raise JobError(f"{path.name} is not valid:", problems)
    return {str(k): v for k, v in data.items()}


def load_job(path: str | Path, environ: Mapping[str, str] | None = None) -> Job:
    """Load, validate and resolve one job file; raise JobError listing every problem."""
    try:
        job_path = Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise JobError(f"cannot read the job file {path}: {exc}") from None
    data, lines = _read_document(job_path)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise JobError(f"{job_path.name}: a job file must be a mapping (key: value lines), not {kind}")
    env = {**read_dotenv(job_path.parent / ".env"), **(os.environ if environ is None else environ)}
    problems = _schema_problems(data, load_schema(), lines, job_path)
    if problems:
        raise JobError(f"{job_path.name} is not a valid job file:", problems)
    builder = _Builder(job_path, data, lines, env, _shared_instances(job_path.parent, env))
    job = builder.build()
    if job is None:
        raise JobError(f"{job_path.name} is not a valid job file:", builder.problems)
    return job
