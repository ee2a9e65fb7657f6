"""Workshop tooling: the environment check, the book build and the command line.

``python -m course_utils --help`` lists the commands.
"""

from course_utils.workshop.environment import environment_report, missing_requirements, report

__all__ = ["environment_report", "missing_requirements", "report"]
