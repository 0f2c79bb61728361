"""Input schemas and online rows (studio9.ml.schema): every rule of rows_to_frame, and that a frame
built from JSON rows gets exactly the predictions of the table's own frame."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from studio9.errors import InvalidInput
from studio9.ml.engine.candidates import Candidate
from studio9.ml.engine.search import make_pipeline
from studio9.ml.schema import (
    MAX_ROWS,
    ColumnSpec,
    rows_to_frame,
    schema_from_json,
    schema_of,
    schema_to_json,
)

SCHEMA = (
    ColumnSpec("age", "integer", False),
    ColumnSpec("income", "float", False),
    ColumnSpec("member", "boolean", False),
    ColumnSpec("city", "string", False),
    ColumnSpec("seen", "timestamp", False),
    ColumnSpec("joined", "date", False),
)
ROW: dict[str, Any] = {
    "age": 41,
    "income": 52.5,
    "member": True,
    "city": "oslo",
    "seen": "2024-05-01T12:30:00",
    "joined": "2023-02-03",
}


def _error(rows: Any, schema: Any = SCHEMA) -> str:
    with pytest.raises(InvalidInput) as refused:
        rows_to_frame(schema, rows)
    return str(refused.value)


def _one(column: str, value: Any, *, nullable: bool = False) -> Any:
    """The cell ``rows_to_frame`` makes of ``value`` in a ``column`` of ``SCHEMA``'s type."""
    spec = next(c for c in SCHEMA if c.name == column)
    frame = rows_to_frame([ColumnSpec(column, spec.type, nullable)], [{column: value}])
    return frame[column].iloc[0]


# -- the schema itself -------------------------------------------------------------------------


def test_a_schema_round_trips_through_json() -> None:
    stored = schema_to_json(SCHEMA)
    assert stored[0] == {"name": "age", "type": "integer", "nullable": False}
    assert schema_from_json(stored) == SCHEMA


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"name": "age", "type": "decimal", "nullable": False}, "column type 'decimal' is not one of"),
        ({"type": "integer"}, "an input schema column needs a name"),
        (
            {"name": "age", "type": "integer", "nullable": "no"},
            "column 'age': nullable must be true or false",
        ),
    ],
)
def test_a_bad_stored_column_is_refused(item: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ColumnSpec.from_json(item)


def test_a_schema_naming_a_column_twice_is_refused() -> None:
    with pytest.raises(InvalidInput, match="names a column twice"):
        schema_from_json([SCHEMA[0].to_json(), SCHEMA[0].to_json()])


def test_schema_of_types_every_column_kind_of_a_table_frame() -> None:
    frame = _table_frame()
    schema = schema_of(frame, FEATURES)
    assert [(c.name, c.type, c.nullable) for c in schema] == [
        ("age", "integer", False),
        ("income", "float", True),
        ("member", "boolean", False),
        ("city", "string", True),
        ("plan", "string", False),
        ("seen", "timestamp", False),
        ("seen_utc", "timestamp", True),
        ("joined", "date", True),
    ]


def test_schema_of_refuses_a_missing_or_unusable_feature() -> None:
    frame = pd.DataFrame({"age": [1, 2], "wait": pd.to_timedelta([1, 2], unit="s")})
    with pytest.raises(InvalidInput, match="feature 'height' is not a column"):
        schema_of(frame, ["age", "height"])
    with pytest.raises(InvalidInput, match="feature 'wait' has dtype timedelta64"):
        schema_of(frame, ["wait"])


# -- rows_to_frame: the request as a whole -----------------------------------------------------


def test_a_row_becomes_a_frame_of_the_schema_columns_in_order_and_dtypes() -> None:
    frame = rows_to_frame(SCHEMA, [{**ROW, "extra": "ignored"}, ROW])

    assert list(frame.columns) == [c.name for c in SCHEMA]
    assert [str(t) for t in frame.dtypes] == [
        "float64",
        "float64",
        "float64",
        "object",
        "datetime64[us]",
        "object",
    ]
    assert frame.iloc[0].tolist() == [
        41.0,
        52.5,
        1.0,
        "oslo",
        pd.Timestamp("2024-05-01 12:30"),
        dt.date(2023, 2, 3),
    ]
    assert len(frame) == 2
    assert list(frame.index) == [0, 1]


def test_rows_must_be_a_non_empty_list_of_objects() -> None:
    assert _error([]) == "rows is empty: send at least one row to predict"
    assert _error({"age": 3}) == "rows must be a list of objects, one per row to predict"
    assert _error("age") == "rows must be a list of objects, one per row to predict"
    assert _error([ROW, ["age", 3]]) == "rows[1]: expected an object, got a list"


def test_more_rows_than_the_limit_are_refused_naming_it() -> None:
    assert MAX_ROWS == 10_000
    assert len(rows_to_frame(SCHEMA, [ROW] * MAX_ROWS)) == MAX_ROWS
    message = _error([ROW] * (MAX_ROWS + 1))
    assert message.startswith("10,001 rows is more than the 10,000 one prediction takes")


def test_a_missing_column_names_the_first_row_without_it() -> None:
    without_age = {k: v for k, v in ROW.items() if k != "age"}
    without_city = {k: v for k, v in ROW.items() if k != "city"}
    assert _error([ROW, ROW, ROW, without_age, without_city]) == "rows[3]: column 'age' is missing"
    assert _error([ROW, without_city, without_age]) == "rows[1]: column 'city' is missing"


def test_a_missing_column_is_refused_even_where_null_is_allowed() -> None:
    schema = [ColumnSpec("income", "float", True)]
    assert _error([{}], schema) == "rows[0]: column 'income' is missing"


def test_the_first_offending_cell_is_named_by_row_and_column() -> None:
    rows = [ROW, ROW, {**ROW, "income": "abc"}, {**ROW, "age": "x"}]
    assert _error(rows) == "rows[2].income: expected a number, got 'abc'"


def test_a_column_name_that_is_not_an_identifier_is_quoted() -> None:
    schema = [ColumnSpec("unit price", "float", False)]
    assert _error([{"unit price": "1.5"}], schema) == "rows[0]['unit price']: expected a number, got '1.5'"


def test_a_long_text_value_is_shortened_in_the_message() -> None:
    message = _error([{**ROW, "age": "x" * 500}])
    assert message == f"rows[0].age: expected an integer, got '{'x' * 37}...'"


# -- rows_to_frame: the value rules of each type -----------------------------------------------


@pytest.mark.parametrize(("value", "cell"), [(41, 41.0), (41.0, 41.0), (-3, -3.0), (2**40, float(2**40))])
def test_integer_takes_ints_and_integral_floats(value: Any, cell: float) -> None:
    assert _one("age", value) == cell


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (41.5, "41.5"),
        ("41", "'41'"),
        (True, "true"),
        ([41], "a list"),
        ({"v": 1}, "an object"),
        (math.inf, "inf"),
    ],
)
def test_integer_refuses_everything_else(value: Any, shown: str) -> None:
    assert _error([{**ROW, "age": value}]) == f"rows[0].age: expected an integer, got {shown}"


