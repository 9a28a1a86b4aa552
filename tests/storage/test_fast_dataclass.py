"""storage.fast_dataclass behaves as the standard dataclass for every class shape Brook uses:
generated shapes (fields with and without defaults or factories, repr and compare flags, frozen,
slots, eq, __post_init__) built both ways and compared instance by instance."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import fast_dataclass

FieldSpec = tuple[str, bool, bool]  # kind ("required", "default", "factory"), repr, compare


@st.composite
def shapes(draw: st.DrawFn) -> dict[str, Any]:
    required = draw(st.integers(0, 3))
    defaulted = draw(st.lists(st.sampled_from(["default", "factory"]), max_size=3))
    kinds = ["required"] * required + defaulted
    return {
        "fields": [(kind, draw(st.booleans()), draw(st.booleans())) for kind in kinds],
        "frozen": draw(st.booleans()),
        "slots": draw(st.booleans()),
        "eq": draw(st.booleans()),
        "post_init": draw(st.booleans()),
    }


def build(decorator: Any, shape: dict[str, Any]) -> type:
    namespace: dict[str, Any] = {"__module__": __name__, "__qualname__": "Shape"}
    annotations: dict[str, Any] = {"LIMIT": "ClassVar[int]"}
    namespace["LIMIT"] = 7
    for i, (kind, shown, compared) in enumerate(shape["fields"]):
        name = f"f{i}"
        annotations[name] = "int" if kind != "factory" else "list[int]"
        if kind == "default":
            namespace[name] = dataclasses.field(default=i * 10, repr=shown, compare=compared)
        elif kind == "factory":
            namespace[name] = dataclasses.field(default_factory=list, repr=shown, compare=compared)
        elif not (shown and compared):
            namespace[name] = dataclasses.field(repr=shown, compare=compared)
    namespace["__annotations__"] = annotations
    if shape["post_init"]:

        def __post_init__(self: Any) -> None:
            object.__setattr__(self, "_seen", True) if not shape["slots"] else None

        namespace["__post_init__"] = __post_init__
    cls = type("Shape", (), namespace)
    options = {k: shape[k] for k in ("frozen", "slots", "eq")}
    return decorator(**options)(cls)  # type: ignore[no-any-return]


def outcome(fn: Any) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except Exception as exc:
        return (type(exc).__name__, None)


def refused(fn: Any) -> str:
    """Whether an assignment or deletion is refused. CPython 3.11's frozen slotted classes refuse
    a name that is not a field with a TypeError (their __setattr__ keeps the class from before the
    slots); these refuse it with FrozenInstanceError: both refuse."""
    try:
        fn()
    except (dataclasses.FrozenInstanceError, TypeError, AttributeError):
        return "refused"
    return "done"


def describe(cls: type, args: tuple[Any, ...]) -> dict[str, Any]:
    a, b = cls(*args), cls(*args)
    fields = dataclasses.fields(cls)
    return {
        "repr": repr(a),
        "eq_same_args": a == b,
        "eq_other_type": a == object(),
        # eq=False keeps object's identity hash: equal only as "the same method".
        "hash": ("identity", None) if cls.__hash__ is object.__hash__ else outcome(lambda: hash(a)),
        "hash_equal": outcome(lambda: hash(a) == hash(b)),
        "fields": [(f.name, f.default, f.default_factory, f.repr, f.compare) for f in fields],
        "asdict": dataclasses.asdict(a),
        "replace": repr(dataclasses.replace(a)),
        "assign": outcome(lambda: setattr(a, "f0", 99)) if fields else refused(lambda: setattr(a, "f0", 9)),
        "assign_new": refused(lambda: setattr(a, "new_attribute", 1)),
        "delete": outcome(lambda: delattr(b, "f0")) if fields else refused(lambda: delattr(b, "f0")),
        "match_args": cls.__match_args__,  # type: ignore[attr-defined]
        "slots": getattr(cls, "__slots__", None),
        "has_dict": hasattr(a, "__dict__"),
        "classvar": cls.LIMIT,  # type: ignore[attr-defined]
        "is_dataclass": dataclasses.is_dataclass(a),
        "too_many": outcome(lambda: cls(*args, 1, 2, 3, 4, 5, 6, 7)),
        "too_few": outcome(lambda: cls()) if args else ("n/a", None),
        "unhashable_class": cls.__hash__ is None,
        # Names, kinds and defaults (neither builds annotations the same way).
        "signature": [(p.name, p.kind, repr(p.default)) for p in inspect.signature(cls).parameters.values()],
        "by_keyword": outcome(lambda: repr(cls(**{f.name: v for f, v in zip(fields, args, strict=False)}))),
        "twice": outcome(lambda: repr(cls(*args, **{f.name: 0 for f in fields[:1]}))),
        "unknown_keyword": outcome(lambda: repr(cls(*args, no_such_field=1))),
    }


@settings(max_examples=200, deadline=None)
@given(shapes(), st.lists(st.integers(-3, 3), min_size=6, max_size=6))
def test_same_behaviour_as_dataclasses(shape: dict[str, Any], values: list[int]) -> None:
    required = sum(1 for kind, _, _ in shape["fields"] if kind == "required")
    args = tuple(values[:required])
    expected = describe(build(dataclasses.dataclass, shape), args)
    assert describe(build(fast_dataclass.dataclass, shape), args) == expected


def test_defaults_are_class_attributes_without_slots_and_factories_are_fresh() -> None:
    @fast_dataclass.dataclass
    class Plain:
        a: int = 3
        items: list[int] = dataclasses.field(default_factory=list)
        LIMIT: ClassVar[int] = 5

    assert Plain.a == 3
    assert "items" not in Plain.__dict__
    first, second = Plain(), Plain()
    first.items.append(1)
    assert second.items == []
    assert [f.name for f in dataclasses.fields(Plain)] == ["a", "items"]


def test_inherited_fields_keep_their_order() -> None:
    shapes = []
    for decorator in (dataclasses.dataclass, fast_dataclass.dataclass):

        @decorator
        class Base:
            a: int
            b: int = 2

        @decorator(frozen=False)
        class Child(Base):
            c: int = 3
            a: int = 1

        child = Child()
        shapes.append(([f.name for f in dataclasses.fields(Child)], repr(child), child == Child(1, 2, 3)))
    assert shapes[0] == shapes[1]
    assert shapes[1][0] == ["a", "b", "c"]


def test_refusals_match_dataclasses() -> None:
    for decorator in (dataclasses.dataclass, fast_dataclass.dataclass):
        with pytest.raises(ValueError, match="mutable default"):

            @decorator
            class Mutable:
                items: list[int] = []

        with pytest.raises(TypeError, match="non-default argument"):

            @decorator
            class Order:
                a: int = 1
                b: int  # type: ignore[misc]


def test_an_unsupported_option_is_refused() -> None:
    with pytest.raises(TypeError, match="not supported"):

        @fast_dataclass.dataclass
        class KeywordOnly:
            a: int = dataclasses.field(default=1, kw_only=True)


def test_an_exception_dataclass_with_slots() -> None:
    for decorator in (dataclasses.dataclass, fast_dataclass.dataclass):

        @decorator(slots=True)
        class Failure(Exception):
            code: int
            message: str

            def __str__(self) -> str:
                return self.message

        error = Failure(3, "bad")
        assert str(error) == "bad"
        assert (error.code, error == Failure(3, "bad")) == (3, True)
        with pytest.raises(Failure):
            raise error


def test_classes_of_one_shape_share_one_compiled_init() -> None:
    """``__init__`` is compiled once per shape and renamed per class (no compile per class)."""

    @fast_dataclass.dataclass(frozen=True, slots=True)
    class First:
        alpha: int
        beta: str = "b"

    @fast_dataclass.dataclass(frozen=True, slots=True)
    class Second:
        gamma: int
        delta: str = "d"

    first, second = First.__init__, Second.__init__  # type: ignore[misc]
    assert first.__code__.co_code == second.__code__.co_code
    assert first.__code__.co_varnames == ("self", "alpha", "beta")
    assert second.__code__.co_varnames == ("self", "gamma", "delta")
    assert (First(1).alpha, Second(2, delta="x").delta) == (1, "x")
    assert not any(name.startswith("_fast_dataclass_field") for name in dir(Second(3)))
