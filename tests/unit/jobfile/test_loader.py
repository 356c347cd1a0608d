"""Job files: loading, defaults, ${VAR} expansion and every refusal names its place."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from scanjobs.cli import main
from scanjobs.errors import JobError
from scanjobs.jobfile import CopyJob, load_job, load_schema, parse_duration
from scanjobs.jobfile.model import InstanceLimits

ROOT = Path(__file__).resolve().parents[3]
ENV = {
    "A_PASSWORD": "pa",
    "A_DB_PASSWORD": "pd",
    "A_USERNAME": "ua",
    "B_PASSWORD": "pb",
    "B_DB_PASSWORD": "pbd",
    "B_USERNAME": "ub",
}

GOOD = """\
version: 1
mode: copy
source: a
target: {instance: b, store: 8}
scans:
  ids: [3, 1, 3]
batch: {size: 5, workers: {download: 4}}
retry: {deadline: 1h30m}
instances:
  a:
    api_url: http://127.0.0.1:9000
    password: ${A_PASSWORD}
    db: {host: 127.0.0.1, port: 5433, password: "${A_DB_PASSWORD}"}
  b: {}
"""


def write(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def refused(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(JobError) as info:
        load_job(write(tmp_path, text), environ=ENV if env is None else env)
    return str(info.value)


def test_good_job_loads_with_defaults(tmp_path: Path) -> None:
    job = load_job(write(tmp_path, GOOD), environ=ENV)
    assert job.mode == "copy"
    assert job.scans.ids == (3, 1)
    assert job.batch.size == 5 and job.batch.workers.download == 4 and job.batch.workers.create == 10
    assert job.retry.deadline == 5400
    assert job.source.api_url == "http://127.0.0.1:9000"
    assert job.source.db.port == 5433 and job.source.db.user == "proxyuser"
    assert job.source.password.reveal() == "pa"
    assert isinstance(job, CopyJob) and job.target.store == 8
    b = job.target.instance
    assert b.api_url == "https://b.rebotics.net" and b.db.host == "b-maint.rebotics.net"
    assert b.db.dbname == "b" and b.db.port == 5432
    assert b.password.reveal() == "pb"  # default variable B_PASSWORD
    assert job.output == (tmp_path / "results" / "job").resolve()
    assert job.state_path == tmp_path / "job.state.sqlite"


def test_secrets_never_in_repr(tmp_path: Path) -> None:
    job = load_job(write(tmp_path, GOOD), environ=ENV)
    text = repr(job)
    for secret in ("pa", "pd", "pb", "pbd"):
        assert f"'{secret}'" not in text


def test_dotenv_beside_job_and_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# creds\nexport A_PASSWORD='from-dotenv'\nB_PASSWORD=x\n")
    env = {k: v for k, v in ENV.items() if k != "A_PASSWORD"}
    job = load_job(write(tmp_path, GOOD), environ=env)
    assert job.source.password.reveal() == "from-dotenv"
    assert isinstance(job, CopyJob) and job.target.instance.password.reveal() == "pb"


def test_var_default_and_message(tmp_path: Path) -> None:
    text = GOOD.replace("store: 8}", "store: 8}\noutput: ${OUT:-out/dir}")
    assert load_job(write(tmp_path, text), environ=ENV).output == (tmp_path / "out/dir").resolve()
    text = GOOD.replace("store: 8}", "store: 8}\noutput: ${OUT:?set OUT to the results folder}")
    assert "set OUT to the results folder" in refused(tmp_path, text)


def test_missing_default_secret_is_reported_when_connecting(tmp_path: Path) -> None:
    env = {k: v for k, v in ENV.items() if not k.startswith("B_")}
    job = load_job(write(tmp_path, GOOD), environ=env)
    assert isinstance(job, CopyJob)
    with pytest.raises(JobError, match="B_PASSWORD"):
        job.target.instance.password.reveal()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nmode: copy\n  source: [\n", "line"),
        (GOOD.replace("workers:", "workerz:"), "unknown key 'workerz' (did you mean 'workers'?)"),
        (GOOD.replace("size: 5", "size: five"), "batch.size"),
        (GOOD.replace("size: 5", "size: 0"), "batch.size"),
        (GOOD.replace("download: 4", "download: -2"), "batch.workers.download"),
        (GOOD.replace("ids: [3, 1, 3]", "ids: []"), "scans.ids"),
        (GOOD.replace("mode: copy\n", "mode: copy\nmode: download\n"), "duplicate key 'mode'"),
        (GOOD.replace("${A_PASSWORD}", "hunter2"), "literal secret"),
        (GOOD.replace('"${A_DB_PASSWORD}"', "s3cret"), "instances.a.db.password"),
        (GOOD.replace("${A_PASSWORD}", "${NOT_SET_ANYWHERE}"), "${NOT_SET_ANYWHERE} is not set"),
        (GOOD.replace("source: a", "source: c"), "unknown instance 'c'"),
        (GOOD.replace("target: {instance: b, store: 8}\n", ""), "needs a target"),
        (GOOD.replace("store: 8}", "}"), "target.store"),
        ("!!python/object/apply:os.system ['touch PWNED']\n", "python"),
        ("- a\n- b\n", "must be a mapping"),
        ("just text\n", "must be a mapping"),
        ("", "must be a mapping"),
        (GOOD.replace("deadline: 1h30m", "deadline: soon"), "retry.deadline"),
        (GOOD.replace("version: 1", "version: 2"), "version"),
        (GOOD.replace("${A_PASSWORD}", "${A_PASSWORD:-fallback}"), "default value in a secret"),
    ],
    ids=[
        "yaml-syntax",
        "misspelt-key",
        "wrong-type",
        "zero",
        "negative",
        "empty-scans",
        "duplicate-key",
        "literal-password",
        "literal-db-password",
        "unset-var",
        "unknown-instance",
        "copy-without-target",
        "copy-without-store",
        "python-tag",
        "list-document",
        "scalar-document",
        "empty-document",
        "bad-duration",
        "bad-version",
        "secret-default",
    ],
)
def test_refusals_name_the_place(tmp_path: Path, text: str, expected: str) -> None:
    message = refused(tmp_path, text)
    assert expected in message
    assert "hunter2" not in message and "s3cret" not in message and "fallback" not in message


def test_yaml_error_has_line(tmp_path: Path) -> None:
    message = refused(tmp_path, "version: 1\nmode: copy\nsource: [a, b\ntarget: x\n")
    assert "line 4" in message or "line 3" in message


def test_python_tag_executes_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    refused(tmp_path, f"!!python/object/apply:os.system ['touch {marker}']\n")
    assert not marker.exists()


def test_schema_error_reports_line_and_all_errors(tmp_path: Path) -> None:
    text = GOOD.replace("size: 5", "size: 0").replace("download: 4", "download: x")
    message = refused(tmp_path, text)
    assert "batch.size" in message and "batch.workers.download" in message
    assert "line 7" in message


def test_instances_yaml_beside_job(tmp_path: Path) -> None:
    (tmp_path / "instances.yaml").write_text("c:\n  api_url: http://127.0.0.1:1\n  password: ${A_PASSWORD}\n")
    job = load_job(write(tmp_path, GOOD.replace("source: a", "source: c")), environ=ENV)
    assert job.source.api_url == "http://127.0.0.1:1"
    (tmp_path / "instances.yaml").write_text("c:\n  password: plain\n")
    assert "literal secret" in refused(tmp_path, GOOD.replace("source: a", "source: c"))


def test_analyze_and_download_rules(tmp_path: Path) -> None:
    analyze = GOOD.replace("mode: copy", "mode: analyze").replace("ids: [3, 1, 3]", "pairs: m.csv")
    job = load_job(write(tmp_path, analyze), environ=ENV)
    assert job.scans.kind == "pairs" and job.scans.file == (tmp_path / "m.csv").resolve()
    assert "mode analyze takes" in refused(tmp_path, GOOD.replace("mode: copy", "mode: analyze"))
    download = GOOD.replace("mode: copy", "mode: download")
    assert "remove target" in refused(tmp_path, download)


def test_durations() -> None:
    assert parse_duration("30m") == 1800
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25
    assert parse_duration(12) == 12
    with pytest.raises(ValueError):
        parse_duration("10 parsecs")


def test_example_jobs_validate_with_cli_and_independent_validator(capsys: pytest.CaptureFixture[str]) -> None:
    jobs = sorted((ROOT / "jobs").glob("*.yaml"))
    assert len(jobs) >= 3
    schema = json.loads((ROOT / "schemas" / "job.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for path in jobs:
        text = path.read_text()
        assert text.startswith("# yaml-language-server: $schema="), path
        errors = list(validator.iter_errors(_plain(text)))
        assert not errors, (path, [e.message for e in errors])
    assert main(["validate", *map(str, jobs)]) == 0


def _plain(text: str) -> object:
    """Load like an editor would for the schema (dates as text)."""
    from scanjobs.jobfile.yamlio import load_yaml

    data, _, _ = load_yaml(text, Path("x"))
    return data


def test_schema_describes_every_property() -> None:
    schema = load_schema()
    missing: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if "description" not in sub:
                    missing.append(f"{path}.{name}")
            for key, sub in node.items():
                walk(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}[{i}]")

    walk(schema, "")
    assert not missing


def test_validate_cli_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    good = write(tmp_path, GOOD, "good.yaml")
    bad = write(tmp_path, GOOD.replace("size: 5", "size: -1"), "bad.yaml")
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "batch.size" in err
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2


def test_an_instance_named_with_a_digit_first_reads_its_default_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 12, point 12: instance 3m read 3M_PASSWORD, a variable no .env line or shell can set."""
    (tmp_path / ".env").write_text("_3M_PASSWORD=pw\n_3M_DB_PASSWORD=db\n", encoding="utf-8")
    text = "version: 1\nmode: download\nsource: 3m\nscans: {ids: [1]}\ninstances: {3m: {}}\n"
    job = load_job(write(tmp_path, text), environ={})
    assert job.source.password.reveal() == "pw" and job.source.db.password.reveal() == "db"
    monkeypatch.delenv("_3M_USERNAME", raising=False)
    assert main(["validate", str(tmp_path / "job.yaml")]) == 0
    assert "set: _3M_USERNAME" in capsys.readouterr().out


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:x",
        "http://a b",
        "http://a\tb",
        "http://h\u00e9.example",
        "http://",
        "https://user:pw@host",
    ],
)
def test_an_api_url_the_client_cannot_use_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """issue 12, point 12 (a sibling): these passed validate (the check looked at the start only)
    and ended the run in exit 3 (ValueError, InvalidURL) at login; a password in the URL would
    be shown wherever the URL is."""
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    job = write(tmp_path, GOOD.replace("api_url: http://127.0.0.1:9000", f"api_url: {json.dumps(url)}"))
    assert main(["validate", str(job)]) == 2
    err = capsys.readouterr().err
    assert "instances.a.api_url" in err
    assert "pw@" not in err
    ok = GOOD.replace("api_url: http://127.0.0.1:9000", "api_url: https://[::1]:8443/base/")
    assert load_job(write(tmp_path, ok), environ=ENV).source.api_url == "https://[::1]:8443/base"


