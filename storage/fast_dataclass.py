"""``dataclass`` and ``field`` for Brook's own classes, cheaper to create than the standard ones.

Why: ``dataclasses.dataclass`` compiles every generated method with a separate ``exec`` (six for a
frozen class) and builds an ``inspect.Signature`` for the docstring: about 0.6 to 1.2 ms per class
on the machines measured. Brook's broker and storage define about sixty, all created when a broker
starts: a large part of an embedded broker's first start (``bench/bench_embedded.py``).

Here ``__init__`` is compiled once per shape (field count, which fields have default factories,
frozen, ``__post_init__``) and each class gets that code with its own field names put in
(``CodeType.replace``): about a third as many compilations as classes at a broker's start.
``__eq__``, ``__hash__``, ``__repr__`` and the frozen ``__setattr__`` / ``__delattr__`` are
shared functions. The classes are the standard library's from outside: the same methods and
semantics for the options Brook uses (``frozen``, ``slots``, ``eq``; ``field(default=,
default_factory=, repr=, compare=)``; ``__post_init__``; ``ClassVar`` annotations left out),
``__dataclass_fields__`` of real :class:`dataclasses.Field` objects, so :func:`dataclasses.fields`,
:func:`dataclasses.replace`, :func:`dataclasses.asdict` and :func:`dataclasses.is_dataclass` work.
Options outside that set raise ``TypeError`` rather than being ignored. Type checkers see the
standard decorator.

``tests/storage/test_fast_dataclass.py`` checks the equivalence against ``dataclasses`` on
generated class shapes.
"""

from __future__ import annotations

import dataclasses
import operator
import reprlib
from collections.abc import Callable
from types import CodeType, FunctionType
from typing import TYPE_CHECKING, Any, TypeVar

__all__ = ["dataclass", "field"]

_T = TypeVar("_T")

if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    field = dataclasses.field

    def dataclass(
        cls: type[_T] | None = None, /, *, frozen: bool = False, slots: bool = False, eq: bool = True
    ) -> Any:
        """``@dataclass``, ``@dataclass(frozen=True, slots=True, eq=False)``: see the module."""

        def wrap(c: type[_T]) -> type[_T]:
            return _process(c, frozen=frozen, slots=slots, eq=eq)

        return wrap if cls is None else wrap(cls)


_MISSING = dataclasses.MISSING
_FIELD = dataclasses._FIELD  # type: ignore[attr-defined]
_CLASSVAR_PREFIXES = ("ClassVar", "typing.ClassVar", "t.ClassVar")


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(_CLASSVAR_PREFIXES)
    from typing import ClassVar, get_origin

    return annotation is ClassVar or get_origin(annotation) is ClassVar


def _collect(cls: type) -> list[dataclasses.Field[Any]]:
    # As dataclasses: the bases' fields in reverse MRO order; a field redefined keeps its place.
    fields: dict[str, dataclasses.Field[Any]] = {}
    for base in cls.__mro__[-1:0:-1]:
        inherited = base.__dict__.get("__dataclass_fields__")
        if inherited:
            fields.update(inherited)
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063 - own only
        if _is_classvar(annotation):
            continue
        default = cls.__dict__.get(name, _MISSING)
        if isinstance(default, dataclasses.Field):
            spec = default
            if not spec.init or spec.kw_only is True or spec.hash is not None:
                raise TypeError(f"{cls.__qualname__}.{name}: field option not supported here")
        else:
            if default is not _MISSING and default.__class__.__hash__ is None:
                raise ValueError(
                    f"mutable default {type(default)} for field {name} is not allowed: use default_factory"
                )
            spec = dataclasses.field(default=default)
        spec.name = name
        spec.type = annotation
        spec._field_type = _FIELD  # type: ignore[attr-defined]
        fields[name] = spec
        # As dataclasses does: a default stays as the class attribute, a bare field() goes.
        if isinstance(default, dataclasses.Field):
            if spec.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
    return list(fields.values())


#: Compiled ``__init__`` templates by shape: (field count, the positions of default factories,
#: frozen, __post_init__). A default value is no code (it is in ``__defaults__``), so most classes
#: of a shape share one compilation, and a class's own ``__init__`` is the template's code with its
#: field names put in (``CodeType.replace``): no ``compile`` per class.
_TEMPLATES: dict[tuple[int, tuple[int, ...], bool, bool], CodeType] = {}
#: The template's placeholder for field ``i``; not a name any class uses.
_PLACEHOLDER = "_fast_dataclass_field_{}"


def _template(count: int, factories: tuple[int, ...], *, frozen: bool, post_init: bool) -> CodeType:
    key = (count, factories, frozen, post_init)
    code = _TEMPLATES.get(key)
    if code is None:
        names = [_PLACEHOLDER.format(i) for i in range(count)]
        body = []
        for i, name in enumerate(names):
            value = f"__factory_{i}() if {name} is __factory_marker else {name}" if i in factories else name
            if frozen:
                body.append(f"    __object_setattr(self, {name!r}, {value})")
            else:
                body.append(f"    self.{name} = {value}")
        if post_init:
            body.append("    self.__post_init__()")
        source = f"def __init__({', '.join(['self', *names])}):\n" + "\n".join(body or ["    pass"]) + "\n"
        namespace: dict[str, Any] = {}
        exec(source, {}, namespace)  # once per shape
        code = namespace["__init__"].__code__
        _TEMPLATES[key] = code
    return code


