"""A pydantic model's schema as TypedDicts: validates plain dicts without building model instances.

Every pulled contact is validated once (gateway.models.provider_content). Validating into nested model
instances that are thrown away at once costs about three times as much as validating the same data
against TypedDicts with the same constraints, and the pull only wants to know "valid or not". The
TypedDicts are derived from the model, field by field (constraints, required fields, extra="forbid"),
so there is one schema; tests check that both describe the same JSON Schema.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Required, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict
from typing_extensions import TypedDict


def typed_dict_of(model: type[BaseModel]) -> Any:
    """A TypedDict with `model`'s fields, constraints and extra-field policy (nested models likewise)."""
    return _typed_dict(model, {})


def _typed_dict(model: type[BaseModel], made: dict[type[BaseModel], Any]) -> Any:
    if model not in made:
        fields: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            annotation = _plain(info.annotation, made)
            if info.metadata:  # a top-level Annotated's constraints, which pydantic moves into the FieldInfo
                annotation = Annotated[(annotation, *info.metadata)]  # type: ignore[valid-type]
            fields[name] = Required[annotation] if info.is_required() else annotation
        shape = TypedDict(model.__name__, fields, total=False)  # type: ignore[misc]
        shape.__doc__ = model.__doc__
        shape.__pydantic_config__ = ConfigDict(extra=model.model_config.get("extra"))  # type: ignore[attr-defined]
        made[model] = shape
    return made[model]


def _plain(annotation: Any, made: dict[type[BaseModel], Any]) -> Any:
    """`annotation` with every model in it replaced by its TypedDict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _typed_dict(annotation, made)
    origin = get_origin(annotation)
    if origin is Annotated:
        return Annotated[(_plain(annotation.__origin__, made), *annotation.__metadata__)]
    if origin in (Union, types.UnionType):
        return Union[tuple(_plain(arg, made) for arg in get_args(annotation))]  # noqa: UP007 (built at run time)
    if origin is list:
        return list[_plain(get_args(annotation)[0], made)]  # type: ignore[misc]
    return annotation
