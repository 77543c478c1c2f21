"""The typed-field machinery on a dataclass of its own (tfxmed's sections are tested in test_config.py)."""

import dataclasses

import pytest

from tfxmed.config_fields import ConfigError, apply_overrides, deep_merge, field, from_dict


@dataclasses.dataclass
class Inner:
    width: int = field(8, within="[1, inf)")


@dataclasses.dataclass
class Outer:
    rate: float = field(0.5, within="(0, 1]")
    mode: bool | str = field("auto", choices=("auto", True, False))
    sizes: list[int] = field([1, 2], within="[0, 9]", length="[1, 3]")
    inner: Inner = dataclasses.field(default_factory=Inner)


def test_values_are_converted_only_where_lossless():
    built = from_dict(Outer, {"rate": "1e-1", "mode": True, "sizes": [3], "inner": {"width": 2}})
    assert built == Outer(rate=0.1, mode=True, sizes=[3], inner=Inner(width=2))


@pytest.mark.parametrize("values, message", [
    ({"rate": 0}, r"rate: must be in \(0, 1\], got 0"),
    ({"rate": True}, "rate: expected a number, got True"),
    ({"mode": 1}, "mode: 1 is not allowed; choose one of auto, true, false"),
    ({"sizes": [1, 2, 3, 4]}, "sizes: expected a list of 1 to 3 items|sizes: expected a list of"),
    ({"sizes": [1, 10]}, r"sizes\[1\]: must be in \[0, 9\], got 10"),
    ({"inner": {"width": 0}}, "inner.width: must be >= 1, got 0"),
    ({"width": 3}, "unknown config key 'width'.*did you mean inner.width"),
])
def test_errors_name_the_key_the_value_and_what_is_allowed(values, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, values)


def test_overrides_apply_in_order_and_merge_deeply():
    values = deep_merge({"inner": {"width": 8}, "rate": 0.5}, {"inner": {"extra": 1}})
    assert values == {"inner": {"width": 8, "extra": 1}, "rate": 0.5}
    assert apply_overrides(values, ["inner.width=4", "inner.width=5", "rate=1e-2"]) == {
        "inner": {"width": 5, "extra": 1}, "rate": "1e-2"}  # YAML 1.1 reads 1e-2 as a string: from_dict converts
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        apply_overrides(values, ["inner.width"])