@pytest.mark.parametrize(("value", "cell"), [(52.5, 52.5), (52, 52.0), (0, 0.0)])
def test_float_takes_ints_and_floats(value: Any, cell: float) -> None:
    assert _one("income", value) == cell


@pytest.mark.parametrize(("value", "shown"), [("52.5", "'52.5'"), (False, "false"), (10**400, "1000000000")])
def test_float_refuses_text_booleans_and_numbers_out_of_range(value: Any, shown: str) -> None:
    assert _error([{**ROW, "income": value}]).startswith(f"rows[0].income: expected a number, got {shown}")


@pytest.mark.parametrize(("value", "cell"), [(True, 1.0), (False, 0.0)])
def test_boolean_takes_true_and_false_as_numbers(value: bool, cell: float) -> None:
    assert _one("member", value) == cell


@pytest.mark.parametrize(("value", "shown"), [(1, "1"), ("true", "'true'"), (0.0, "0.0")])
def test_boolean_refuses_everything_else(value: Any, shown: str) -> None:
    assert _error([{**ROW, "member": value}]) == f"rows[0].member: expected true or false, got {shown}"


def test_string_takes_text_only() -> None:
    assert _one("city", "lima") == "lima"
    assert _one("city", "") == ""
    assert _error([{**ROW, "city": 5}]) == "rows[0].city: expected a string, got 5"
    assert _error([{**ROW, "city": False}]) == "rows[0].city: expected a string, got false"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("2024-05-01T12:30:00", "2024-05-01 12:30:00"),
        ("2024-05-01 12:30:00.123456", "2024-05-01 12:30:00.123456"),
        ("2024-05-01T12:30:00+02:00", "2024-05-01 10:30:00"),  # converted to UTC
        ("2024-05-01T12:30:00Z", "2024-05-01 12:30:00"),
        ("2024-05-01", "2024-05-01 00:00:00"),
        (dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))), "2024-05-01 17:30:00"),
    ],
)
def test_timestamp_takes_iso_text_in_utc(value: Any, cell: str) -> None:
    assert _one("seen", value) == pd.Timestamp(cell)


@pytest.mark.parametrize(("value", "shown"), [("yesterday", "'yesterday'"), (1714566600, "1714566600")])
def test_timestamp_refuses_other_text_and_numbers(value: Any, shown: str) -> None:
    assert _error([{**ROW, "seen": value}]) == f"rows[0].seen: expected an ISO 8601 timestamp, got {shown}"


def test_date_takes_an_iso_date_only() -> None:
    assert _one("joined", "2023-02-03") == dt.date(2023, 2, 3)
    assert _one("joined", dt.date(2023, 2, 3)) == dt.date(2023, 2, 3)
    for value, shown in [("2023-02-03T10:00:00", "'2023-02-03T10:00:00'"), ("03/02/2023", "'03/02/2023'")]:
        assert _error([{**ROW, "joined": value}]) == f"rows[0].joined: expected an ISO 8601 date, got {shown}"
    assert _error([{**ROW, "joined": dt.datetime(2023, 2, 3)}]).endswith("got a datetime")


