"""MLflow's run search language (``studio9.tracking.search``) and its evaluation in Python
(``studio9.tracking.matching``): every identifier type, comparator and quoting, MLflow's error
messages, ``order_by``, page tokens, and the order runs sort in."""

from __future__ import annotations

import base64
import hashlib
import json
import math

import pytest

from studio9.tracking.domain import (
    DATASET_CONTEXT_TAG,
    DatasetInput,
    InvalidTrackingInput,
    Metric,
    Run,
    RunData,
    RunRecord,
    RunStatus,
)
from studio9.tracking.matching import like, matches, page_of, sort_key
from studio9.tracking.search import (
    Comparison,
    EntityType,
    OrderKey,
    decode_page_token,
    encode_page_token,
    parse_filter,
    parse_order_by,
)

METRIC, PARAM, TAG, ATTRIBUTE, DATASET = (
    EntityType.METRIC,
    EntityType.PARAM,
    EntityType.TAG,
    EntityType.ATTRIBUTE,
    EntityType.DATASET,
)


def _one(text: str) -> tuple[EntityType, str, str, object]:
    (comparison,) = parse_filter(text)
    return comparison.entity, comparison.key, comparison.comparator, comparison.value


# -- identifiers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metric.loss < 1", (METRIC, "loss", "<", 1.0)),
        ("metrics.loss <= 1.5", (METRIC, "loss", "<=", 1.5)),
        ("param.p = 'x'", (PARAM, "p", "=", "x")),
        ("params.p != 'x'", (PARAM, "p", "!=", "x")),
        ("parameter.p LIKE 'x%'", (PARAM, "p", "LIKE", "x%")),
        ("parameters.p ILIKE 'X%'", (PARAM, "p", "ILIKE", "X%")),
        ("tag.t = 'v'", (TAG, "t", "=", "v")),
        ("tags.t = 'v'", (TAG, "t", "=", "v")),
        ("attribute.status = 'FAILED'", (ATTRIBUTE, "status", "=", "FAILED")),
        ("attributes.run_name = 'a'", (ATTRIBUTE, "run_name", "=", "a")),
        ("attr.user_id = 'ada'", (ATTRIBUTE, "user_id", "=", "ada")),
        ("run.artifact_uri LIKE 's3://%'", (ATTRIBUTE, "artifact_uri", "LIKE", "s3://%")),
        ("status = 'RUNNING'", (ATTRIBUTE, "status", "=", "RUNNING")),
        ("start_time > 5", (ATTRIBUTE, "start_time", ">", 5)),
        ("end_time >= 5.5", (ATTRIBUTE, "end_time", ">=", 5.5)),
        ("created = 7", (ATTRIBUTE, "start_time", "=", 7)),
        ("Created != 7", (ATTRIBUTE, "start_time", "!=", 7)),
        ("`run name` = 'a'", (ATTRIBUTE, "run_name", "=", "a")),
        ("attributes.`Run Name` = 'a'", (ATTRIBUTE, "run_name", "=", "a")),
        ("attributes.\"Run name\" = 'a'", (ATTRIBUTE, "run_name", "=", "a")),
        ("dataset.name = 'train'", (DATASET, "name", "=", "train")),
        ("datasets.digest IN ('a', 'b')", (DATASET, "digest", "IN", ("a", "b"))),
        ("dataset.context NOT IN ('eval')", (DATASET, "context", "NOT IN", ("eval",))),
    ],
)
def test_identifier_types_and_aliases(text: str, expected: tuple[object, ...]) -> None:
    assert _one(text) == expected


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("metrics.`my metric` > 0", "my metric"),
        ('metrics."my metric" > 0', "my metric"),
        ("metrics.`a-b/c:d` > 0", "a-b/c:d"),
        ("metrics.train.loss > 0", "train.loss"),
        ("`metrics`.loss > 0", "loss"),
        ("metrics.`it's` > 0", "it's"),
    ],
)
def test_quoted_and_dotted_keys(text: str, key: str) -> None:
    assert _one(text)[1] == key


# -- values and comparators -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("metrics.m = -1", -1.0),
        ("metrics.m = +2.5", 2.5),
        ("metrics.m = .5", 0.5),
        ("metrics.m = 1e-3", 0.001),
        ("metrics.m = 2E3", 2000.0),
        ("start_time = -3", -3),
        ("end_time = 1.5", 1.5),
        ("params.p = 'it''s'", "it's"),
        ("params.p = 'it\\'s'", "it's"),
        ('params.p = "double"', "double"),
        ("params.p = ''", ""),
        ("params.p = 'and or = <'", "and or = <"),
    ],
)
def test_values(text: str, value: object) -> None:
    found = _one(text)[3]
    assert (found, type(found)) == (value, type(value))


