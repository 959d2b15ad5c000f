import logging
import pickle

from zoo.data import DataError, DataReport
from zoo.data.errors import CLIPPED, DROPPED_EMPTY


def test_data_error_names_file_field_and_value():
    error = DataError(
        "width must be > 0",
        file="annotations.json",
        field="annotations[3].bbox",
        value=[10, 20, -5, 4],
    )
    assert (
        str(error) == "annotations.json: annotations[3].bbox = [10, 20, -5, 4]: width must be > 0"
    )
    assert isinstance(error, ValueError)
    assert (error.file, error.field, error.value) == (
        "annotations.json",
        "annotations[3].bbox",
        [10, 20, -5, 4],
    )


def test_data_error_quotes_strings_and_omits_missing_parts():
    assert (
        str(DataError("bad", file="x.txt", field="line 2", value="1 a"))
        == "x.txt: line 2 = '1 a': bad"
    )
    assert str(DataError("image file not found", file="img.jpg")) == "img.jpg: image file not found"


def test_data_error_pickles():
    error = DataError("bad", file="f.json", field="k", value=3)
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.value == 3


def test_report_counts_examples_and_summary():
    report = DataReport(max_examples=2)
    assert not report and report.summary() == "nothing changed"
    for i in range(3):
        report.add(CLIPPED, f"box {i}")
    report.add(DROPPED_EMPTY, "box 9")
    assert report[CLIPPED] == 3 and report[DROPPED_EMPTY] == 1 and report["other"] == 0
    assert report.examples[CLIPPED] == ["box 0", "box 1"]
    summary = report.summary("data.json")
    assert "3 boxes clipped to the image (e.g. box 0; box 1)" in summary
    assert "1 zero-area boxes dropped (e.g. box 9)" in summary
    merged = DataReport().merge(report).merge(report)
    assert merged[CLIPPED] == 6


def test_report_log_warns_only_when_not_empty(caplog):
    with caplog.at_level(logging.WARNING, logger="zoo.data"):
        DataReport().log("quiet")
        report = DataReport()
        report.add(CLIPPED, "here")
        report.log("loud")
    assert [r.getMessage().splitlines()[0] for r in caplog.records] == [
        "loud: data cleaned on read"
    ]