@pytest.mark.parametrize("column", ["age", "income"])
def test_null_is_taken_in_a_number_column_even_when_training_saw_none(column: str) -> None:
    assert math.isnan(_one(column, None, nullable=False))


@pytest.mark.parametrize(
    ("column", "word"),
    [
        ("member", "true or false"),
        ("city", "a string"),
        ("seen", "an ISO 8601 timestamp"),
        ("joined", "an ISO 8601 date"),
    ],
)
def test_null_elsewhere_is_taken_only_where_the_column_is_nullable(column: str, word: str) -> None:
    assert _error([{**ROW, column: None}]) == f"rows[0].{column}: expected {word}, got null"
    cell = _one(column, None, nullable=True)
    assert cell is None if column == "joined" else pd.isna(cell)


def test_nulls_become_what_a_table_frame_holds() -> None:
    nullable = [ColumnSpec(c.name, c.type, True) for c in SCHEMA]
    frame = rows_to_frame(nullable, [{c.name: None for c in SCHEMA}, ROW])
    first = frame.iloc[0]
    assert math.isnan(first["age"]) and math.isnan(first["member"])
    assert isinstance(first["city"], float) and math.isnan(first["city"])  # NaN, as in a str column
    assert first["seen"] is pd.NaT
    assert first["joined"] is None
    assert [str(t) for t in frame.dtypes] == [
        "float64",
        "float64",
        "float64",
        "object",
        "datetime64[us]",
        "object",
    ]


# -- online rows predict what batch scoring predicts -------------------------------------------

FEATURES = ["age", "income", "member", "city", "plan", "seen", "seen_utc", "joined"]


def _table_frame(rows: int = 150) -> pd.DataFrame:
    """A frame as a table gives it (pyarrow -> pandas): int64, float64 with NaN, bool, object
    text with None, pandas str, naive and UTC datetime64[us], object dates with None."""
    rng = np.random.default_rng(11)
    start = pd.Timestamp("2024-01-01")
    seconds = pd.to_timedelta(rng.integers(0, 10**7, rows), unit="s")
    utc = (start + seconds).astype("datetime64[us]").tz_localize("UTC")
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "income": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(50, 10, rows).round(2)),
            "member": rng.random(rows) < 0.5,
            "city": pd.Series(rng.choice(["oslo", "lima", "pune", None], rows), dtype=object),
            "plan": pd.Series(rng.choice(["basic", "pro", "team"], rows)),
            "seen": (start + seconds).astype("datetime64[us]"),
            "seen_utc": utc.where(rng.random(rows) > 0.1),
            "joined": pd.Series(
                [
                    dt.date(2023, 1, 1) + dt.timedelta(days=int(d)) if d > 9 else None
                    for d in rng.integers(0, 300, rows)
                ],
                dtype=object,
            ),
            "spend": rng.normal(size=rows),
            "churned": rng.random(rows) < 0.4,
            "segment": rng.choice(["a", "b", "c"], rows),
        }
    )


def _as_json(value: Any) -> Any:
    """A cell as a client sends it in JSON."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


@pytest.mark.parametrize(
    ("algorithm", "task", "target"),
    [
        ("hist_gradient_boosting", "binary", "churned"),
        ("random_forest", "multiclass", "segment"),
        ("linear", "regression", "spend"),
        ("elastic_net", "binary", "churned"),
    ],
)
def test_rows_sent_as_json_predict_exactly_what_the_table_frame_predicts(
    algorithm: str, task: str, target: str
) -> None:
    frame = _table_frame()
    small = {"random_forest": {"n_estimators": 10}, "hist_gradient_boosting": {"max_iter": 20}}
    pipeline = make_pipeline(frame, FEATURES, Candidate(algorithm, small.get(algorithm, {})), task, 7)
    pipeline.fit(frame[FEATURES], frame[target].to_numpy())
    schema = schema_of(frame, FEATURES)
    rows = [{name: _as_json(value) for name, value in record.items()} for record in frame.to_dict("records")]

    online = rows_to_frame(schema, rows)

    np.testing.assert_array_equal(pipeline.predict(online), pipeline.predict(frame[FEATURES]))
    if task != "regression":
        np.testing.assert_array_equal(pipeline.predict_proba(online), pipeline.predict_proba(frame[FEATURES]))
    # one row alone gets the features it gets among the others, exactly; the model's answer is
    # then the estimator's (a linear model's dot product of one row may round differently from
    # the same row in a batch: BLAS uses another kernel)
    alone = rows_to_frame(schema, rows[5:6])
    np.testing.assert_array_equal(pipeline[0].transform(alone), pipeline[0].transform(frame[FEATURES])[5:6])
    among = pipeline.predict(frame[FEATURES])[5:6]
    if task == "regression":
        np.testing.assert_allclose(pipeline.predict(alone), among, rtol=1e-12)
    else:
        np.testing.assert_array_equal(pipeline.predict(alone), among)