def test_keywords_are_case_insensitive() -> None:
    comparisons = parse_filter(
        "params.a like 'x' AnD tags.b ilike 'y' and params.c is not null and tags.d Is Null"
    )
    assert [c.comparator for c in comparisons] == ["LIKE", "ILIKE", "IS NOT NULL", "IS NULL"]
    assert [c.value for c in comparisons] == ["x", "y", None, None]


def test_in_lists() -> None:
    assert _one("run_id IN ('a','b' , \"c\")") == (ATTRIBUTE, "run_id", "IN", ("a", "b", "c"))
    assert _one("attributes.run_id not in ('a')") == (ATTRIBUTE, "run_id", "NOT IN", ("a",))


def test_a_conjunction_keeps_its_order() -> None:
    assert parse_filter("metrics.a > 1 and params.b = 'x' AND tags.c != 'y'") == (
        Comparison(entity=METRIC, key="a", comparator=">", value=1.0),
        Comparison(entity=PARAM, key="b", comparator="=", value="x"),
        Comparison(entity=TAG, key="c", comparator="!=", value="y"),
    )


@pytest.mark.parametrize("text", ["", "   ", None])
def test_an_empty_filter_has_no_comparisons(text: str | None) -> None:
    assert parse_filter(text) == ()


ENTITY_TYPES = "['metric', 'parameter', 'tag', 'attribute', 'dataset']"
ATTRIBUTE_KEYS = (
    "['Created', 'Run Name', 'Run name', 'artifact_uri', 'created', 'end_time', 'run name', 'run_id', "
    "'run_name', 'start_time', 'status', 'user_id']"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.a > 1 or metrics.b < 2", "Invalid clause(s) in filter string: 'or'"),
        ("metrics.a > 1 OR metrics.b < 2", "Invalid clause(s) in filter string: 'OR'"),
        ("foo.a = 1", f"Invalid entity type 'foo'. Valid values are {ENTITY_TYPES}"),
        (
            "attributes.nope = 'x'",
            f"Invalid attribute key 'nope' specified. Valid keys are '{ATTRIBUTE_KEYS}'",
        ),
        (
            "dataset.size = 'x'",
            "Invalid dataset key 'size' specified. Valid keys are '['context', 'digest', 'name']'",
        ),
        ("params.p = 1", "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 1"),
        ("tags.t = 2", "Expected a quoted string value for tag (e.g. 'my-value'). Got value 2"),
        ("metrics.m = 'x'", "Expected numeric value type for metric. Found 'x'"),
        ("start_time > 'x'", "Expected numeric value type for numeric attribute: start_time. Found 'x'"),
        ("status = RUNNING", "Expected a quoted string value for attributes. Got value RUNNING"),
        ("dataset.name = 3", "Expected a quoted string value for dataset attributes. Got value 3"),
        ("metrics.m LIKE 1", "Invalid comparator 'LIKE' not one of '['!=', '<', '<=', '=', '>', '>=']'"),
        ("start_time IN ('1')", "Invalid comparator 'IN' not one of '['!=', '<', '<=', '=', '>', '>=']'"),
        (
            "params.p > 'x'",
            "Invalid comparator '>' not one of '['!=', '=', 'ILIKE', 'IS NOT NULL', 'IS NULL', 'LIKE']'",
        ),
        (
            "status < 'x'",
            "Invalid comparator '<' not one of '['!=', '=', 'ILIKE', 'IN', 'LIKE', 'NOT IN']'",
        ),
        (
            "run_name IN ('a')",
            "Only ['run_id'] attributes support comparison with a list of quoted string values.",
        ),
        (
            "metrics.m IS NULL",
            "IS NULL / IS NOT NULL is only supported for tags and params, not for 'metric' 'm'",
        ),
        (
            "run_id IN ()",
            "While parsing a list in the query, expected a non-empty list of string values, but got "
            "empty list",
        ),
        (
            "run_id IN ('a' 'b')",
            "While parsing a list in the query, expected a non-empty list of string values, but got "
            "ill-formed list.",
        ),
        ("run_id IN 'a'", "Invalid comparison clause. Expected a list of quoted strings found ''a''"),
        ("metrics.m", "Invalid clause(s) in filter string: 'metrics.m'"),
        ("metrics.m >", "Invalid comparison clause. Expected value token found ''"),
        ("metrics.m > 1 and", "Invalid comparison clause. Expected 'Identifier' found ''"),
        ("'x' = 'y'", "Invalid comparison clause. Expected 'Identifier' found ''x''"),
        ("metrics.m ~ 1", "Invalid clause(s) in filter string: '~ 1'"),
        ("params.p IS 'x'", "Invalid comparison clause. Expected comparison found 'IS'"),
        (
            "params.p == 'x'",
            "Invalid comparator '==' not one of '['!=', '=', 'ILIKE', 'IS NOT NULL', 'IS NULL', 'LIKE']'",
        ),
    ],
)
def test_errors_carry_mlflows_messages(text: str, message: str) -> None:
    with pytest.raises(InvalidTrackingInput) as info:
        parse_filter(text)
    assert info.value.message == message
    assert info.value.code == "INVALID_PARAMETER_VALUE"