def test_instance_limits(tmp_path: Path) -> None:
    """`limits` give a rate, a concurrency or both; adaptive by default; not part of the job's
    identity (a budget changes how fast, not what is copied)."""
    plain = load_job(write(tmp_path, GOOD), environ=ENV)
    assert plain.source.limits is None
    text = GOOD.replace("  b: {}\n", "  b: {limits: {requests_per_second: 2.5}}\n")
    text = text.replace(
        "    api_url: http://127.0.0.1:9000\n",
        "    api_url: http://127.0.0.1:9000\n    limits: {concurrent_requests: 3, adaptive: false}\n",
    )
    job = load_job(write(tmp_path, text), environ=ENV)
    assert isinstance(job, CopyJob)
    assert job.source.limits == InstanceLimits(concurrent_requests=3, adaptive=False)
    assert job.target.instance.limits == InstanceLimits(requests_per_second=2.5)
    assert job.fingerprint() == plain.fingerprint()
    (tmp_path / "instances.yaml").write_text(
        "c:\n  password: ${A_PASSWORD}\n  limits: {requests_per_second: 10}\n"
    )
    shared = load_job(write(tmp_path, GOOD.replace("source: a", "source: c")), environ=ENV)
    assert shared.source.limits == InstanceLimits(requests_per_second=10)


@pytest.mark.parametrize(
    "limits",
    [
        "{}",
        "{adaptive: true}",
        "{requests_per_second: 0}",
        "{concurrent_requests: 0}",
        "{requests_per_second: .nan}",
        "{requests_per_second: 10, burst: 3}",
    ],
)
def test_instance_limits_refused(tmp_path: Path, limits: str) -> None:
    text = GOOD.replace("  b: {}\n", f"  b: {{limits: {limits}}}\n")
    assert "instances.b.limits" in refused(tmp_path, text)
