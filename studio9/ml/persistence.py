"""Model files: fitted scikit-learn pipelines stored with skops, loaded only when every type is trusted.

Why skops and not pickle: unpickling runs whatever code the file names. A skops file is a zip of
a JSON object tree plus numpy arrays (read with ``allow_pickle=False``); loading builds only the
types it trusts, and any other type must be named by the caller (``trusted=``).

A type is trusted when it is in one of three tiers:

1. skops' default trust: scikit-learn estimators, numpy and scipy containers, builtin containers;
2. ``TRUSTED_TYPES``: what a Studio9-trained pipeline holds beyond that (listed below, with how
   the list was found), now and in models trained before (``LEGACY_TRUSTED_TYPES``);
3. ``allowed``: the types an administrator allows for imported models (``IMPORT_ALLOW_LIST``).

skops leaves the two tree types untrusted by default although they run no code: their node arrays
hold raw indices that scikit-learn follows without bounds checks, so a crafted file loads fine and
then ``predict`` reads out of bounds or crashes the worker. Studio9 trusts them because
``load_model`` checks those arrays before it returns the model (``_check_trees``): every child
index points forward inside its array (so no loop either), every split feature is below the
number of features the estimator checks its input against, and no split is on a native
categorical feature (Studio9 one-hot encodes; those bitset indices are not checked).
"""

from __future__ import annotations

import importlib
import io
import numbers
import types
import zipfile
from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from studio9.ml.errors import InvalidModelFile, OnnxUnavailable, UntrustedModel

if TYPE_CHECKING:
    from studio9.ml.schema import ColumnSpec

__all__ = [
    "CURRENT_TRUSTED_TYPES",
    "IMPORT_ALLOW_LIST",
    "LEGACY_TRUSTED_TYPES",
    "MAX_UNPACKED_BYTES",
    "TRUSTED_TYPES",
    "dump_model",
    "export_onnx",
    "load_model",
    "untrusted_types",
]