# -- order_by ---------------------------------------------------------------------------------------


def test_order_by() -> None:
    assert parse_order_by(
        ["metrics.loss", "params.`a b` DESC", 'tags."t" asc', "created desc", "attributes.run_name"]
    ) == (
        OrderKey(entity=METRIC, key="loss", ascending=True),
        OrderKey(entity=PARAM, key="a b", ascending=False),
        OrderKey(entity=TAG, key="t", ascending=True),
        OrderKey(entity=ATTRIBUTE, key="start_time", ascending=False),
        OrderKey(entity=ATTRIBUTE, key="run_name", ascending=True),
    )
    assert parse_order_by([]) == parse_order_by(None) == ()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["metrics.loss DOWN"], "Invalid ordering key in order_by clause 'metrics.loss DOWN'."),
        (["metrics.loss ASC DESC"], "Invalid order_by clause 'metrics.loss ASC DESC'. Could not be parsed."),
        ([""], "Invalid order_by clause ''. Could not be parsed."),
        (["'loss'"], "Invalid order_by clause ''loss''. Could not be parsed."),
        (["dataset.name"], "Invalid order_by entity type 'dataset'"),
        (["nope"], f"Invalid attribute key 'nope' specified. Valid keys are '{ATTRIBUTE_KEYS}'"),
        (
            ["start_time", "created DESC"],
            "`order_by` contains duplicate fields: ['start_time', 'created DESC']",
        ),
    ],
)
def test_order_by_errors(entries: list[str], message: str) -> None:
    with pytest.raises(InvalidTrackingInput) as info:
        parse_order_by(entries)
    assert info.value.message == message


# -- page tokens ------------------------------------------------------------------------------------


def test_page_tokens_are_mlflows() -> None:
    assert encode_page_token(1) == "eyJvZmZzZXQiOiAxfQ=="  # what MLflow's server sends
    assert decode_page_token(encode_page_token(12345)) == 12345
    assert decode_page_token(None) == decode_page_token("") == 0
    assert decode_page_token(base64.b64encode(b'{"offset": "7"}').decode()) == 7


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not base64!", "Invalid page token, could not base64-decode"),
        ("é", "Invalid page token, could not base64-decode"),
        (base64.b64encode(b"not json").decode(), "Invalid page token, decoded value=b'not json'"),
        (base64.b64encode(b'{"x": 1}').decode(), "Invalid page token, parsed value={'x': 1}"),
        (base64.b64encode(b'{"offset": -1}').decode(), "Invalid page token, parsed value={'offset': -1}"),
        (base64.b64encode(b"[1]").decode(), "Invalid page token, parsed value=[1]"),
    ],
)
def test_bad_page_tokens(token: str, message: str) -> None:
    with pytest.raises(InvalidTrackingInput) as info:
        decode_page_token(token)
    assert info.value.message == message


def test_page_of() -> None:
    items = list(range(7))
    first, token = page_of(items, None, 3)
    assert (first, json.loads(base64.b64decode(token or ""))) == ([0, 1, 2], {"offset": 3})
    second, token = page_of(items, token, 3)
    third, last = page_of(items, token, 3)
    assert (second, third, last) == ([3, 4, 5], [6], None)
    assert page_of(items, None, 7) == (items, None)


# -- evaluation -------------------------------------------------------------------------------------


