"""Durations in job files, property-based: a duration written as parts reads back as the sum of
its parts whatever the order and spacing, the JSON Schema and the code accept the same texts, and
anything else is a ValueError. The examples are in tests/unit/jobfile/test_loader.py."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from scanjobs.jobfile import parse_duration

SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}  # the units the README lists
SCHEMA = json.loads((Path(__file__).parents[3] / "schemas" / "job.schema.json").read_text(encoding="utf-8"))
SCHEMA_TEXT = re.compile(
    next(alt["pattern"] for alt in SCHEMA["$defs"]["duration"]["oneOf"] if alt.get("type") == "string")
)

spaces = st.text(alphabet=" \t", max_size=2)
numbers = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.builds(
        lambda i, f: f"{i}.{f}",
        st.integers(min_value=0, max_value=10**6),
        st.from_regex(r"\d{1,3}", fullmatch=True),
    ),
)
parts = st.tuples(numbers, st.sampled_from(sorted(SECONDS)))


def text_of(chunks: list[tuple[str, str]], gaps: list[str]) -> str:
    return "".join(f"{gap}{number}{unit}" for (number, unit), gap in zip(chunks, gaps, strict=False))


@given(st.lists(parts, min_size=1, max_size=5), st.lists(spaces, min_size=6, max_size=6), spaces)
def test_a_duration_is_the_sum_of_its_parts(
    chunks: list[tuple[str, str]], gaps: list[str], tail: str
) -> None:
    seconds = parse_duration(text_of(chunks, gaps) + tail)
    assert math.isclose(seconds, sum(float(n) * SECONDS[u] for n, u in chunks), rel_tol=1e-12, abs_tol=1e-12)
    assert seconds >= 0


@given(st.lists(parts, min_size=1, max_size=5), st.randoms())
def test_the_order_of_the_parts_does_not_matter(chunks: list[tuple[str, str]], rng: random.Random) -> None:
    shuffled = list(chunks)
    rng.shuffle(shuffled)
    text, other = "".join(n + u for n, u in chunks), " ".join(n + u for n, u in shuffled)
    assert math.isclose(parse_duration(text), parse_duration(other), rel_tol=1e-12, abs_tol=1e-12)


@given(st.lists(parts, min_size=1, max_size=3), st.lists(parts, min_size=1, max_size=3))
def test_writing_two_durations_one_after_the_other_adds_them(
    a: list[tuple[str, str]], b: list[tuple[str, str]]
) -> None:
    left, right = "".join(n + u for n, u in a), "".join(n + u for n, u in b)
    total = parse_duration(left) + parse_duration(right)
    assert math.isclose(parse_duration(left + right), total, rel_tol=1e-12, abs_tol=1e-12)


@given(st.one_of(st.integers(min_value=0, max_value=10**12), st.floats(min_value=0, max_value=1e12)))
def test_a_number_is_seconds(value: float) -> None:
    assert parse_duration(value) == float(value)
    assert isinstance(parse_duration(value), float)


# Texts near the grammar: digits, dots, units, spaces, signs and other letters.
near_texts = st.text(alphabet="0123456789. \tmshdx-+e,:", max_size=12)


@given(st.one_of(near_texts, st.text(max_size=12)))
@example("1h30m")
@example(" 90 s \n")
@example("250ms")
@example("0")
@example("\u0663s")  # a non-ASCII digit
@example("10 parsecs")
@example("1h 30")
@example("")
@example("-5s")
@example("1.s")
@example(".5s")
@example("5ms5")
@example("1e3s")
def test_the_schema_and_the_code_accept_the_same_texts_and_anything_else_is_a_value_error(text: str) -> None:
    schema_accepts = SCHEMA_TEXT.search(text) is not None
    try:
        seconds = parse_duration(text)
    except ValueError:
        assert not schema_accepts, f"the schema accepts {text!r}, the code refuses it"
        return
    assert schema_accepts, f"the code accepts {text!r}, the schema refuses it"
    assert seconds >= 0


@given(st.one_of(st.none(), st.booleans(), st.lists(st.integers(), max_size=2)))
def test_what_is_neither_a_number_nor_a_text_is_a_value_error(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)  # type: ignore[arg-type]
