"""Exercise checks: each diagnosis, the three modes, recorded answers, figures."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402

from course_utils import config  # noqa: E402
from course_utils.exercises import ExerciseCheckError, ExerciseChecks, diagnose, records  # noqa: E402
from course_utils.exercises.figures import diagnose_figure, summarize  # noqa: E402

EXPECTED = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 7.0]])


@pytest.mark.parametrize(
    "answer, code",
    [
        (..., "not_attempted"),
        (None, "not_attempted"),
        ("1, 2, 3", "type"),
        ({"a": 1}, "type"),
        (EXPECTED.T, "shape"),
        (EXPECTED.ravel(), "shape"),
        (EXPECTED[:1], "shape"),
        (np.where(EXPECTED == 5.0, np.nan, EXPECTED), "nan"),
        (-EXPECTED, "sign"),
        (EXPECTED / 0.02, "scale"),
        (EXPECTED + 0.7, "offset"),
        (EXPECTED[::-1, ::-1], "order"),
        (EXPECTED * (1 + 0.01 * np.array([[1, -1, 1], [-1, 1, 1]])), "tolerance"),
        (EXPECTED**2, "wrong"),
        (EXPECTED + 1e-9, "correct"),
        (EXPECTED.tolist(), "correct"),
    ],
)
def test_each_diagnosis_of_an_array(answer, code):
    assert diagnose(answer, EXPECTED).code == code


def test_the_transpose_is_named_and_no_message_reveals_the_expected_values():
    assert "transpose" in diagnose(EXPECTED.T, EXPECTED).message
    for wrong in (EXPECTED.T, -EXPECTED, EXPECTED * 3, EXPECTED + 0.7, EXPECTED * 1.01, EXPECTED**2):
        message = diagnose(wrong, EXPECTED).message
        assert "7.0" not in message and "[1" not in message, message
    assert "3 times" in diagnose(EXPECTED * 3, EXPECTED).message
    assert "1.00%" in diagnose(EXPECTED * 1.01, EXPECTED).message  # how far, relatively


def test_scalars_torch_and_jax_arrays():
    torch = pytest.importorskip("torch")
    assert diagnose(2.5, np.float64(2.5)).ok
    assert diagnose(np.array([2.5]), 2.5).ok  # a one-element array for a scalar
    assert diagnose(-2.5, 2.5).code == "sign"
    assert diagnose(250.0, 2.5).code == "scale"
    assert diagnose(torch.tensor([1.0, 2.0], requires_grad=True), np.array([1.0, 2.0])).ok
    jnp = pytest.importorskip("jax.numpy")
    assert diagnose(jnp.array([1.0, 2.0]), np.array([1.0, 2.0])).ok


def test_mappings_and_tuples_name_the_part_that_is_wrong():
    expected = {"intercept": np.array(0.5), "coef": np.array([1.0, -2.0])}
    found = diagnose({"intercept": 0.5, "coef": [1.0, 2.0]}, expected)
    assert found.code == "wrong" and found.where == "key 'coef'"
    assert diagnose({"intercept": 0.5}, expected).code == "type"
    found = diagnose((np.array([1.0, 2.0]), 3.0), (np.array([1.0, 2.0]), -3.0))
    assert found.code == "sign" and found.where == "item 1"
    assert diagnose("speed", "speed").ok and diagnose("position", "speed").code == "wrong"
    assert diagnose(1, True).code == "type" and diagnose(True, True).ok


def test_records_round_trip_and_are_written_atomically(tmp_path):
    value = {"w": np.array([[1.0, np.nan]]), "label": "speed", "pair": (np.arange(3.0), 2.0)}
    record = records.encode(value)
    json.dumps(record)  # plain JSON
    decoded = records.decode(record)
    assert np.isnan(decoded["w"][0, 1]) and decoded["label"] == "speed"
    assert diagnose(value, decoded).ok
    records.store_answer("ch", "smoke", "a", record, tmp_path)
    records.store_answer("ch", "default", "a", record, tmp_path)
    assert set(records.load_answers("ch", tmp_path)) == {"smoke", "default"}
    records.clear_scale("ch", "smoke", tmp_path)
    assert set(records.load_answers("ch", tmp_path)) == {"default"}
    assert [p.name for p in tmp_path.iterdir()] == ["ch.json"]  # no temporary file left
    with pytest.raises(TypeError, match="cannot record"):
        records.encode(object())


def _solution(y, rate):
    return float(np.mean(y * np.log(rate) - rate))


INPUTS = [(np.array([0.0, 1.0, 3.0]), np.array([0.5, 1.0, 2.0])), (np.array([2.0]), np.array([4.0]))]


def test_record_then_check_strictly_and_leniently(tmp_path, capsys):
    ExerciseChecks("ch", mode="record", scale="smoke", folder=tmp_path).function("ll", _solution, INPUTS)
    strict = ExerciseChecks("ch", mode="strict", scale="smoke", folder=tmp_path)
    assert strict.function("ll", _solution, INPUTS).ok
    drifted = lambda y, rate: _solution(y, rate) * 1.001  # noqa: E731
    with pytest.raises(ExerciseCheckError, match="the solution fails its own check"):
        strict.function("ll", drifted, INPUTS)
    lenient = ExerciseChecks("ch", mode="lenient", scale="smoke", folder=tmp_path)
    capsys.readouterr()
    assert lenient.function("ll", lambda y, rate: -_solution(y, rate), INPUTS).code == "sign"
    assert lenient.function("ll", lambda y, rate: ..., INPUTS).code == "not_attempted"
    found = lenient.function("ll", lambda y, rate: float("nan"), INPUTS, hints={"nan": "mind the zeros"})
    assert found.code == "nan"
    out = capsys.readouterr().out
    assert "✗ ll" in out and "sign is flipped" in out and "not attempted" in out
    assert "Hint: mind the zeros" in out


def test_a_learner_function_that_raises_is_reported_not_raised(tmp_path, capsys):
    ExerciseChecks("ch", mode="record", scale="smoke", folder=tmp_path).function("ll", _solution, INPUTS)
    lenient = ExerciseChecks("ch", mode="lenient", scale="smoke", folder=tmp_path)

    def broken(y, rate):
        return np.log(rate) @ np.ones(7)

    found = lenient.function("ll", broken, INPUTS, hints={"error": "check the shapes"})
    assert found.code == "error" and "ValueError" in found.message and "np.ones(7)" in found.message
    assert "Hint: check the shapes" in capsys.readouterr().out


def test_hints_follow_the_diagnosis_and_a_live_reference_needs_no_record(tmp_path, capsys):
    checks = ExerciseChecks("ch", mode="lenient", scale="smoke", folder=tmp_path)
    checks.value("rate", 0.4, expected=20.0, hints={"scale": "a count per bin is not a rate in Hz"})
    assert "Hint: a count per bin is not a rate in Hz" in capsys.readouterr().out
    assert checks.value("rate", 20.0, expected=20.0).ok


def test_a_close_answer_without_its_own_hint_gets_the_general_one(tmp_path, capsys):
    checks = ExerciseChecks("ch", mode="lenient", scale="smoke", folder=tmp_path)
    general = {"wrong": "average the trials before you score them"}
    assert checks.value("rmse", 10.5, expected=10.0, hints=general).code == "tolerance"
    assert "Hint: average the trials before you score them" in capsys.readouterr().out
    checks.value("rmse", 10.5, expected=10.0, hints={**general, "tolerance": "round later"})
    out = capsys.readouterr().out
    assert "Hint: round later" in out and "average the trials" not in out
    checks.value("rmse", 10.5, expected=10.0, hints={"scale": "per bin?"})
    assert "Hint" not in capsys.readouterr().out  # no hint that does not fit


def test_missing_answers(tmp_path, capsys):
    ExerciseChecks("ch", mode="record", scale="smoke", folder=tmp_path).value("a", 1.0)
    with pytest.raises(ExerciseCheckError, match="record-answers ch --scale smoke"):
        ExerciseChecks("ch", mode="strict", scale="smoke", folder=tmp_path).value("b", 1.0)
    # a scale with no recorded answers at all (full): a note, never a failure
    found = ExerciseChecks("ch", mode="strict", scale="full", folder=tmp_path).value("a", 1.0)
    assert not found.ok and "no answers are recorded at the 'full' scale" in capsys.readouterr().out


def _figure(slope: float = 2.0, ylabel: str = "rate (Hz)"):
    fig, axes = plt.subplots(1, 2)
    x = np.linspace(0, 1, 20)
    axes[0].plot(x, slope * x)
    axes[0].set(xlabel="speed", ylabel=ylabel)
    axes[1].scatter([1, 2], [3, 4])
    axes[1].set(xlabel="a", ylabel="b", title="t")
    return fig


def test_figures_are_checked_by_their_data():
    expected = summarize(_figure())
    assert diagnose_figure(_figure(), expected).ok
    assert diagnose_figure(_figure(slope=3.0), expected).where == "panel 1"
    assert "ylabel is missing" in diagnose_figure(_figure(ylabel=""), expected).message
    single, _ = plt.subplots()
    assert diagnose_figure(single, expected).code == "shape"
    assert diagnose_figure(None, expected).code == "not_attempted"
    with_extra = _figure()
    with_extra.axes[0].axhline(0)  # an extra reference line is allowed
    assert diagnose_figure(with_extra, expected).ok
    plt.close("all")


def test_strict_book_build_fails_when_a_solution_drifts(tmp_path):
    """A notebook executed as the book build executes it (COURSE_CHECKS=strict) stops at a
    check whose solution no longer matches its recorded answer; leniently, it runs on."""
    ExerciseChecks("drift", mode="record", scale="smoke", folder=tmp_path).value("answer", 2.0)
    setup = (
        f"from pathlib import Path\nfrom course_utils.exercises import ExerciseChecks\n"
        f"checks = ExerciseChecks('drift', folder=Path({str(tmp_path)!r}))"
    )
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(setup),
            nbformat.v4.new_code_cell("checks.value('answer', 2.5)"),  # the drifted solution
            nbformat.v4.new_code_cell("print('went on')"),
        ]
    )

    def run(mode: str) -> nbformat.NotebookNode:
        copy = nbformat.from_dict(json.loads(json.dumps(notebook)))
        with config.environment(COURSE_CHECKS=mode, COURSE_SCALE="smoke"):
            NotebookClient(copy, timeout=120, kernel_name="python3").execute()
        return copy

    with pytest.raises(CellExecutionError, match="ExerciseCheckError"):
        run("strict")
    lenient = run("lenient")
    outputs = "".join(o.get("text", "") for c in lenient.cells for o in c.get("outputs", []))
    assert "✗ answer" in outputs and "went on" in outputs


def test_a_single_number_is_off_by_a_factor_only_for_round_factors():
    assert diagnose(2.6, 2.5).code == "tolerance"  # 4 % off: close
    assert diagnose(7.3, 2.5).code == "wrong"  # any two numbers differ by *some* factor
    assert diagnose(2.5 * 90_000, 2.5).code == "scale"  # a sum for a mean
    assert diagnose(2.5 / 50, 2.5).code == "scale"  # a count per 20 ms bin for a rate in Hz


def test_a_reference_function_replaces_the_recorded_outputs(tmp_path):
    strict = ExerciseChecks("ch", mode="strict", scale="smoke", folder=tmp_path)
    assert strict.function("ll", _solution, INPUTS, reference=_solution).ok
    with pytest.raises(ExerciseCheckError, match="sign"):
        strict.function("ll", lambda y, rate: -_solution(y, rate), INPUTS, reference=_solution)
    assert not (tmp_path / "ch.json").exists()  # nothing recorded


def test_a_choice_says_only_whether_it_is_the_best_one(tmp_path, capsys):
    ExerciseChecks("ch", mode="record", scale="smoke", folder=tmp_path).choice("size", np.int64(8), [2, 8, 50])
    checks = ExerciseChecks("ch", mode="lenient", scale="smoke", folder=tmp_path)
    assert checks.choice("size", 8, [2, 8, 50]).ok
    hints = {2: "two functions cannot bend", 50: "one weight per lag follows the noise"}
    found = checks.choice("size", 2, [2, 8, 50], hints=hints)
    assert found.code == "choice" and "0.25" not in found.message and "8" not in found.message
    assert "Hint: two functions cannot bend" in capsys.readouterr().out
    assert checks.choice("size", 7, [2, 8, 50]).code == "type"
    assert checks.choice("size", ..., [2, 8, 50]).code == "not_attempted"


def test_single_numbers_get_coarse_feedback_and_undefined_values_are_named():
    assert diagnose(2.6, 2.5).message == "close (within 10 %), but outside the tolerance."
    assert "2.5" not in diagnose(7.3, 2.5).message
    found = diagnose(np.array([1.0, 2.0]), np.array([1.0, np.nan]))
    assert found.code == "nan" and "should be undefined" in found.message


def test_the_learners_function_gets_copies_and_its_own_line_is_quoted(tmp_path):
    data = np.arange(3.0)
    ExerciseChecks("ch", mode="record", scale="smoke", folder=tmp_path).function("f", np.sum, [(data,)])

    def mutating(values):
        values *= 0
        return values.sum()

    ExerciseChecks("ch", mode="lenient", scale="smoke", folder=tmp_path).function("f", mutating, [(data,)])
    assert data.tolist() == [0.0, 1.0, 2.0]

    def broken(values):
        return np.dot(values, np.ones(5))  # the error is raised inside NumPy

    found = ExerciseChecks("ch", mode="lenient", scale="smoke", folder=tmp_path).function("f", broken, [(data,)])
    assert "np.dot(values, np.ones(5))" in found.message


def test_strict_fails_at_a_recorded_scale_with_nothing_recorded(tmp_path):
    ExerciseChecks("ch", mode="record", scale="default", folder=tmp_path).value("a", 1.0)
    with pytest.raises(ExerciseCheckError, match="nothing is recorded at the 'smoke' scale"):
        ExerciseChecks("ch", mode="strict", scale="smoke", folder=tmp_path).value("a", 1.0)


def test_a_failed_recording_puts_the_previous_answers_back(tmp_path, monkeypatch):
    from course_utils.workshop import answers

    ExerciseChecks("ch", mode="record", scale="smoke", folder=tmp_path).value("a", 1.0)
    source = tmp_path / "ch.py"
    source.write_text("# %%\nraise RuntimeError('the chapter broke')\n")
    with pytest.raises(CellExecutionError):
        answers.record_answers(source, "smoke", folder=tmp_path)
    assert records.load_answers("ch", tmp_path)["smoke"]["a"]["values"] == [1.0]


def test_filled_areas_are_not_taken_for_scatter_plots():
    fig, ax = plt.subplots()
    ax.fill_between([0, 1], [0, 1])
    assert summarize(fig)["axes"][0]["points"] == []
    plt.close(fig)
