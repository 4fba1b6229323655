import pytest

from worker.core.config import load_limits, load_settings
from worker.core.errors import ConfigError
from worker.core.limits import DEFAULT_LIMITS, estimate_peak_bytes

BASE = {
    "THUMBX_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/222222222222/thumbx",
    "THUMBX_BUCKET": "images-b",
}


def test_limits_default_to_the_documented_values() -> None:
    assert load_settings(BASE).limits == DEFAULT_LIMITS
    assert DEFAULT_LIMITS.max_pixels == 50_000_000
    assert "svg" not in DEFAULT_LIMITS.formats


def test_limits_are_read_from_thumbx_variables() -> None:
    env = {
        **BASE,
        "THUMBX_MAX_PIXELS": "20000000",
        "THUMBX_MAX_BYTES": "1000000",
        "THUMBX_MAX_FRAMES": "12",
        "THUMBX_ALLOWED_FORMATS": "JPG, png",
        "THUMBX_RENDER_TIMEOUT": "5",
        "THUMBX_RENDER_MEMORY_MB": "512",
        "THUMBX_MAX_PROGRESSIVE_PIXELS": "8000000",
    }
    limits = load_settings(env).limits
    assert limits.max_pixels == 20_000_000
    assert limits.max_bytes == 1_000_000
    assert limits.max_frames == 12
    assert limits.formats == frozenset({"jpeg", "png"})
    assert limits.timeout_seconds == 5
    assert limits.memory_budget_bytes == 512 * 1024 * 1024
    assert limits.max_progressive_pixels == 8_000_000
    assert load_limits(env) == limits


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("THUMBX_ALLOWED_FORMATS", "jpeg,svg"),
        ("THUMBX_MAX_PIXELS", "lots"),
        ("THUMBX_RENDER_TIMEOUT", "0"),
        ("THUMBX_RENDER_MEMORY_MB", "1"),
    ],
)
def test_invalid_limits_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_limits({name: value})


def test_progressive_jpegs_are_budgeted_far_above_baseline_ones() -> None:
    baseline = estimate_peak_bytes("jpeg", 10_000, 10_000)
    progressive = estimate_peak_bytes("jpeg", 10_000, 10_000, progressive=True)
    assert baseline < 150 * 2**20  # the target for a 100-MP baseline JPEG
    assert progressive > 3 * baseline


def test_a_max_size_source_must_fit_the_memory_budget_twice() -> None:
    """A source is held twice while it is downloaded (worker/core/budget.py): a byte cap over half the budget
    would refuse every source near it at run time, so it is refused at start-up, naming the variable."""
    with pytest.raises(ConfigError, match="THUMBX_MAX_BYTES"):
        load_settings({**BASE, "THUMBX_MAX_BYTES": str(600 * 1024 * 1024), "THUMBX_RENDER_MEMORY_MB": "1024"})
    limits = load_settings({**BASE, "THUMBX_MAX_BYTES": str(512 * 1024 * 1024)}).limits
    assert limits.max_bytes * 2 == limits.memory_budget_bytes
