"""Self-checking exercises: say what is wrong with an answer without revealing it.

A chapter's cells tagged ``check`` call :class:`ExerciseChecks`; its answers come from the
solutions, recorded by ``python -m course_utils record-answers`` into
``course_utils/exercises/answers/<chapter>.json``. Needs only NumPy (and Matplotlib for
figure checks), so it runs wherever the notebooks run.
"""

from course_utils.exercises.checker import ExerciseCheckError, ExerciseChecks
from course_utils.exercises.diagnose import CODES, Diagnosis, diagnose

__all__ = ["CODES", "Diagnosis", "ExerciseCheckError", "ExerciseChecks", "diagnose"]
