"""What each setting of an option dataclass allows, declared beside its default, and the check of a value
against it.

A field declared as `steps: int = setting(1500, ge=1)` keeps 1500 as its default and carries its rule
in the field's metadata, so the dataclass stays the one place a setting is described (its comment says
what it is for, its rule what it may be). `valid_value` turns a value read from YAML or the command
line into the setting's type (an int for an int setting, a float for a float one) or fails with one
line naming the key, the value and what is allowed: a bad value then stops a run before anything is
written, not as a traceback deep inside training.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from fields.errors import FieldsError

# the largest seed: pycolmap's seeds are C ints, numpy's must be >= 0
MAX_SEED = 2**31 - 1
RULE = "fields.setting"  # the field metadata key a setting's Rule is kept under


@dataclass(frozen=True)
class Rule:
    """The values a setting allows: bounds (numbers), fixed choices (text), and `off`, one value outside
    the bounds that turns the setting off (e.g. 0 beside >= 2). NaN and infinity are never allowed."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[str, ...] | None = None
    off: float | None = None

    def inside(self, x: float) -> bool:
        """Whether the number x is within the bounds, or is the off value."""
        if self.off is not None and x == self.off:
            return True
        return ((self.ge is None or x >= self.ge) and (self.gt is None or x > self.gt)
                and (self.le is None or x <= self.le) and (self.lt is None or x < self.lt))

    def bounds(self) -> str:
        """The bounds in words: '>= 0 and <= 1', '>= 2, or 0'; '' without bounds."""
        parts = [f"{op} {_number(v)}" for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                 if v is not None]
        text = " and ".join(parts)
        return f"{text}, or {_number(self.off)}" if self.off is not None else text


def setting(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, choices: tuple[str, ...] | None = None, off: float | None = None) -> Any:
    """A dataclass field with this default whose values must keep to the rule (see Rule)."""
    rule = Rule(ge, gt, le, lt, tuple(choices) if choices is not None else None, off)
    return dataclasses.field(default=default, metadata={RULE: rule})


@cache
def _types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def rule_of(cls: type, name: str) -> Rule:
    """The rule of field `name` of the option dataclass `cls` (no rule: any value of its type)."""
    return next(f.metadata.get(RULE, Rule()) for f in dataclasses.fields(cls) if f.name == name)


def kind_of(cls: type, name: str) -> type:
    """The type of field `name`: bool, int, float or str."""
    return _types(cls)[name]


def describe(kind: type, rule: Rule) -> str:
    """What a setting of this type and rule allows, in words: 'an integer >= 1', 'one of ply, obj, glb'."""
    if kind is bool:
        return "true or false"
    if kind is str:
        return f"one of {', '.join(rule.choices)}" if rule.choices else "text"
    noun = "an integer" if kind is int else "a number"
    return f"{noun} {rule.bounds()}".strip()


def valid_value(cls: type, name: str, value: object, key: str) -> object:
    """`value` as field `name` of `cls` takes it (a whole float or a number written as text, such as YAML
    1.1's 1e-4, becomes an int or a float), or FieldsError: '{key} must be <what is allowed>, not <value>'."""
    kind, rule = kind_of(cls, name), rule_of(cls, name)
    out = _typed(kind, value)
    if out is None or not _allowed(kind, rule, out):
        what = describe(kind, rule)
        if isinstance(out, float) and not math.isfinite(out):
            what = what.replace("a number", "a finite number", 1)
        shown = out if isinstance(value, str) and out is not None else value  # 'nan' as text: nan
        raise FieldsError(f"{key} must be {what}, not {_shown(shown)}")
    return out


def _typed(kind: type, value: object) -> object | None:
    """value in the setting's type, or None where it has no such reading (1.5 for an int, text for a bool)."""
    if kind is bool or kind is str:
        return value if isinstance(value, kind) else None
    if isinstance(value, bool):
        return None
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    if not isinstance(number, (int, float)):
        return None
    if kind is float:
        return float(number)
    if isinstance(number, float):
        return int(number) if number.is_integer() else None
    return number


def _allowed(kind: type, rule: Rule, value: object) -> bool:
    if kind is str:
        return rule.choices is None or value in rule.choices
    if kind is bool:
        return True
    return math.isfinite(value) and rule.inside(value)  # type: ignore[arg-type]


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _shown(value: object) -> str:
    """A value as the user wrote it: text quoted, true / false / null as in YAML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, str) else str(value)
