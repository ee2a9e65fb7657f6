"""The object a chapter's ``check`` cells call: compare, then print, raise or record.

A chapter makes one :class:`ExerciseChecks` in its setup cell and calls it in each cell
tagged ``check``::

    checks = ExerciseChecks("01_glm_basics")
    ...
    checks.function("ex1_log_likelihood", poisson_log_likelihood, inputs=[(y, X, b, w)])

What happens then depends on the check mode (:func:`course_utils.config.check_mode`):
``lenient`` prints what is right or wrong and never raises (attendee notebooks),
``strict`` raises :class:`ExerciseCheckError` when the answer does not match the recorded
one (the book build, where the answers are the solutions), ``record`` stores the answer as
the expected one (``python -m course_utils record-answers``).

Every call of the learner's code happens inside the check, so an exercise that raises,
or is not attempted yet, never stops *Run All*.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from course_utils import config
from course_utils.exercises import records
from course_utils.exercises.diagnose import Diagnosis, diagnose, diagnose_choice, is_unanswered
from course_utils.exercises.figures import diagnose_figure, summarize

Hints = Mapping[str, str]
#: The scales whose answers ``record-answers`` records (the full scale needs a GPU or a day).
RECORDED_SCALES: tuple[str, ...] = ("smoke", "default")


class ExerciseCheckError(AssertionError):
    """A solution no longer matches its recorded answer (raised in strict mode only)."""


class ExerciseChecks:
    """The exercise checks of one chapter.

    Parameters
    ----------
    chapter
        The chapter's file stem, e.g. ``"01_glm_basics"``: it names the answers file.
    mode
        ``"lenient"``, ``"strict"`` or ``"record"``; from ``COURSE_CHECKS`` by default.
    scale
        The run scale whose recorded answers apply; from ``COURSE_SCALE`` by default.
    folder
        Where the answers files are (the package's own by default; tests use another).
    """

    def __init__(
        self, chapter: str, *, mode: str | None = None, scale: str | None = None, folder: Path | None = None
    ) -> None:
        self.chapter = chapter
        self.mode = mode or config.check_mode()
        if self.mode not in config.CHECK_MODES:
            raise ValueError(f"mode must be one of {config.CHECK_MODES}, got {mode!r}.")
        self.scale = scale or config.get_scale()
        self.folder = folder
        self._answers = records.load_answers(chapter, folder).get(self.scale)

    # -- the three kinds of check -------------------------------------------------------
    def value(
        self,
        name: str,
        answer: Any,
        *,
        expected: Any = None,
        rtol: float = 1e-4,
        atol: float = 1e-8,
        hints: Hints | None = None,
    ) -> Diagnosis:
        """Check a value: a number, an array, a dict of fitted parameters, a tuple of these.

        Parameters
        ----------
        name
            The answer's name in the answers file (unique in the chapter).
        answer
            The learner's value.
        expected
            A reference computed on the spot (e.g. by a library), used instead of a recorded
            answer; nothing is recorded then.
        rtol, atol
            The tolerance of numeric comparisons.
        hints
            A hint for each diagnosis code (:data:`~course_utils.exercises.diagnose.CODES`),
            shown after the diagnosis; a ``"tolerance"`` diagnosis without a hint of its own
            shows the ``"wrong"`` one.
        """
        if expected is not None:
            return self._report(name, diagnose(answer, expected, rtol=rtol, atol=atol), hints)
        if self.mode == "record":
            return self._record(name, records.encode(answer))
        stored = self._recorded(name, "value")
        if stored is None:
            return self._no_record(name)
        return self._report(name, diagnose(answer, records.decode(stored), rtol=rtol, atol=atol), hints)

    def choice(
        self, name: str, answer: Any, options: Sequence[Any], *, hints: Mapping[Any, str] | None = None
    ) -> Diagnosis:
        """Check the choice of one of ``options`` (a size, a label, a model).

        Parameters
        ----------
        name
            The answer's name in the answers file.
        answer
            The learner's choice.
        options
            Every option the exercise offers (numbers or strings).
        hints
            A hint for each wrong option, keyed by the option itself.
        """
        if self.mode == "record":
            return self._record(name, {"type": "choice", "value": _plain(answer)})
        stored = self._recorded(name, "choice")
        if stored is None:
            return self._no_record(name)
        found = diagnose_choice(answer, stored["value"], options)
        hint = (hints or {}).get(_plain(answer)) if found.code == "choice" else None
        return self._report(name, found, {"choice": hint} if hint else None)

    def function(
        self,
        name: str,
        function: Callable[..., Any],
        inputs: Sequence[tuple],
        *,
        reference: Callable[..., Any] | None = None,
        rtol: float = 1e-4,
        atol: float = 1e-8,
        hints: Hints | None = None,
    ) -> Diagnosis:
        """Check a function by calling it on inputs the check chooses.

        Parameters
        ----------
        name
            The answer's name in the answers file.
        function
            The learner's function.
        inputs
            Positional arguments of each call, one tuple a call; the outputs are compared
            with those of the solution on the same inputs.
        reference
            A function computed on the spot (e.g. a library's) whose outputs on the same
            inputs are the expected ones; nothing is recorded then.
        rtol, atol, hints
            As for :meth:`value`.
        """
        outputs = []
        for index, arguments in enumerate(inputs):
            try:  # on copies: a function that changes its inputs cannot change the chapter's data
                outputs.append(function(*copy.deepcopy(arguments)))
            except Exception as exc:  # the learner's code: report, never stop the notebook
                frame = _learner_frame(exc)
                found = Diagnosis(
                    "error",
                    f"calling it raised {type(exc).__name__}: {exc} "
                    f"(line {frame.lineno}: `{(frame.line or '').strip()}`).",
                    f"check input {index + 1} of {len(inputs)}",
                )
                return self._report(name, found, hints)
            if is_unanswered(outputs[-1]):
                return self._report(
                    name, Diagnosis("not_attempted", "not attempted yet: the function returns `...` or None."), hints
                )
        if reference is not None:
            expected = [reference(*copy.deepcopy(arguments)) for arguments in inputs]
            return self._compare_outputs(name, outputs, expected, rtol, atol, hints)
        if self.mode == "record":
            return self._record(name, {"type": "function", "outputs": [records.encode(out) for out in outputs]})
        stored = self._recorded(name, "function")
        if stored is None:
            return self._no_record(name)
        if len(stored["outputs"]) != len(outputs):
            return self._stale(name, f"{len(outputs)} check inputs now, {len(stored['outputs'])} when recorded")
        expected = [records.decode(record) for record in stored["outputs"]]
        return self._compare_outputs(name, outputs, expected, rtol, atol, hints)

    def _compare_outputs(
        self, name: str, outputs: list, expected: list, rtol: float, atol: float, hints: Hints | None
    ) -> Diagnosis:
        for index, (output, wanted) in enumerate(zip(outputs, expected)):
            found = diagnose(output, wanted, rtol=rtol, atol=atol)
            if not found.ok:
                where = f"check input {index + 1} of {len(outputs)}" if len(outputs) > 1 else ""
                return self._report(name, found.located(where) if where else found, hints)
        return self._report(name, Diagnosis("correct", "correct."), hints)

    def figure(
        self, name: str, figure: Any, *, rtol: float = 1e-3, atol: float = 1e-8, hints: Hints | None = None
    ) -> Diagnosis:
        """Check a Matplotlib figure by its data: panels, labels, lines and scatters."""
        if self.mode == "record" and not is_unanswered(figure):
            return self._record(name, {"type": "figure", "summary": summarize(figure)})
        stored = None if self.mode == "record" else self._recorded(name, "figure")
        if stored is None and not is_unanswered(figure):
            return self._no_record(name)
        summary = stored["summary"] if stored else {"axes": []}
        return self._report(name, diagnose_figure(figure, summary, rtol=rtol, atol=atol), hints)

    # -- recording and reporting --------------------------------------------------------
    def _recorded(self, name: str, kind: str) -> dict[str, Any] | None:
        if not self._answers or name not in self._answers:
            return None
        stored = self._answers[name]
        kinds = ("function", "figure", "choice")
        recorded_kind = stored.get("type") if stored.get("type") in kinds else "value"
        return stored if recorded_kind == kind else None  # recorded by another kind of check

    def _record(self, name: str, record: dict[str, Any]) -> Diagnosis:
        records.store_answer(self.chapter, self.scale, name, record, self.folder)
        print(f"recorded the answer {name!r} at scale {self.scale!r}")
        return Diagnosis("correct", "recorded.")

    def _no_record(self, name: str) -> Diagnosis:
        command = f"python -m course_utils record-answers {self.chapter} --scale {self.scale}"
        if self._answers is None and self.scale in RECORDED_SCALES:
            return self._stale(name, f"nothing is recorded at the {self.scale!r} scale; run `{command}`")
        if self._answers is None:  # the full scale is never recorded: say so, go on
            print(
                f"ⓘ {name}: no answers are recorded at the {self.scale!r} scale, so this "
                "answer cannot be checked here; compare it with the book's solution."
            )
            return Diagnosis("not_attempted", "no recorded answer at this scale.")
        return self._stale(name, f"no recorded answer; run `{command}`")

    def _stale(self, name: str, why: str) -> Diagnosis:
        message = f"{name}: the recorded answers of {self.chapter} are out of date ({why})."
        if self.mode == "strict":
            raise ExerciseCheckError(message)
        print(f"ⓘ {message}")
        return Diagnosis("error", message)

    def _report(self, name: str, found: Diagnosis, hints: Hints | None) -> Diagnosis:
        where = f" ({found.where})" if found.where else ""
        if found.ok:
            print(f"✓ {name}: correct.")
            return found
        hints = hints or {}
        # A close answer with no hint of its own gets the general one: a near miss is often a
        # step of the method done differently, which the general hint lists.
        hint = hints.get(found.code) or (hints.get("wrong") if found.code == "tolerance" else None)
        text = f"{name}{where}: {found.message}" + (f"\n  Hint: {hint}" if hint else "")
        if self.mode in ("strict", "record"):
            raise ExerciseCheckError(f"the solution fails its own check: {text}")
        print(f"✗ {text}")
        return found


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds (JSON and ``==`` both want that)."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


def _learner_frame(exc: BaseException) -> traceback.FrameSummary:
    """The deepest frame of the learner's own code in a traceback (not a library's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [
        f
        for f in frames
        if "site-packages" not in f.filename
        and "/lib/python" not in f.filename
        and not f.filename.endswith(("checker.py",))
    ]
    return (own or frames)[-1]