def _record(
    name: str,
    *,
    start: int | None = 10,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    inputs: tuple[DatasetInput, ...] = (),
    run_id: str | None = None,
    end: int | None = None,
) -> RunRecord:
    run = Run(
        id=run_id or hashlib.md5(name.encode()).hexdigest(),
        experiment_id="e",
        name=name,
        owner_id="o",
        user_name="ada",
        status=RunStatus.FINISHED,
        start_time=start,
        end_time=end,
        artifact_uri=f"s3://b/{name}",
    )
    data = RunData(
        params=params or {},
        tags=tags or {},
        metrics={k: Metric(k, v, 0, 0) for k, v in (metrics or {}).items()},
    )
    return RunRecord(run=run, data=data, inputs=inputs)


def test_like_has_no_escape_character() -> None:
    assert like("a%b", "a%b") and like("axxb", "a%b") and like("a\nb", "a%")
    assert like("a.b", "a_b") and not like("ab", "a_b")
    assert like("a\\b", "a\\b") and not like("a\\b", "A\\B")
    assert like("A\\B", "a\\b", case_sensitive=False)
    assert like("a*b?[c]", "a*b?[c]") and not like("axb", "a*b")


def test_matches() -> None:
    train = DatasetInput(name="train", digest="d1", tags={DATASET_CONTEXT_TAG: "training"})
    record = _record(
        "Run-1",
        metrics={"loss": 0.5, "nan": math.nan},
        params={"p": "Tree"},
        tags={"t": "x"},
        inputs=(train, DatasetInput(name="other", digest="d2")),
        end=None,
    )

    def holds(text: str) -> bool:
        return matches(record, parse_filter(text))

    assert holds("metrics.loss < 1 and params.p = 'Tree' and tags.t != 'y'")
    assert not holds("metrics.missing < 1")
    assert holds("metrics.nan != 1") and not holds("metrics.nan = 1") and not holds("metrics.nan < 1")
    assert holds("params.p LIKE 'T%'") and not holds("params.p LIKE 't%'") and holds("params.p ILIKE 't%'")
    assert holds("params.q IS NULL") and not holds("params.p IS NULL") and holds("tags.t IS NOT NULL")
    assert not holds("params.q != 'x'")  # a run without the param never matches but IS NULL
    assert holds("run_name = 'Run-1'") and holds("status = 'FINISHED'") and holds("user_id = 'ada'")
    assert holds(f"run_id IN ('{record.run.id}', 'x')") and not holds(f"run_id NOT IN ('{record.run.id}')")
    assert holds("start_time = 10") and not holds("end_time != 3")  # no end time: never matches
    assert holds("dataset.name = 'other'") and holds("dataset.context = 'training'")
    assert not holds("dataset.context != 'training'")  # the other input has no context
    assert holds("artifact_uri LIKE 's3://%'")
    assert matches(record, ())


def test_sort_key_puts_missing_last_and_nan_after_numbers_both_ways() -> None:
    runs = [
        _record("none", run_id="0" * 32),
        _record("nan", metrics={"m": math.nan}, run_id="1" * 32),
        _record("low", metrics={"m": -math.inf}, run_id="2" * 32),
        _record("high", metrics={"m": 3.0}, run_id="3" * 32),
    ]
    for ascending, expected in (
        (True, ["low", "high", "nan", "none"]),
        (False, ["high", "low", "nan", "none"]),
    ):
        order = (OrderKey(entity=METRIC, key="m", ascending=ascending),)
        assert [r.run.name for r in sorted(runs, key=lambda r: sort_key(r, order))] == expected


def test_sort_key_tiebreaks() -> None:
    runs = [
        _record("b-early", start=1, run_id="b" * 32),
        _record("a-late", start=5, run_id="a" * 32),
        _record("c-late", start=5, run_id="c" * 32),
        _record("no-start", start=None, run_id="0" * 32),
    ]
    assert [r.run.name for r in sorted(runs, key=lambda r: sort_key(r, ()))] == [
        "a-late",
        "c-late",
        "b-early",
        "no-start",
    ]
    by_start = (OrderKey(entity=ATTRIBUTE, key="start_time", ascending=True),)
    assert [r.run.name for r in sorted(runs, key=lambda r: sort_key(r, by_start))] == [
        "b-early",
        "a-late",
        "c-late",
        "no-start",
    ]
    by_param = (OrderKey(entity=PARAM, key="p", ascending=False),)
    with_params = [*runs[:2], _record("B", params={"p": "B"}), _record("a", params={"p": "a"})]
    assert [r.run.name for r in sorted(with_params, key=lambda r: sort_key(r, by_param))] == [
        "a",  # code point order: 'a' > 'B'
        "B",
        "a-late",
        "b-early",
    ]
