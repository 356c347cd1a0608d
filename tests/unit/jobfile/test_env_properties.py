"""${VAR} expansion and .env files, property-based: a reference gives the variable's value as it
is (never expanded again), `$${` writes any text literally, the only error is UnsetVariable for
a variable that is unset and has no default, and a .env file gives back the values written to it.
The examples are in tests/unit/jobfile/test_loader.py."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from scanjobs.jobfile.env import UnsetVariable, env_var_for, expand, read_dotenv

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
values = st.text(max_size=12)
environments = st.dictionaries(names, values, max_size=5)
# Texts full of the syntax: dollars, braces, colons, dashes, question marks and names.
syntax_texts = st.lists(
    st.one_of(st.sampled_from(["$", "{", "}", ":-", ":?", "$${", "${", "A", "B_1", " "]), st.text(max_size=3))
).map("".join)


def escape(text: str) -> str:
    """How a job file writes `text` literally: `$${` for every `${`."""
    return text.replace("${", "$${")


def reference(var: str, op: str, arg: str) -> str:
    return "${" + var + op + arg + "}"


@given(st.one_of(st.text(), syntax_texts), environments)
@example("$${", {})
@example("$$${A}", {"A": "x"})
def test_escaped_text_expands_to_itself_whatever_the_environment(text: str, env: dict[str, str]) -> None:
    assert expand(escape(text), env) == text


@given(st.text().filter(lambda t: "${" not in t), environments)
def test_text_without_a_reference_is_left_as_it_is(text: str, env: dict[str, str]) -> None:
    assert expand(text, env) == text


@given(names, st.one_of(values, syntax_texts), environments)
def test_a_value_is_given_as_it_is_never_expanded_again(var: str, value: str, env: dict[str, str]) -> None:
    env = {**env, var: value}
    assert expand(reference(var, "", ""), env) == value
    if value:  # (an empty value: the default below; for `:?` the README does not say)
        assert expand(reference(var, ":-", "default"), env) == value
        assert expand(reference(var, ":?", "message"), env) == value


@given(names, values.filter(lambda a: "}" not in a), environments, st.booleans())
def test_a_default_stands_in_for_an_unset_or_empty_variable(
    var: str, default: str, env: dict[str, str], empty: bool
) -> None:
    env = {k: v for k, v in env.items() if k != var}
    if empty:
        env[var] = ""
    assert expand(reference(var, ":-", default), env) == default


@given(names, values.filter(lambda m: "}" not in m), environments)
def test_an_unset_variable_without_a_default_is_unset_variable_naming_it(
    var: str, message: str, env: dict[str, str]
) -> None:
    env = {k: v for k, v in env.items() if k != var}
    with pytest.raises(UnsetVariable) as plain:
        expand(f"a {reference(var, '', '')} b", env)
    assert plain.value.var == var and plain.value.message is None
    with pytest.raises(UnsetVariable) as told:
        expand(f"a {reference(var, ':?', message)} b", env)
    assert told.value.var == var and told.value.message == message


@given(
    st.lists(
        st.one_of(
            st.text().map(lambda t: ("literal", t)),
            st.tuples(st.just("ref"), names, st.just(""), st.just("")),  # ${VAR}
            st.tuples(
                st.just("ref"), names, st.sampled_from([":-", ":?"]), values.filter(lambda a: "}" not in a)
            ),
        ),
        max_size=6,
    ),
    environments,
)
def test_a_text_expands_piece_by_piece(pieces: list[tuple[str, ...]], env: dict[str, str]) -> None:
    merged: list[tuple[str, ...]] = []
    for piece in pieces:  # adjacent literals are one literal ("a$" then "{b" is the text "a${b")
        if piece[0] == "literal" and merged and merged[-1][0] == "literal":
            merged[-1] = ("literal", merged[-1][1] + piece[1])
        else:
            merged.append(piece)
    # The syntax cannot say "a literal $, then a reference": "$" + "${A}" is the escape "$${".
    assume(not any(a[0] == "literal" and a[1].endswith("$") and b[0] == "ref" for a, b in pairwise(merged)))
    text, expected, unset = "", "", None
    for piece in merged:
        if piece[0] == "literal":
            text += escape(piece[1])
            expected += piece[1]
            continue
        _, var, op, arg = piece
        text += reference(var, op, arg)
        value = env.get(var)
        if op == ":-" and not value:
            expected += arg
        elif value is not None:
            expected += value
        elif unset is None:
            unset = var
    if unset is not None:
        with pytest.raises(UnsetVariable) as info:
            expand(text, env)
        assert info.value.var == unset  # the first unset one
    else:
        assert expand(text, env) == expected


@given(st.one_of(st.text(), syntax_texts), environments)
def test_expansion_raises_nothing_but_unset_variable(text: str, env: dict[str, str]) -> None:
    try:
        expand(text, env)
    except UnsetVariable as exc:
        assert "${" + exc.var in text
        assert exc.var not in env  # set, even to "", is not unset


# Instance names as the schema allows them (its instanceName pattern).
instance_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,12}", fullmatch=True)
secret_kinds = st.sampled_from(["USERNAME", "PASSWORD", "DB_PASSWORD"])


def usable_everywhere(var: str) -> None:
    """A variable a job file can refer to and a .env file can set."""
    assert expand(reference(var, "", ""), {var: "x"}) == "x"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ".env"
        path.write_text(f"{var}=x\n", encoding="utf-8")
        assert read_dotenv(path) == {var: "x"}


@given(instance_names.filter(lambda n: not n[0].isdigit()), secret_kinds)
def test_an_instance_secret_variable_can_be_referred_to_and_set(instance: str, what: str) -> None:
    var = env_var_for(instance, what)
    assert var.endswith("_" + what) and var == var.upper()
    usable_everywhere(var)


@given(instance_names.filter(lambda n: n[0].isdigit()), secret_kinds)
@example("3m", "PASSWORD")
def test_a_digit_first_instance_secret_variable_can_be_referred_to_and_set(instance: str, what: str) -> None:
    """issue 12, point 12 (was a strict xfail): instance 3m gave 3M_PASSWORD, which no ${...}
    reference, .env line or shell export can name."""
    usable_everywhere(env_var_for(instance, what))


# --- .env files ----------------------------------------------------------------------------------

# A value a .env line can hold: no line break (any character Python reads as one).
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
line_values = st.text(st.characters(exclude_categories=["Cs"], exclude_characters=LINE_BREAKS), max_size=16)
dotenv_names = names.filter(lambda n: n != "export")


@pytest.fixture(scope="module")
def dotenv() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / ".env"


def read(path: Path, text: str) -> dict[str, str]:
    path.write_text(text, encoding="utf-8", newline="")
    return read_dotenv(path)


@given(
    st.dictionaries(dotenv_names, line_values, max_size=5),
    st.sampled_from(["'", '"']),
    st.booleans(),
    st.sampled_from(["\n", "\r\n"]),
)
def test_quoted_values_read_back_as_written(
    dotenv: Path, written: dict[str, str], quote: str, export: bool, newline: str
) -> None:
    safe = {k: v for k, v in written.items() if quote not in v}
    lines = [f"{'export ' if export else ''}{k}={quote}{v}{quote}" for k, v in safe.items()]
    assert read(dotenv, newline.join(["# written by a test", "", *lines, ""])) == safe


# A plain value with a comment after it: not blank, not quoted (a value that begins with a quote
# is read up to its closing quote: `''` is empty), and no "#" of its own that a space or tab (or
# the one after "=" below) comes before: that "#" begins a comment, as in a shell.
plain_values = line_values.filter(
    lambda v: v.strip() != "" and v.strip()[:1] not in ("'", '"') and not re.search(r"[ \t]#", " " + v)
)


@given(st.dictionaries(dotenv_names, plain_values, max_size=5))
def test_plain_values_read_back_stripped_and_without_a_comment(dotenv: Path, written: dict[str, str]) -> None:
    text = "".join(f"{k} = {v}  # a comment\n" for k, v in written.items())
    assert read(dotenv, text) == {k: v.strip() for k, v in written.items()}


@given(st.dictionaries(dotenv_names, line_values, min_size=1, max_size=4))
def test_the_last_line_for_a_name_wins(dotenv: Path, written: dict[str, str]) -> None:
    text = "".join(f"{k}=first\n" for k in written) + "".join(
        f"{k}='{v}'\n" for k, v in written.items() if "'" not in v
    )
    expected = {k: v if "'" not in v else "first" for k, v in written.items()}
    assert read(dotenv, text) == expected


@given(st.text(max_size=200))
@example("=x\n1A=2\nexport\nA\n#B=1")
def test_any_text_reads_without_error_and_keeps_only_valid_names(dotenv: Path, text: str) -> None:
    values_read = read(dotenv, text)
    for key in values_read:
        assert key[0].isascii() and (key[0].isalpha() or key[0] == "_")
        assert all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in key)


@given(dotenv_names, line_values.filter(lambda v: "'" not in v), st.text(alphabet="abc #", max_size=8))
@example("A", "x y", "note")
def test_a_quoted_value_may_be_followed_by_a_comment(
    dotenv: Path, name: str, value: str, comment: str
) -> None:
    """issue 12, point 12: `KEY="pw" # comment` kept its quotes and comment (was a strict xfail)."""
    assert read(dotenv, f"{name}='{value}' # {comment}\n") == {name: value}


@given(dotenv_names, st.text(alphabet=" \t", max_size=3), st.text(alphabet="abc #", max_size=8))
@example("A", "  ", "fill in")
def test_an_empty_value_may_be_followed_by_a_comment(dotenv: Path, name: str, gap: str, comment: str) -> None:
    """issue 12, point 12: `A=  # fill in` read as the comment (was a strict xfail)."""
    assert read(dotenv, f"{name}={gap} # {comment}\n") == {name: ""}


@given(dotenv_names, line_values, st.sampled_from(LINE_BREAKS[2:]), line_values)
@example("A", "a", "\u2028", "b")
def test_only_newlines_end_a_line(dotenv: Path, name: str, head: str, odd: str, tail: str) -> None:
    """issue 12, point 12: str.splitlines cut a quoted value at \\v, U+2028, ... (was a strict xfail)."""
    value = (head + odd + tail).replace('"', "")
    assert read(dotenv, f'{name}="{value}"\n') == {name: value}
