"""Validation names the row, the column and what was expected."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from opscore.data.features import (
    FeatureSchema,
    incompatibilities,
    infer_schema,
    validate_frame,
    validate_records,
)
from opscore.exceptions import BadInputError


@pytest.fixture
def schema() -> FeatureSchema:
    frame = pd.DataFrame({"amount": [1.0, 5.0, None, 9.0], "kind": ["a", "b", "a", None]})
    return infer_schema(frame, "y", "classification", [0, 1])


def test_schema_records_kinds_ranges_and_categories(schema):
    amount, kind = schema.spec("amount"), schema.spec("kind")
    assert (amount.kind, amount.minimum, amount.maximum, amount.missing_share) == ("numeric", 1.0, 9.0, 0.25)
    assert (kind.kind, kind.categories) == ("categorical", ["a", "b"])
    assert FeatureSchema.from_dict(schema.to_dict()) == schema


def test_good_records_become_a_typed_frame(schema):
    rows = validate_records(schema, [{"amount": 2, "kind": "a"}, {"amount": None, "kind": None}, {"amount": "3.5", "kind": 7}])
    assert rows.errors == [] and rows.valid_rows == [0, 1, 2]
    assert rows.frame["amount"].tolist()[0] == 2.0 and math.isnan(rows.frame["amount"].tolist()[1])
    assert rows.frame["kind"].tolist()[2] == "7"


@pytest.mark.parametrize(
    ("record", "column", "message"),
    [
        ({"kind": "a"}, "amount", "missing column"),
        ({"amount": "abc", "kind": "a"}, "amount", "expected a number, got the text 'abc'"),
        ({"amount": "NaN", "kind": "a"}, "amount", "expected a finite number"),
        ({"amount": "inf", "kind": "a"}, "amount", "expected a finite number"),
        ({"amount": float("inf"), "kind": "a"}, "amount", "infinity"),
        ({"amount": True, "kind": "a"}, "amount", "boolean"),
        ({"amount": {"nested": 1}, "kind": "a"}, "amount", "got dict"),
        ({"amount": 1, "kind": ["a"]}, "kind", "got list"),
    ],
)
def test_each_bad_cell_is_named(schema, record, column, message):
    rows = validate_records(schema, [{"amount": 1, "kind": "a"}, record])
    assert rows.valid_rows == [0]
    [problem] = rows.errors
    assert (problem.row, problem.column) == (1, column) and message in problem.message
    assert f"row 1, column '{column}'" in str(problem)


def test_non_object_rows_and_extra_columns(schema):
    rows = validate_records(schema, [[1, 2], {"amount": 1, "kind": "a", "ünïcode": 1}])
    assert rows.errors[0].row == 0 and "expected an object" in rows.errors[0].message
    assert rows.extra_columns == ["ünïcode"]
    assert any("extra column" in w.message for w in rows.warnings)


def test_warnings_for_out_of_range_and_unseen_categories(schema):
    rows = validate_records(schema, [{"amount": 100, "kind": "zzz"}])
    assert rows.errors == []
    messages = [str(w) for w in rows.warnings]
    assert "row 0, column 'amount': 100 is outside the training range [1, 9]" in messages
    assert any("category 'zzz' was not seen" in m for m in messages)


def test_frames_missing_a_column_are_refused_whole(schema):
    with pytest.raises(BadInputError, match="missing column.*'kind'"):
        validate_frame(schema, pd.DataFrame({"amount": [1.0]}))


def test_incompatibilities_ignore_dropped_columns(schema):
    narrower = infer_schema(pd.DataFrame({"amount": [1.0, 2.0]}), "y", "classification", [0, 1])
    wider = infer_schema(pd.DataFrame({"amount": [1.0], "kind": ["a"], "new": [1]}), "y", "classification", [0, 1])
    assert incompatibilities(schema, narrower) == []
    assert incompatibilities(schema, wider) == ["new required column 'new'"]