def _init_function(fields: list[dataclasses.Field[Any]], *, frozen: bool, post_init: bool) -> FunctionType:
    """``__init__`` as dataclasses writes it (the same parameters, defaults and assignments)."""
    env: dict[str, Any] = {"__object_setattr": object.__setattr__, "__factory_marker": _FACTORY}
    defaults: list[Any] = []
    factories: list[int] = []
    for i, f in enumerate(fields):
        if f.default is not _MISSING:
            defaults.append(f.default)
        elif f.default_factory is not _MISSING:
            env[f"__factory_{i}"] = f.default_factory
            defaults.append(_FACTORY)
            factories.append(i)
        elif defaults:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
    template = _template(len(fields), tuple(factories), frozen=frozen, post_init=post_init)
    real = {_PLACEHOLDER.format(i): f.name for i, f in enumerate(fields)}
    code = template.replace(
        co_varnames=tuple(real.get(n, n) for n in template.co_varnames),
        co_names=tuple(real.get(n, n) for n in template.co_names),
        co_consts=tuple(real.get(c, c) if isinstance(c, str) else c for c in template.co_consts),
    )
    return FunctionType(code, env, "__init__", tuple(defaults) or None)


class _FactoryMarker:
    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _FactoryMarker()


def _set(cls: type, name: str, value: Any, *, own: bool = True) -> None:
    """Set a method the class does not define itself; ``own``: a function made for this class."""
    if name not in cls.__dict__:
        if own:
            value.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, value)


def _tuple_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The compared fields as a tuple, as dataclasses' generated ``__eq__`` and ``__hash__`` build
    it (a tuple also for one field: equality by identity first, the same hash values)."""
    if len(names) >= 2:
        return operator.attrgetter(*names)
    if len(names) == 1:
        one = operator.attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def _eq_and_hash(values: Callable[[Any], tuple[Any, ...]]) -> tuple[Callable[..., Any], Callable[..., int]]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(values(self))

    return __eq__, __hash__


def _repr_for(names: tuple[str, ...]) -> Callable[[Any], str]:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.__class__.__qualname__}({inner})"

    return __repr__


def _frozen_methods(cls: type, names: frozenset[str]) -> tuple[Callable[..., None], Callable[..., None]]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)  # type: ignore[arg-type]

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)  # type: ignore[arg-type]

    return __setattr__, __delattr__


def _with_slots(cls: type, fields: list[dataclasses.Field[Any]]) -> type:
    # As dataclasses' _add_slots: a new class, its fields as slots, their class attributes gone.
    namespace = dict(cls.__dict__)
    inherited = {s for base in cls.__mro__[1:-1] for s in base.__dict__.get("__slots__", ())}
    names = tuple(f.name for f in fields if f.name not in inherited)
    namespace["__slots__"] = names
    for name in names:
        namespace.pop(name, None)
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    qualname = cls.__qualname__
    new = type(cls)(cls.__name__, cls.__bases__, namespace)
    new.__qualname__ = qualname
    return new


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, f.name) for f in dataclasses.fields(self)]


def _setstate(self: Any, state: list[Any]) -> None:
    for f, value in zip(dataclasses.fields(self), state, strict=True):
        object.__setattr__(self, f.name, value)


def _params(*, eq: bool, frozen: bool, slots: bool) -> Any:
    params = dataclasses._DataclassParams  # type: ignore[attr-defined]
    try:  # Python 3.11: init, repr, eq, order, unsafe_hash, frozen
        return params(True, True, eq, False, False, frozen)
    except TypeError:  # 3.12 and later add match_args, kw_only, slots, weakref_slot
        return params(True, True, eq, False, False, frozen, True, False, slots, False)


def _process(cls: type[_T], *, frozen: bool, slots: bool, eq: bool) -> type[_T]:
    fields = _collect(cls)
    defines = cls.__dict__
    if frozen and ("__setattr__" in defines or "__delattr__" in defines):
        raise TypeError(f"cannot overwrite attribute __setattr__ or __delattr__ in class {cls.__name__}")
    # The standard hash rules for unsafe_hash=False: frozen and eq hash the compared fields, eq
    # alone makes instances unhashable, and a __hash__ the class defines itself is kept.
    explicit_hash = "__hash__" in defines and not (defines["__hash__"] is None and "__eq__" in defines)
    hash_fields = eq and frozen and not explicit_hash
    if slots:
        cls = _with_slots(cls, fields)
    cls.__dataclass_fields__ = {f.name: f for f in fields}  # type: ignore[attr-defined]
    cls.__dataclass_params__ = _params(eq=eq, frozen=frozen, slots=slots)  # type: ignore[attr-defined]
    _set(cls, "__init__", _init_function(fields, frozen=frozen, post_init=hasattr(cls, "__post_init__")))
    _set(cls, "__repr__", _repr_for(tuple(f.name for f in fields if f.repr)))
    if eq:
        compared = _tuple_getter(tuple(f.name for f in fields if f.compare))
        eq_method, hash_method = _eq_and_hash(compared)
        _set(cls, "__eq__", eq_method)
        if hash_fields:
            hash_method.__qualname__ = f"{cls.__qualname__}.__hash__"
            cls.__hash__ = hash_method  # type: ignore[method-assign]
        elif not explicit_hash:
            cls.__hash__ = None  # type: ignore[assignment]
    if frozen:
        setter, deleter = _frozen_methods(cls, frozenset(f.name for f in fields))
        _set(cls, "__setattr__", setter)
        _set(cls, "__delattr__", deleter)
        if slots:
            _set(cls, "__getstate__", _getstate, own=False)
            _set(cls, "__setstate__", _setstate, own=False)
    if "__match_args__" not in cls.__dict__:
        setattr(cls, "__match_args__", tuple(f.name for f in fields))  # noqa: B010 - mypy refuses the assignment
    return cls
