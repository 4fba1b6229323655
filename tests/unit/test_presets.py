import pytest

from worker.core.errors import ConfigError
from worker.core.presets import DEFAULT_PRESETS, Preset, parse_presets


def test_default_presets_parse_to_three_sizes() -> None:
    presets = parse_presets(DEFAULT_PRESETS)
    assert [(p.name, p.width, p.format) for p in presets] == [
        ("sm", 128, "webp"),
        ("md", 512, "jpeg"),
        ("lg", 1024, "jpeg"),
    ]
    assert presets[1].extension == "jpg"
    assert presets[0].content_type == "image/webp"


def test_every_option_is_read() -> None:
    (preset,) = parse_presets(
        "card:640x480:webp:q=70:fit=cover:crop=entropy:up=1:alpha=flatten:bg=#102030:keep=icc+copyright"
    )
    assert preset == Preset(
        name="card",
        width=640,
        height=480,
        format="webp",
        quality=70,
        fit="cover",
        crop="entropy",
        upscale=True,
        alpha="flatten",
        background=(0x10, 0x20, 0x30),
        keep=("copyright", "icc"),
    )
    assert not preset.keeps_alpha


def test_defaults_strip_metadata_keep_alpha_and_never_upscale() -> None:
    (preset,) = parse_presets("a:100:png")
    assert preset.keep == ()
    assert preset.keeps_alpha
    assert not preset.upscale
    assert preset.fit == "inside"
    assert preset.crop == "attention"


def test_jpeg_never_keeps_alpha() -> None:
    (preset,) = parse_presets("a:100:jpg")
    assert preset.format == "jpeg"
    assert not preset.keeps_alpha


def test_animation_is_an_option_of_webp_output() -> None:
    (preset,) = parse_presets("anim:320:webp:anim=1")
    assert preset.animated


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("a:100:gif", "format"),
        ("a:100:jpeg:fit=fill", "'fit=fill'"),
        ("a:100:jpeg:crop=attention", "crop= only applies with fit=cover"),
        ("a:100:jpeg:q=0", "'q=0'"),
        ("a:100:jpeg:q=80:q=90", "twice"),
        ("a:100:jpeg:bg=white", "'bg=white'"),
        ("a:100:jpeg:keep=exif", "'keep=exif'"),
        ("a:100:jpeg:anim=1", "anim=1 needs one of webp"),
        ("a:100:jpeg:huffman=fast", "'huffman=fast'"),
        ("a:100:webp:huffman=standard", "huffman= only applies to jpeg"),
        ("a:100:webp:anim=1:fit=cover", "fit=inside only"),
        ("a:0:jpeg", "1..8192"),
        ("a:100:jpeg,a:200:webp", "used twice"),
        ("A:100:jpeg", "lowercase"),
        ("a:100", "name:size:format"),
        (" , ", "no presets"),
    ],
)
def test_invalid_specs_name_the_variable_and_the_problem(spec: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_presets(spec, variable="THUMBX_PRESETS")
    assert str(caught.value).startswith("THUMBX_PRESETS: ")
    assert words in str(caught.value)
