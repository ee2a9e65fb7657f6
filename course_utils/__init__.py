"""Helpers for the course on regularization and hyperparameter tuning.

The modules each own one job (``DESIGN.md`` at the repository root has the layers and rules):

- :mod:`course_utils.config`: run scale, per-chapter sizes, seeds, cache paths;
- :mod:`course_utils.data`: the dataset registry, verified downloads, loaders;
- :mod:`course_utils.simulate`: ground-truth generators;
- :mod:`course_utils.training`: device choice and the torch training loop;
- :mod:`course_utils.metrics` and :mod:`course_utils.plotting`: generic scores and figure style;
- :mod:`course_utils.representation`: what a learned code holds about known factors (probes, MIG);
- :mod:`course_utils.model_selection`: cross-validation folds for time series with history;
- :mod:`course_utils.models`: models the chapters use but do not teach line by line;
- :mod:`course_utils.exercises`: the checks of the chapters' exercises;
- :mod:`course_utils.workshop`: the environment check and the command line;
- :mod:`course_utils.validation`: argument checks the other modules share.

Submodules are imported on demand so that ``import course_utils`` stays fast and does not
pull in torch or jax.
"""

__version__ = "0.1.0"
