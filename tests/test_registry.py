import pytest

from npnet.errors import ConfigError
from npnet.registry import Registry, constructor_config, did_you_mean


def make_registry():
    shapes = Registry("shape")

    @shapes.register("square")
    class Square:
        def __init__(self, side, colour="red"):
            self.side = side
            self.colour = colour

    return shapes, Square


def test_build_passes_arguments_and_round_trips():
    shapes, square_class = make_registry()
    square = shapes.build("square", {"side": 3})
    assert isinstance(square, square_class)
    assert constructor_config(square) == {"side": 3, "colour": "red"}
    assert square_class.registered_name == "square"


def test_unknown_name_lists_choices_and_suggests():
    shapes, _ = make_registry()
    with pytest.raises(
        ConfigError, match=r"unknown shape 'sqare'; did you mean 'square'\? \(choices: square\)"
    ):
        shapes.get("sqare")


def test_unknown_key_suggests_the_closest_valid_key():
    shapes, _ = make_registry()
    with pytest.raises(ConfigError, match=r"unknown key 'colur'; did you mean 'colour'\?"):
        shapes.build("square", {"side": 1, "colur": "blue"})


def test_missing_required_key():
    shapes, _ = make_registry()
    with pytest.raises(ConfigError, match="missing required key 'side' for shape 'square'"):
        shapes.build("square", {})


def test_duplicate_names_are_rejected():
    shapes, _ = make_registry()
    with pytest.raises(ValueError, match="already registered"):
        shapes.register("square")(object)


def test_did_you_mean_is_empty_when_nothing_is_close():
    assert did_you_mean("zzz", ["dense", "conv2d"]) == ""
    assert did_you_mean("dense2", ["dense", "conv2d"]) == "; did you mean 'dense'?"
