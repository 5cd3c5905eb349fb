"""Learning-rate schedules: what rate each step gets."""

import math

import pytest

from textual_inversion_core.schedules import make_schedule, parse_step_syntax


def test_a1111_step_syntax_holds_each_rate_until_its_step():
    # Given the shared-recipe form "0.005:100, 1e-3:1000, 1e-5"
    rate = make_schedule("0.005:100, 1e-3:1000, 1e-5", total_steps=3000)
    # Then each stage's rate runs up to and including its end step, and the last to the end
    assert [rate(s) for s in (1, 100, 101, 1000, 1001, 3000)] == [0.005, 0.005, 1e-3, 1e-3, 1e-5, 1e-5]


def test_a1111_syntax_keeps_the_last_rate_after_its_end_step():
    rate = make_schedule("0.01:10, 0.001:20", total_steps=50)
    assert rate(20) == 0.001 and rate(50) == 0.001


@pytest.mark.parametrize("spec, fragment", [
    ("", "empty"),
    ("fast", "'fast'"),
    ("0.005:100, 1e-3", None),
    ("0.005, 1e-3", "until_step"),
    ("0.005:100, 1e-3:50, 1e-4", "must increase"),
    ("-0.1", "positive"),
])
def test_malformed_step_syntax_is_refused_with_the_bad_part_named(spec, fragment):
    if fragment is None:
        assert parse_step_syntax(spec)  # a valid spec, listed to contrast with its malformed neighbours
        return
    with pytest.raises(ValueError, match=fragment):
        parse_step_syntax(spec)


def test_linear_warmup_ramps_to_the_base_rate():
    rate = make_schedule(0.01, total_steps=100, kind="constant", warmup_steps=4)
    assert [rate(s) for s in (1, 2, 4, 5, 100)] == pytest.approx([0.0025, 0.005, 0.01, 0.01, 0.01])


def test_cosine_starts_at_the_full_rate_and_ends_just_above_zero():
    rate = make_schedule(0.01, total_steps=100, kind="cosine")
    assert rate(1) == pytest.approx(0.01)
    assert 0 < rate(100) < 1e-4
    assert all(rate(s) >= rate(s + 1) for s in range(1, 100))
    assert rate(51) == pytest.approx(0.005)


def test_linear_decay_halves_the_rate_midway():
    rate = make_schedule(0.02, total_steps=100, kind="linear")
    assert rate(1) == pytest.approx(0.02) and rate(51) == pytest.approx(0.01)


def test_shapes_scale_the_step_syntax_rates():
    rate = make_schedule("0.01:50, 0.001", total_steps=100, kind="cosine")
    assert rate(1) == pytest.approx(0.01)
    assert rate(60) == pytest.approx(0.001 * 0.5 * (1 + math.cos(math.pi * 59 / 100)))


def test_unknown_schedule_kind_is_refused():
    with pytest.raises(ValueError, match="constant, cosine, linear"):
        make_schedule(0.01, 10, kind="exponential")
