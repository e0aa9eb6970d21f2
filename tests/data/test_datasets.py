"""Reading files people hand us and refusing data no model should learn from."""

from __future__ import annotations

import pandas as pd
import pytest

from opscore.data.datasets import check_training_frame, fingerprint, infer_task, read_csv_bytes
from opscore.exceptions import BadInputError, TooLargeError


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "is empty"),
        (b"   \n\n", "is empty"),
        (b"a,b\x00c\n1,2\n", "binary data"),
        (b"\xff\xfe\x00a", "binary data"),
        (b"caf\xe9,x\n1,2\n", "not a UTF-8"),
        (b'[{"a": 1}]', "looks like JSON"),
        (b"<html><body>x</body></html>", "looks like XML/HTML"),
        (b"a,b\n", "header but no data rows"),
        (b"a,a\n1,2\n", "repeats column"),
    ],
)
def test_bad_files_are_named(raw, message):
    with pytest.raises(BadInputError, match=message):
        read_csv_bytes(raw, "upload.csv")


def test_size_limit():
    with pytest.raises(TooLargeError, match="limit"):
        read_csv_bytes(b"a\n" + b"1\n" * 100, "big.csv", max_bytes=50)


def test_task_inference():
    assert infer_task(pd.Series(["yes", "no"])) == "classification"
    assert infer_task(pd.Series([0, 1, 1, 0])) == "classification"
    assert infer_task(pd.Series([0.5, 1.25, 3.75, 2.0] * 10)) == "regression"


def test_unlabelled_rows_are_dropped_with_a_note(demo_frame):
    frame = demo_frame.copy()
    frame.loc[:9, "default"] = None
    x, y, task, notes = check_training_frame(frame, "default", None)
    assert len(x) == len(frame) - 10 and task == "classification"
    assert notes == ["dropped 10 row(s) with no 'default' value"]


def test_infinite_feature_values_are_refused(demo_frame):
    frame = demo_frame.copy()
    frame.loc[3, "age"] = float("inf")
    with pytest.raises(BadInputError, match="'age' contains infinite"):
        check_training_frame(frame, "default", None)


def test_fingerprint_tracks_content_not_column_order(demo_frame):
    assert fingerprint(demo_frame) == fingerprint(demo_frame[list(reversed(demo_frame.columns))])
    changed = demo_frame.copy()
    changed.loc[0, "age"] += 1
    assert fingerprint(changed) != fingerprint(demo_frame)
