"""The pull's fast path (`provider_content`) must equal the model path (validate, dump, normalize)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from gateway.models import ContactInput, _accepts, _lenient, content_of, normalize, provider_content
from gateway.plain_schema import typed_dict_of
from providers.base import RemoteContact

text = st.one_of(st.none(), st.just(""), st.text(max_size=6), st.text(min_size=257, max_size=260))
kind = st.one_of(st.none(), st.sampled_from(["work", "home", "mobile", "other", "bogus", ""]))
email = st.one_of(st.sampled_from(["a@b.c", "ann@example.com", "no-at-sign", "", "x@"]), st.none())


def _obj(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


contact_data = _obj({
    "name": _obj({"displayName": text, "givenName": text, "familyName": text, "nickname": text}),
    "company": st.one_of(st.none(), _obj({"companyName": text, "jobTitle": text})),
    "emailAddresses": st.lists(_obj({"address": email, "type": kind, "name": text}), max_size=4),
    "phoneNumbers": st.one_of(st.lists(_obj({"number": text, "type": kind}), max_size=3),
                              st.lists(st.just({"number": "1"}), min_size=51, max_size=52)),
    "addresses": st.lists(_obj({"street": text, "city": text, "type": kind}), max_size=3),
    "notes": text,
    "birthday": st.one_of(st.none(), st.sampled_from(["1990-01-02", "--12-31", "1990-13-01", ""])),
    "keywords": st.lists(st.one_of(st.just(""), st.text(min_size=1, max_size=4)), max_size=3),
    "attributes": st.lists(_obj({"name": text, "value": text}), max_size=2),
})


def _model_path(data: dict[str, Any]) -> dict[str, Any]:
    try:
        model = ContactInput.model_validate(data)
    except ValidationError:
        model = _lenient(data)
    return content_of(model)


@settings(max_examples=400, deadline=None)
@given(contact_data)
def test_fast_path_equals_model_path(data: dict[str, Any]) -> None:
    content = provider_content(data)
    assert content == _model_path(data)
    assert content_of(ContactInput.model_validate(content)) == content  # content is valid and already normal


@settings(max_examples=400, deadline=None)
@given(contact_data)
def test_plain_validation_accepts_what_the_model_accepts(data: dict[str, Any]) -> None:
    try:
        ContactInput.model_validate(data)
    except ValidationError:
        assert not _accepts(data)
    else:
        assert _accepts(data)


def _without_defaults(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_defaults(v) for k, v in schema.items() if k != "default"}
    if isinstance(schema, list):
        return [_without_defaults(v) for v in schema]
    return schema


def test_plain_schema_is_the_models_schema() -> None:
    """Bounds, patterns, enums, required fields and extra="forbid", nested objects included.

    The models' None defaults are the only difference: a TypedDict's optional key has none.
    """
    plain = TypeAdapter(typed_dict_of(ContactInput)).json_schema()
    model = ContactInput.model_json_schema()
    assert "required" in plain["$defs"]["EmailAddress"] and plain["additionalProperties"] is False
    assert plain == _without_defaults(model)


def test_normalize_drops_every_kind_of_empty() -> None:
    data = {"name": {"givenName": "", "familyName": None}, "notes": "", "keywords": [], "company": {},
            "addresses": [{"street": ""}, {}, {"city": "Oslo", "state": None}], "birthday": None}
    assert normalize(data) == {"addresses": [{"city": "Oslo"}]}


def test_remote_contact_gives_model_or_content_either_way() -> None:
    content = {"name": {"givenName": "Ann"}, "emailAddresses": [{"address": "ann@example.com"}]}
    by_content = RemoteContact("n1", "v1", content=content)
    by_model = RemoteContact("n1", "v1", ContactInput.model_validate(content))
    assert by_content.contact == ContactInput.model_validate(content)
    assert by_model.content == content
    assert by_content == by_model
    assert RemoteContact("n1", deleted=True).content is None
