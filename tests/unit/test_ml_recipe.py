"""Studio9's preprocessing recipe names scikit-learn and numpy only: a trained model scores
where Studio9 is not installed, and reads times and text as the engine always did."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from studio9.ml.engine.candidates import Candidate
from studio9.ml.engine.preprocessing import MISSING_MICROS, build_preprocessor
from studio9.ml.engine.spec import SearchSpec, TrainSpec
from studio9.ml.engine.training import predict_frame, train
from studio9.ml.persistence import dump_model
from tests.unit.ml_legacy import legacy_pipeline
from tests.unit.test_ml_persistence import FEATURES, _frame


def test_the_recipe_reads_times_in_any_resolution_and_zone_and_dates_as_midnight() -> None:
    naive = pd.Series(
        pd.to_datetime(["1970-01-02 00:00:01", None, "2024-05-01 12:30:00.25"], format="ISO8601")
    )
    first = pd.DataFrame({"t": naive})
    fitted = build_preprocessor(first, ["t"]).fit(first)
    micros = fitted.named_transformers_["datetime"][:2].transform(first)[:, 0]
    assert micros[0] == 86_401_000_000.0 and micros[2] == 1_714_566_600_250_000.0
    assert micros[1] == MISSING_MICROS  # NaT, imputed next like a missing number
    expected = fitted.transform(first)
    same = [pd.DataFrame({"t": naive.dt.as_unit(unit)}) for unit in ("ms", "us", "ns")]
    same.append(pd.DataFrame({"t": naive.dt.tz_localize("UTC").dt.tz_convert("Asia/Kolkata")}))
    iso = [None if t is pd.NaT else t.isoformat() for t in naive]
    same.append(pd.DataFrame({"t": pd.Series(iso, dtype=object)}))
    for other in same:
        np.testing.assert_array_equal(fitted.transform(other), expected)
    days = pd.DataFrame({"t": [dt.date(1970, 1, 2), None, dt.date(2024, 5, 1)]})
    midnights = pd.DataFrame({"t": pd.to_datetime(["1970-01-02", None, "2024-05-01"])})
    np.testing.assert_array_equal(fitted.transform(days), fitted.transform(midnights))


def test_text_features_holding_other_values_are_read_as_their_text() -> None:
    """A categorical of numbers or an object column of mixed values trains, and rows sent with
    those values as text (as online rows are) get the same answers."""
    rng = np.random.default_rng(5)
    n = 150
    x = rng.normal(size=n)
    size = rng.choice([1, 2, 10], n)
    frame = pd.DataFrame(
        {
            "x": x,
            "size": pd.Categorical(size),
            "code": pd.Series(rng.choice(np.array([7, "b", None], dtype=object), n), dtype=object),
            "label": np.where(x + (size == 10) + rng.normal(scale=0.5, size=n) > 0.5, "yes", "no"),
        }
    )
    spec = TrainSpec(target="label", algorithms=("linear",), search=SearchSpec(method="none"), seed=3)
    result = train(frame, spec)
    as_text = frame.assign(
        size=frame["size"].astype(str), code=[None if v is None else str(v) for v in frame["code"]]
    )
    assert result.input_schema[1:] == [
        {"name": "size", "type": "string", "nullable": False},
        {"name": "code", "type": "string", "nullable": True},
    ]
    got = predict_frame(result.pipeline, result.task, result.classes, as_text)
    assert got == predict_frame(result.pipeline, result.task, result.classes, frame)
    encoder = result.pipeline[0].named_transformers_["categorical"].named_steps["encode"]
    assert [list(c) for c in encoder.categories_] == [["1", "10", "2"], ["7", "b"]]


_PORTABLE_LOAD = """
import json, sys
sys.modules["studio9"] = None  # any import of Studio9's code now fails
import numpy as np, pandas as pd, skops.io
frame = pd.read_parquet(sys.argv[1])
answers = {}
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    try:
        model = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    except ImportError as exc:
        answers[path] = "ImportError: " + str(exc)
        continue
    np.save(path + ".npy", model.predict_proba(frame))
    answers[path] = "predicted"
assert not [name for name in sys.modules if name.startswith("studio9.")]
print(json.dumps(answers))
"""


def test_a_trained_model_loads_and_predicts_without_studio9(tmp_path: Path) -> None:
    """The skops file of a trained model needs scikit-learn, numpy, pandas and skops only: a Python
    that cannot import Studio9 loads it (trusting exactly what skops reports) and gives the same
    probabilities. A model of the old recipe, which names Studio9's functions, does not load there."""
    frame = _frame()
    result = train(
        frame[[*FEATURES, "segment"]],
        TrainSpec(target="segment", search=SearchSpec(method="none"), algorithms=("linear",)),
    )
    old = legacy_pipeline(frame, FEATURES, Candidate("linear"), "multiclass")
    old.fit(frame[FEATURES], frame["segment"].to_numpy())
    (tmp_path / "new.skops").write_bytes(dump_model(result.pipeline))
    (tmp_path / "old.skops").write_bytes(dump_model(old))
    frame[FEATURES].to_parquet(tmp_path / "rows.parquet")

    ran = subprocess.run(
        [sys.executable, "-c", _PORTABLE_LOAD, str(tmp_path / "rows.parquet")]
        + [str(tmp_path / name) for name in ("new.skops", "old.skops")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answers = json.loads(ran.stdout)
    assert answers[str(tmp_path / "new.skops")] == "predicted"
    assert answers[str(tmp_path / "old.skops")].startswith("ImportError")  # the block works
    expected = result.pipeline.predict_proba(pd.read_parquet(tmp_path / "rows.parquet"))
    np.testing.assert_array_equal(np.load(tmp_path / "new.skops.npy"), expected)
