"""The sequencer rule: compare after right-padding the shorter with zeros; unknown values never order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.core.sequencer import compare, is_stale, normalise

hex_text = st.text(alphabet="0123456789ABCDEF", min_size=1, max_size=20)


@pytest.mark.parametrize(
    ("event", "recorded", "order"),
    [
        ("0055AED6DCD90281E5", "0055AED6DCD90281E6", "older"),
        ("0055AED6DCD90281E6", "0055AED6DCD90281E5", "newer"),
        # a shorter value is padded on the right: "0A" is "0A00", which is greater than "09FF"
        ("0A", "09FF", "newer"),
        ("09FF", "0A", "older"),
        ("0A", "0A00", "same"),  # padding makes them equal
        ("0a1b", "0A1B", "same"),  # hex is case-insensitive
        # a plain numeric comparison would get this wrong: 0xF < 0x10, but padded "F0" > "10"
        ("F", "10", "newer"),
    ],
)
def test_compare(event: str, recorded: str, order: str) -> None:
    assert compare(event, recorded) == order


@pytest.mark.parametrize("value", [None, "", "xyz", "12 34", "0x12", "A" * 65])
def test_values_that_are_not_sequencers_are_none(value: str | None) -> None:
    assert normalise(value) is None


def test_unknown_sequencers_never_make_an_event_stale() -> None:
    assert not is_stale(None, "0A")
    assert not is_stale("0A", None)
    assert not is_stale("not-hex", "0A")
    assert is_stale("09", "0A")
    assert not is_stale("0A", "0A"), "a redelivery of the same event is not stale"


@given(hex_text, hex_text)
def test_compare_is_antisymmetric(a: str, b: str) -> None:
    flipped = {"older": "newer", "newer": "older", "same": "same"}
    assert compare(b, a) == flipped[compare(a, b)]


@given(hex_text, st.integers(min_value=0, max_value=8))
def test_trailing_zeros_do_not_change_the_order(a: str, zeros: int) -> None:
    assert compare(a + "0" * zeros, a) == "same"