#: The types beyond skops' default trust that a Studio9-trained pipeline holds. Found with
#: scikit-learn 1.9 and skops 0.16: each estimator kind (LogisticRegression with lbfgs and with
#: saga + l1_ratio, Ridge, ElasticNet, RandomForest*, ExtraTrees*, HistGradientBoosting* with and
#: without early stopping) trained in a Pipeline behind ``studio9.ml.engine.preprocessing``'s
#: ColumnTransformer on a frame of int, float-with-nulls, bool, object-with-None and pandas str
#: columns, naive and UTC timestamps and dates, with bool, str, int and float targets, dumped; the
#: union of ``skops.io.get_untrusted_types`` over all of them. None of them can run foreign code,
#: and none is Studio9's: such a file loads with scikit-learn, numpy and skops alone.
#: ``tests/unit/test_ml_persistence.py`` repeats the experiment, so a new type fails a test.
CURRENT_TRUSTED_TYPES: Final[frozenset[str]] = frozenset(
    {
        # SimpleImputer keeps ``_fit_dtype``/``_fill_dtype``; skops rebuilds a dtype from an empty
        # .npy array read with allow_pickle=False, so it carries data only.
        "numpy.dtype",
        # The function of the FunctionTransformers that read times as microseconds (a conversion
        # of its input to an array of the dtype named in the file; skops trusts ufuncs only).
        "numpy.asarray",
        # The node storage of DecisionTree* (so RandomForest*, ExtraTrees*): data, checked on load.
        "sklearn.tree._tree.Tree",
        # The trees of HistGradientBoosting*: data, checked on load.
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)
#: What models trained before that held beyond it: our own FunctionTransformer functions (the
#: file names them, loading imports our code). Still trusted, so that those models load.
LEGACY_TRUSTED_TYPES: Final[frozenset[str]] = frozenset(
    {
        "studio9.ml.engine.preprocessing.to_seconds",
        "studio9.ml.engine.preprocessing.to_text",
    }
)
TRUSTED_TYPES: Final[frozenset[str]] = CURRENT_TRUSTED_TYPES | LEGACY_TRUSTED_TYPES

#: The administrator's extra allow-list for imported models. It will become a setting; until then
#: the import path passes its types as ``load_model(data, allowed=...)``. Empty: imports hold
#: nothing beyond ``TRUSTED_TYPES`` unless someone decides otherwise, type by type.
IMPORT_ALLOW_LIST: Final[frozenset[str]] = frozenset()

#: A model file whose members unpack to more than this is refused before anything is read, so
#: that a small zip cannot expand into a worker's whole memory.
MAX_UNPACKED_BYTES: Final = 4 * 1024**3

_TREE_LEAF: Final = -1  # sklearn.tree._tree.TREE_LEAF
# Functions carry attributes too, but nothing of a model's data hangs off them.
_CODE: Final = (types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def dump_model(pipeline: Any) -> bytes:
    """The skops file of a fitted pipeline (deflated: a forest's node arrays shrink several-fold)."""
    import skops.io

    data: bytes = skops.io.dumps(pipeline, compression=zipfile.ZIP_DEFLATED, compresslevel=1)
    return data


def untrusted_types(data: bytes) -> list[str]:
    """The types of the model file that are neither trusted by skops nor in ``TRUSTED_TYPES``, sorted.

    Raises ``InvalidModelFile`` when ``data`` is not a skops file (not a zip, no schema).
    """
    return sorted(set(_reported_untrusted(data)) - TRUSTED_TYPES)


def load_model(data: bytes, *, allowed: Collection[str] = ()) -> Any:
    """The fitted scikit-learn estimator in a skops file, when every type in it is trusted.

    ``allowed`` adds types to ``TRUSTED_TYPES`` (an imported model: the administrator's allow-list).
    Raises ``UntrustedModel`` naming every other type, and ``InvalidModelFile`` when the file is
    not a skops file, does not load, is not a fitted estimator with ``predict``, or holds trees
    whose node arrays point outside themselves.
    """
    import skops.io

    reported = _reported_untrusted(data)
    refused = set(reported) - TRUSTED_TYPES - set(allowed)
    if refused:
        raise UntrustedModel(refused)
    try:
        # Exactly what skops reported and we accepted: nothing more gets trusted by accident.
        model = skops.io.loads(data, trusted=reported)
    except Exception as exc:
        raise InvalidModelFile(f"the model file does not load: {_why(exc)}") from exc
    _check_estimator(model)
    _check_trees(model)
    return model


def export_onnx(pipeline: Any, input_schema: Sequence[ColumnSpec]) -> bytes:
    """The ONNX model of a fitted pipeline, one ``[None, 1]`` input per column of ``input_schema``.

    Numbers and booleans are float inputs (booleans as 1.0/0.0), strings are string inputs;
    classifiers output plain probability tensors (no ZipMap). Raises ``OnnxUnavailable`` when
    skl2onnx is not installed, when a column is a date or timestamp, or when skl2onnx cannot
    convert the pipeline.
    """
    try:
        # Imported by name: skl2onnx is an optional extra and has no type information.
        skl2onnx = importlib.import_module("skl2onnx")
        data_types = importlib.import_module("skl2onnx.common.data_types")
    except ImportError as exc:
        raise OnnxUnavailable("ONNX export needs skl2onnx: pip install 'studio9[onnx]'") from exc
    initial_types: list[tuple[str, Any]] = []
    for column in input_schema:
        if column.type in ("integer", "float", "boolean"):
            initial_types.append((column.name, data_types.FloatTensorType([None, 1])))
        elif column.type == "string":
            initial_types.append((column.name, data_types.StringTensorType([None, 1])))
        else:
            raise OnnxUnavailable(
                f"ONNX export cannot take the {column.type} column {column.name!r}: "
                "its inputs are numbers, booleans and strings"
            )
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    try:
        onnx_model = skl2onnx.convert_sklearn(pipeline, initial_types=initial_types, options=options)
    except Exception as exc:
        raise OnnxUnavailable(f"skl2onnx cannot convert this pipeline: {_why(exc)}") from exc
    serialized: bytes = onnx_model.SerializeToString()
    return serialized


def _reported_untrusted(data: bytes) -> list[str]:
    """What skops reports as untrusted in ``data`` (it builds no object to find out)."""
    import skops.io

    _check_archive(data)
    try:
        return list(skops.io.get_untrusted_types(data=data))
    except Exception as exc:
        raise InvalidModelFile(f"not a skops model file: its schema does not read ({_why(exc)})") from exc


def _check_archive(data: bytes) -> None:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidModelFile(f"not a skops model file: expected bytes, got {type(data).__name__}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InvalidModelFile("not a skops model file: it is not a zip archive") from exc
    if not any(member.filename == "schema.json" for member in members):
        raise InvalidModelFile("not a skops model file: the archive has no schema.json")
    # The reader stops at each member's declared size, so the declared sizes bound the memory.
    if sum(member.file_size for member in members) > MAX_UNPACKED_BYTES:
        raise InvalidModelFile(f"the model file unpacks to more than {MAX_UNPACKED_BYTES:,} bytes")


def _check_estimator(model: Any) -> None:
    from sklearn.base import BaseEstimator
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(model, BaseEstimator) or not callable(getattr(model, "predict", None)):
        raise InvalidModelFile(
            f"the model file holds a {type(model).__name__}, not a scikit-learn estimator with predict"
        )
    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise InvalidModelFile(f"the model file holds a {type(model).__name__} that is not fitted") from exc


def _check_trees(model: Any) -> None:
    """Refuse trees whose node arrays would make scikit-learn read out of bounds (module doc)."""
    from sklearn.ensemble._bagging import BaseBagging
    from sklearn.ensemble._forest import BaseForest
    from sklearn.ensemble._gb import BaseGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree import BaseDecisionTree
    from sklearn.tree._tree import Tree

    bounded: set[int] = set()  # ids of the trees checked against their estimator's feature count
    objects = list(_reachable(model))
    for obj in objects:
        if isinstance(obj, BaseDecisionTree) and "tree_" in vars(obj):
            tree = vars(obj)["tree_"]
            if not isinstance(tree, Tree):
                raise InvalidModelFile(f"a {type(obj).__name__} of the model has no valid tree")
            _check_tree(tree, _feature_count(obj), type(obj).__name__)
            bounded.add(id(tree))
        elif isinstance(obj, BaseHistGradientBoosting) and "_predictors" in vars(obj):
            _check_hist_gradient_boosting(obj, TreePredictor, bounded)
        elif isinstance(obj, BaseForest | BaseGradientBoosting):
            # These call their member trees with check_input=False: a member that claims more
            # features than the ensemble checks its input against would read past each row.
            count = _feature_count(obj)
            for member in _members(obj):
                if isinstance(member, BaseDecisionTree) and _feature_count(member) != count:
                    raise InvalidModelFile(
                        f"a tree of the model's {type(obj).__name__} does not take its {count} features"
                    )
        elif isinstance(obj, BaseBagging) and any(isinstance(m, BaseDecisionTree) for m in _members(obj)):
            # Bagging and IsolationForest hand their trees column subsets, unchecked.
            raise InvalidModelFile(
                f"the model's {type(obj).__name__} holds decision trees whose inputs Studio9 cannot check"
            )
    for obj in objects:  # a tree held anywhere else still may not point outside its arrays
        if isinstance(obj, Tree) and id(obj) not in bounded:
            _check_tree(obj, obj.n_features, "tree")
        elif isinstance(obj, TreePredictor) and id(obj) not in bounded:
            _check_predictor(obj, None)


def _check_hist_gradient_boosting(estimator: Any, predictor_type: type, bounded: set[int]) -> None:
    name = type(estimator).__name__
    count = _feature_count(estimator)
    np = importlib.import_module("numpy")
    flags = [
        getattr(estimator, "is_categorical_", None),
        getattr(vars(estimator).get("_bin_mapper"), "is_categorical_", None),
    ]
    if vars(estimator).get("_preprocessor") is not None or any(
        f is not None and bool(np.asarray(f).any()) for f in flags
    ):
        raise InvalidModelFile(
            f"the model's {name} uses native categorical features, which Studio9 does not load"
        )
    for iteration in vars(estimator)["_predictors"]:
        for predictor in iteration:
            if not isinstance(predictor, predictor_type):
                raise InvalidModelFile(f"the model's {name} holds a {type(predictor).__name__} as a tree")
            _check_predictor(predictor, count)
            bounded.add(id(predictor))


def _check_tree(tree: Any, n_features: int, owner: str) -> None:
    """A ``sklearn.tree._tree.Tree``: children forward and inside, split features below ``n_features``."""
    if tree.node_count < 1 or tree.n_features != n_features:
        raise InvalidModelFile(f"a {owner} of the model has a malformed tree")
    left = tree.children_left
    inner = left != _TREE_LEAF  # scikit-learn walks down while left_child != TREE_LEAF
    _check_links(inner, left, tree.children_right, tree.feature, n_features, owner)


def _check_predictor(predictor: Any, n_features: int | None) -> None:
    """A HistGradientBoosting ``TreePredictor``: the same rules on its ``nodes`` records."""
    np = importlib.import_module("numpy")
    common = importlib.import_module("sklearn.ensemble._hist_gradient_boosting.common")
    nodes = predictor.nodes
    if not isinstance(nodes, np.ndarray) or nodes.dtype != common.PREDICTOR_RECORD_DTYPE or len(nodes) < 1:
        raise InvalidModelFile("a gradient boosting tree of the model has malformed nodes")
    inner = nodes["is_leaf"] == 0  # its predict walks down while not is_leaf
    if nodes["is_categorical"][inner].any():
        raise InvalidModelFile("a gradient boosting tree of the model splits on native categorical features")
    bound = n_features if n_features is not None else np.iinfo(np.uint32).max
    _check_links(inner, nodes["left"], nodes["right"], nodes["feature_idx"], bound, "gradient boosting tree")


def _check_links(inner: Any, left: Any, right: Any, feature: Any, n_features: int, owner: str) -> None:
    """Every inner node's children come after it in the array (so no cycle) and inside it."""
    np = importlib.import_module("numpy")
    length = len(inner)
    index = np.arange(length)[inner]
    left, right, feature = (np.asarray(a)[inner].astype(np.int64) for a in (left, right, feature))
    ok = (
        (left > index).all()
        and (right > index).all()
        and (left < length).all()
        and (right < length).all()
        and (feature >= 0).all()
        and (feature < n_features).all()
    )
    if not ok:
        raise InvalidModelFile(f"a {owner} of the model has node links outside its arrays")


def _feature_count(estimator: Any) -> int:
    """``n_features_in_``: without it scikit-learn skips the input width check, so it is required."""
    count = vars(estimator).get("n_features_in_")
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
        raise InvalidModelFile(
            f"a {type(estimator).__name__} of the model does not say how many features it takes"
        )
    return int(count)


def _members(ensemble: Any) -> Iterator[Any]:
    members = vars(ensemble).get("estimators_", ())
    yield from (members.flat if hasattr(members, "flat") else members)


def _reachable(root: Any) -> Iterator[Any]:
    """Every object reachable from ``root`` through attributes, containers and object arrays."""
    np = importlib.import_module("numpy")
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | numbers.Number | type | types.ModuleType):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.flat)
        elif hasattr(obj, "__dict__") and not isinstance(obj, _CODE):
            stack.extend(vars(obj).values())


def _why(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
