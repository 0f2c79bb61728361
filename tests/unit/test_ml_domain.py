"""The model registry's domain: model references, alias rules, the registry's errors."""

from __future__ import annotations

import re

import pytest

from studio9.errors import Conflict, InvalidInput, NotFound
from studio9.ml.domain import (
    ALIAS_PATTERN,
    AliasInUse,
    AliasNotFound,
    InvalidModelRef,
    ModelNotFound,
    ModelRef,
    ModelVersionNotFound,
    check_alias,
    check_version_tags,
    parse_model_ref,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("churn", ModelRef(name="churn")),
        ("churn@champion", ModelRef(name="churn", alias="champion")),
        ("churn/3", ModelRef(name="churn", version=3)),
        ("ada/churn", ModelRef(owner="ada", name="churn")),
        ("ada/churn@champion", ModelRef(owner="ada", name="churn", alias="champion")),
        ("ada/churn/12", ModelRef(owner="ada", name="churn", version=12)),
        ("  churn v2/3 ", ModelRef(name="churn v2", version=3)),
        ("ventes été@best_2", ModelRef(name="ventes été", alias="best_2")),
        ("a@b@c-1", ModelRef(name="a@b", alias="c-1")),  # the last '@' starts the alias
        ("a@b/4", ModelRef(name="a@b", version=4)),
        ("churn@latest", ModelRef(name="churn")),
        ("ada/2024@LATEST", ModelRef(owner="ada", name="2024")),
        ("ada/2024", ModelRef(name="ada", version=2024)),  # a trailing /<digits> is a version
        ("2024", ModelRef(name="2024")),
    ],
)
def test_parse_model_ref(text: str, expected: ModelRef) -> None:
    assert parse_model_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("churn", "churn"),
        ("churn@champion", "churn@champion"),
        (" ada/churn/03", "ada/churn/3"),
        ("churn@latest", "churn"),
        ("a@b@latest", "a@b@latest"),
        ("ada/2024@latest", "ada/2024@latest"),
        ("a@b/4", "a@b/4"),
    ],
)
def test_str_gives_the_canonical_text_back(text: str, canonical: str) -> None:
    ref = parse_model_ref(text)
    assert str(ref) == canonical
    assert parse_model_ref(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "model name"),
        ("a/b/c/d", "too many '/'"),
        ("ada/churn/v3", "'v3' is not a version number"),
        ("churn/0", "versions start at 1"),
        ("Ada/churn", "'Ada' is not a user name"),
        ("churn@", "1-255 letters"),
        ("churn@v3", "reserved for version numbers"),
        ("churn@two words", "1-255 letters"),
        ("@champion", "model name"),
        ("ada/", "model name"),
        ("/3", "model name"),
    ],
)
def test_bad_references_name_the_problem_and_the_accepted_forms(text: str, reason: str) -> None:
    with pytest.raises(InvalidModelRef) as info:
        parse_model_ref(text)
    assert isinstance(info.value, InvalidInput)
    assert reason in info.value.message
    assert "name@alias, name/version" in info.value.message
    assert info.value.details["field"] == "model"


@pytest.mark.parametrize("alias", ["champion", "challenger", "A-b_9", "v", "v1a", "latest2", "x" * 255])
def test_usable_aliases(alias: str) -> None:
    assert check_alias(alias) == alias
    assert ALIAS_PATTERN.fullmatch(alias)


@pytest.mark.parametrize(
    ("alias", "reason"),
    [
        ("latest", "'latest' is reserved"),
        ("Latest", "'latest' is reserved"),
        ("v3", "reserved for version numbers"),
        ("V12", "reserved for version numbers"),
        ("", "1-255 letters"),
        ("x" * 256, "1-255 letters"),
        ("two words", "1-255 letters"),
        ("café", "1-255 letters"),
        ("a/b", "1-255 letters"),
    ],
)
def test_unusable_aliases(alias: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_alias(alias)
    assert reason in info.value.message
    assert info.value.details["field"] == "alias"
    assert not ALIAS_PATTERN.fullmatch(alias)


def test_alias_pattern_reads_the_same_as_an_ecmascript_pattern() -> None:
    anchored = re.compile(f"^{ALIAS_PATTERN.pattern}$")
    for alias in ("champion", "latest", "v3", "v3x", "bad alias"):
        assert bool(anchored.match(alias)) == bool(ALIAS_PATTERN.fullmatch(alias))


def test_alias_in_use_names_the_aliases() -> None:
    error = AliasInUse("churn", 3, ["champion", "challenger"])
    assert isinstance(error, Conflict)
    assert error.aliases == ("champion", "challenger")
    assert error.message == (
        "version 3 of 'churn' is still aliased as champion, challenger: move or delete the aliases first"
    )
    whole = AliasInUse("churn", None, ["champion"])
    assert whole.message == "'churn' is still aliased as champion: move or delete the aliases first"


def test_not_found_errors() -> None:
    assert isinstance(ModelNotFound("churn"), NotFound)
    assert ModelVersionNotFound("churn", 4).message == "model 'churn' has no version 4"
    assert AliasNotFound("churn", "champion").message == "model 'churn' has no alias 'champion'"


def test_version_tags_are_limited() -> None:
    assert check_version_tags({"team": "risk"}) == {"team": "risk"}
    with pytest.raises(InvalidInput, match="at most 50 tags"):
        check_version_tags({f"k{i}": "v" for i in range(51)})
    with pytest.raises(InvalidInput, match="tag key"):
        check_version_tags({"": "v"})
    with pytest.raises(InvalidInput, match="text value"):
        check_version_tags({"k": "v" * 5001})
