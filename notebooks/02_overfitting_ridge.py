# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2 · Overfitting, ridge and model selection on a coupled population
#
# A population of head-direction cells fires as the animal turns its head. Do the neurons
# also drive each other, and which ones? A GLM can answer by predicting each neuron's spikes
# from the heading *and* from the recent spikes of every other neuron: the weights on the
# other neurons' pasts are the **coupling filters**, the functional connectivity of the
# population. That is a whole filter per neuron *pair*, many weights per neuron for a few
# minutes of recording. Fit without restraint, such a model explains the training data very
# well and the next minutes worse: it **overfits**. This chapter cures it with penalties
# (ridge, lasso, group lasso), chooses their strength by cross-validation that respects time,
# and checks every step against a simulated population whose wiring diagram we know.
#
# **Learning goals.** After this chapter you can
#
# - recognise overfitting as a gap between training and held-out log-likelihood, and say why
#   a model with many weights and few spikes overfits;
# - check that a fit reached its optimum, in nats, instead of trusting the solver;
# - write down the ridge-penalized objective, say what its strength α does, and convert it to
#   nemos's `regularizer_strength`;
# - choose α with scikit-learn's `GridSearchCV` on folds of contiguous time with a gap,
#   standardizing inside each fold, and explain why shuffled folds flatter the models that
#   overfit most;
# - use lasso and group lasso to select couplings, choose their strength by the same
#   protocol, and score the selected network against the true one (ROC AUC, precision and
#   recall).
#
# **Prerequisites.** {doc}`01_glm_basics` (Poisson GLMs in nemos, temporal bases); what a
# training and a test set are.
#
# **Time to learn.** The core path (sections 1 to 6, checks and summary) takes about 60
# minutes to read and run; the four exercises about 30 more. *Going further* (a faster grid
# search that gives the same answer, an independent solver, the real recording) is
# optional: about 15 minutes.
#
# **Run time** (measured by `benchmarks/chapters.py`, see
# {doc}`../book/setup`):
# <!-- timings:overfitting_ridge -->
# smoke 58 s (1.0 GB) · default 157 s (1.4 GB) · full: not measured yet · on 2 CPU cores, peak memory in brackets
# <!-- /timings -->
#
# **Notebooks to download** (from the book):
# <a href="../_static/variants/attendee/02_overfitting_ridge.ipynb" download>attendee</a>
# (exercises open, expected figures included) ·
# <a href="../_static/variants/presenter/02_overfitting_ridge.ipynb" download>presenter</a>
# (all code, headings only).

# %% [markdown]
# ## Setup
#
# Besides nemos we need scikit-learn's cross-validation tools. nemos compiles its optimizer
# (with JAX) for each shape of design matrix and each penalty strength; fits that repeat
# both, such as a grid search run twice, reuse the compiled program from a cache on disk,
# and `jax.clear_caches()` frees the compiled programs in memory once a batch of fits is
# done (a Binder has about 2 GB). A fit that stops at its iteration limit raises an error
# here instead of a warning; whether the others reached their optimum, section 2 measures.

# %% tags=["colab-install", "remove-cell"]
# On Google Colab, install the course's helper package and what it needs (Colab's own
# numpy, torch, matplotlib ... are kept where their versions fit); anywhere else (your
# machine, Binder) this cell does nothing. If Colab then offers to restart the session,
# accept and run the notebook again from the top. (Written by
# `python -m course_utils colab-cells` from pyproject.toml: do not edit by hand.)
import sys

COURSE_REPOSITORY = None  # the course's public repository (None: not published yet)
if "google.colab" in sys.modules:
    if COURSE_REPOSITORY is None:
        raise RuntimeError(
            "This copy of the course names no public repository to install course_utils from. "
            "Upload the course folder and run `pip install -e <folder>` in a cell, then run the "
            "notebook from the top."
        )
    import subprocess

    requirement = f"course-utils @ git+{COURSE_REPOSITORY}"
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", requirement])

# %%
import time
import warnings

import jax
import matplotlib
import matplotlib.pyplot as plt
import nemos as nmo
import numpy as np
import pynapple as nap
from matplotlib.gridspec import GridSpec
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from course_utils import config, metrics, plotting
from course_utils.data import DataFetchError, load_head_direction
from course_utils.exercises import ExerciseChecks
from course_utils.glue import glue
from course_utils.model_selection import blocked_folds
from course_utils.models.glm_convergence import DEFAULT_TOLERANCE_NATS, is_converged, model_decrement, newton_decrement
from course_utils.models.glm_grid import fit_strength_grid
from course_utils.workshop import report

plotting.use_course_style()
nap.nap_config.suppress_conversion_warnings = True  # nemos returns jax arrays; the copy is intended
config.use_jax_compilation_cache()
warnings.filterwarnings("error", message="The fit did not converge")
report(packages=("nemos", "pynapple", "scikit-learn", "numpy"))
checks = ExerciseChecks("02_overfitting_ridge")  # checks your exercise answers (see "Exercises")

# %% tags=["parameters"]
SIZES = config.sizes("overfitting_ridge")
N_NEURONS = SIZES["n_neurons"]  # simulated head-direction cells
DURATION_S = SIZES["duration_s"]  # length of the simulated recording
BIN_S = SIZES["bin_s"]  # spike-count bin
HISTORY_WINDOW_S = SIZES["history_window_s"]  # how far back the model looks
N_HISTORY_BASIS = SIZES["n_history_basis"]  # raised cosines per neuron's history
N_HARMONICS = SIZES["n_heading_harmonics"]  # Fourier harmonics of the heading
TRAIN_FRACTION = SIZES["train_fraction"]  # the rest, the recording's end, is the test set
N_FOLDS = SIZES["n_folds"]  # cross-validation folds
ALPHAS = tuple(sorted(SIZES["alphas"]))  # ridge strengths of the grid search
PATH_ALPHAS = tuple(sorted(SIZES["path_alphas"], reverse=True))  # lasso / group-lasso path
RIDGE_LADDER = (0.01, 1.0, 100.0)  # the three strengths compared side by side
MAX_ITER = 10_000  # optimizer steps allowed per LBFGS fit
LBFGS_TOL = 1e-5  # stop when the weights move less than this a step (nemos's default: 1e-4)
SPARSE_MAX_ITER = 10_000  # proximal gradient takes more, smaller steps
SEED = 2026
rng = config.seed_everything(SEED)
SIZES

# %% [markdown]
# ## 1. A population whose wiring we know
#
# `load_head_direction()` returns, by default, a simulated recording shaped like the
# anterodorsal thalamus recording of {cite}`peyrache2015internally`: spike times (a pynapple
# `TsGroup`), the head direction in radians (a `Tsd`) and the epochs to analyse (an
# `IntervalSet`, here the whole wake session). Each simulated neuron has a preferred
# direction, a refractory *self* filter, and receives **coupling filters** from a few other
# neurons on a sparse random graph; `truth` holds them all. The neurons are numbered in the
# order of their preferred directions.

# %%
session = load_head_direction(source="simulated", seed=SEED, duration_s=DURATION_S, bin_s=BIN_S, n_neurons=N_NEURONS)
truth = session.truth
units, heading, wake = session.units, session.heading, session.epochs
off_diagonal = ~np.eye(N_NEURONS, dtype=bool)
true_edges = truth.adjacency[off_diagonal]
glue("n_neurons", int(N_NEURONS), display=False)
glue("n_edges", int(true_edges.sum()), display=False)
glue("n_pairs", int(off_diagonal.sum()), display=False)
glue("duration_min", float(DURATION_S / 60), display=False)
units

# %%
tuning = nap.compute_tuning_curves(
    units, heading, bins=36, range=(0, 2 * np.pi), epochs=wake, feature_names=["heading"]
)
angles = tuning.coords["heading"].values
true_net = truth.filters.sum(axis=2)  # summed over lags: the net effect of one spike
net_limit = float(np.abs(true_net[off_diagonal]).max())
coupling_cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.8")  # grey diagonal
NET_LABEL = "net coupling (sum over lags)"


def direction_color(neuron: int) -> tuple:
    """One colour per preferred direction, on a cyclic colour map."""
    return plt.cm.hsv(truth.preferred_direction[neuron] / (2 * np.pi))


def show_matrix(ax: plt.Axes, matrix: np.ndarray, limit: float, title: str):
    """Draw a [post, pre] coupling matrix; the diagonal (self filters) is left grey."""
    shown = np.where(np.eye(len(matrix), dtype=bool), np.nan, matrix)
    image = ax.imshow(shown, cmap=coupling_cmap, vmin=-limit, vmax=limit)
    ax.set(xlabel="presynaptic neuron", ylabel="postsynaptic neuron", title=title)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    return image


fig = plt.figure(figsize=(11, 3.6))
grid = GridSpec(2, 3, figure=fig, width_ratios=[1.6, 1, 1], height_ratios=[1, 2.2])
ax_heading = fig.add_subplot(grid[0, 0])
ax_raster = fig.add_subplot(grid[1, 0], sharex=ax_heading)
ax_tuning, ax_graph = fig.add_subplot(grid[:, 1]), fig.add_subplot(grid[:, 2])
window = nap.IntervalSet(60.0, 80.0)
shown = heading.restrict(window)
ax_heading.plot(shown.t, shown.values, ".", ms=1, color=plotting.COLORS["data"])
ax_heading.set(ylabel="heading (rad)", title="Heading and spikes over 20 s")
ax_heading.tick_params(labelbottom=False)
for neuron, spikes in units.restrict(window).items():
    ax_raster.plot(spikes.t, np.full(len(spikes), neuron), "|", ms=3, color=direction_color(neuron))
ax_raster.set(xlabel="time (s)", ylabel="neuron")
for neuron in range(N_NEURONS):
    ax_tuning.plot(angles, tuning.sel(unit=neuron).values, lw=1, color=direction_color(neuron))
ax_tuning.set(xlabel="heading (rad)", ylabel="firing rate (Hz)", title="Tuning curves")
image = show_matrix(ax_graph, true_net, net_limit, "True couplings")
fig.colorbar(image, ax=ax_graph, label=NET_LABEL)
plotting.label_panels([ax_heading, ax_tuning, ax_graph])
plt.show()

# %% [markdown]
# The activity travels with the heading from neuron to neuron (A), because each neuron is tuned
# to one direction (B). Of the {glue:text}`n_pairs` ordered pairs of neurons only
# {glue:text}`n_edges` are coupled (C: red excitatory, blue inhibitory, white none); the
# grey diagonal is each neuron's own history. Our job is to recover panel C from the spikes.
#
# ## 2. A model with many weights, fitted without restraint
#
# Each neuron's log-rate is modelled as a sum of
#
# - a smooth function of the heading: a **Fourier basis** of the first few harmonics
#   (`FourierEval`, periodic as an angle must be);
# - the recent past of *every* neuron of the population, its own included, each through a
#   **log-stretched raised-cosine basis** (`RaisedCosineLogConv`) as in chapter 1.
#
# Adding the two bases concatenates their features. One design matrix serves all neurons, so
# nemos' `PopulationGLM` fits the whole population at once.


# %%
def heading_at(counts: nap.TsdFrame, heading: nap.Tsd) -> nap.Tsd:
    """The heading at each count bin: the nearest sample, since angles must not be averaged."""
    nearest = nap.Ts(t=counts.t).value_from(heading)
    return nap.Tsd(t=counts.t, d=nearest.values, time_support=counts.time_support)


counts = units.count(BIN_S, ep=wake)
heading_binned = heading_at(counts, heading)
window_size = int(round(HISTORY_WINDOW_S / BIN_S))
heading_basis = nmo.basis.FourierEval(frequencies=(1, N_HARMONICS + 1), bounds=(0, 2 * np.pi), label="heading")
history_basis = nmo.basis.RaisedCosineLogConv(N_HISTORY_BASIS, window_size=window_size, label="history")
basis = heading_basis + history_basis


def design_matrix(
    basis: nmo.basis.AdditiveBasis, counts: nap.TsdFrame, heading_binned: nap.Tsd
) -> tuple[np.ndarray, np.ndarray]:
    """Features and counts of every bin with a full history window (the first window is NaN)."""
    features = np.asarray(basis.compute_features(heading_binned, counts).values)
    complete = ~np.isnan(features).any(axis=1)
    return features[complete], np.asarray(counts.values, dtype=float)[complete]


features, spike_counts = design_matrix(basis, counts, heading_binned)
columns = basis.split_by_feature(np.arange(basis.n_output_features), axis=0)
history_columns = columns["history"]  # [presynaptic neuron, basis function]
n_features = features.shape[1]
coupling_pattern = np.zeros((n_features, N_NEURONS))  # shaped like a PopulationGLM's coef_
coupling_pattern[history_columns.ravel()] = 1.0  # 1 for the history weights, 0 for the heading's
glue("n_weights", int(n_features), display=False)
glue("n_harmonic_features", int(columns["heading"].size), display=False)
print(
    f"design matrix: {features.shape[0]} bins × {n_features} features; "
    f"history columns per neuron: {history_columns.shape[1]}"
)

# %% [markdown]
# Every neuron gets {glue:text}`n_weights` weights: {glue:text}`n_harmonic_features` for
# the heading and the rest for the population's history. We keep the last part of the
# recording as the **test set**, the future the model has never seen, and train on the
# beginning. The training set is cut to a multiple of the number of cross-validation folds
# (section 4), so that every fold has the same size.
#
# The features are then **standardized** (zero mean, unit standard deviation) with
# scikit-learn's `StandardScaler`, fitted on the training set only: the test set's
# statistics are part of the future. A penalty treats all weights alike, so the features
# must share one scale; standardized features also make the optimizer converge much faster.

# %%
n_train = int(TRAIN_FRACTION * len(features)) // N_FOLDS * N_FOLDS
features_train, Y_train = features[:n_train], spike_counts[:n_train]
scaler = StandardScaler().fit(features_train)
X_train, X_test = scaler.transform(features_train), scaler.transform(features[n_train:])
Y_test = spike_counts[n_train:]
_, kernels = history_basis.evaluate_on_grid(window_size)  # [lag, basis function]
lags_s = np.arange(1, window_size + 1) * BIN_S
true_filters = np.zeros((N_NEURONS, N_NEURONS, window_size))
true_filters[:, :, : truth.window_size] = truth.filters  # zero beyond the truth's window


def warm_start(model: nmo.glm.PopulationGLM) -> tuple[np.ndarray, np.ndarray]:
    """A fitted model's parameters, to start the next fit of a path from."""
    return model.coef_, model.intercept_


def log_likelihood(model, X: np.ndarray, Y: np.ndarray) -> float:
    """Mean Poisson log-likelihood per bin and neuron (nats) of a fitted model or pipeline."""
    return metrics.poisson_log_likelihood(Y, np.asarray(model.predict(X)))


def model_pseudo_r2(model, X: np.ndarray, Y: np.ndarray) -> float:
    """McFadden's pseudo-R² against each neuron's mean training rate."""
    return metrics.pseudo_r2(Y, np.asarray(model.predict(X)), null_rate=Y_train.mean(axis=0))


def coupling_filters(history_coef: np.ndarray) -> np.ndarray:
    """Filters [post, pre, lag] in log-rate per spike, from the history weights of a fit."""
    weights = np.asarray(history_coef).reshape(N_NEURONS, N_HISTORY_BASIS, N_NEURONS)
    weights = weights / scaler.scale_[history_columns][:, :, None]  # undo the standardization
    return np.einsum("jbi,lb->ijl", weights, kernels)


def filters_of(model: nmo.glm.PopulationGLM) -> np.ndarray:
    """The coupling filters of a model fitted on the full design matrix."""
    return coupling_filters(np.asarray(model.coef_)[history_columns.ravel()])


unregularized = nmo.glm.PopulationGLM(solver_name="LBFGS", solver_kwargs=dict(maxiter=MAX_ITER, tol=LBFGS_TOL))
unregularized.fit(X_train, Y_train)
r2_train_unreg = model_pseudo_r2(unregularized, X_train, Y_train)
r2_test_unreg = model_pseudo_r2(unregularized, X_test, Y_test)
ll_test_unreg = log_likelihood(unregularized, X_test, Y_test)
spikes_per_neuron = float(np.median(Y_train.sum(axis=0)))
glue("r2_train_unreg", float(r2_train_unreg), display=False)
glue("r2_test_unreg", float(r2_test_unreg), display=False)
glue("train_min", float(n_train * BIN_S / 60), display=False)
glue("spikes_per_weight", float(spikes_per_neuron / (n_features + 1)), display=False)

# %%
filters_unreg = filters_of(unregularized)
strongest_excitatory = np.unravel_index(np.argmax(truth.coupling_weight), truth.coupling_weight.shape)
strongest_inhibitory = np.unravel_index(np.argmin(truth.coupling_weight), truth.coupling_weight.shape)
norm_unreg = np.sqrt((filters_unreg**2).sum(axis=2))
spurious = np.unravel_index(np.argmax(np.where(off_diagonal & ~truth.adjacency, norm_unreg, -1.0)), norm_unreg.shape)
examples = {
    "excitatory coupling": strongest_excitatory,
    "inhibitory coupling": strongest_inhibitory,
    "no coupling (largest spurious filter)": spurious,
}


def plot_filters(ax: plt.Axes, filters: np.ndarray, title: str) -> None:
    """Fitted (solid) and true (dashed) filters of the three example pairs."""
    for (name, (post, pre)), color in zip(examples.items(), ("#d62728", "#1f77b4", "#7f7f7f")):
        ax.plot(lags_s * 1e3, true_filters[post, pre], "--", color=color, lw=1.2)
        ax.plot(lags_s * 1e3, filters[post, pre], color=color, label=f"{name} ({pre}→{post})")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="lag (ms)", title=title)


fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw=dict(width_ratios=[1, 1.6]))
axes[0].bar([0, 1], [r2_train_unreg, r2_test_unreg], color=[plotting.COLORS["train"], plotting.COLORS["test"]])
axes[0].set_xticks([0, 1], [f"training\n(first {n_train * BIN_S / 60:.1f} min)", "test\n(the end)"])
axes[0].set(ylabel="pseudo-R²", title="Unregularized fit")
plot_filters(axes[1], filters_unreg, "Coupling filters: fit (solid) and truth (dashed)")
axes[1].set_ylabel("log-rate per spike")
axes[1].legend(loc="lower right", fontsize=8)
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# Trained on {glue:text}`train_min:.1f` minutes, the unregularized model explains the
# training data (pseudo-R² {glue:text}`r2_train_unreg:.3f`) better than the test data
# ({glue:text}`r2_test_unreg:.3f`). Its filters (B) follow the truth's broad shape but
# wiggle, and pairs with no coupling at all get filters that are not zero; shown is the
# largest of them, which the model fits to the noise of its training spikes (a few weights
# that the data barely constrain can take large values of either sign). With about
# {glue:text}`spikes_per_weight:.0f` training spikes per weight and neuron, the data do not
# pin every weight down.
#
# ```{note}
# Part of the train/test gap is not overfitting: the recording drifts slowly (as real ones
# do), so the end of the session differs from its beginning. Only the *comparison* between
# models on the same test data tells overfitting apart, as in the next sections.
# ```
#
# ### Did the fit reach its optimum?
#
# Everything below compares fitted models, so every fit must be at its optimum, not merely
# where the solver stopped. A solver stops when its own tolerance is met (nemos's `LBFGS`
# when the weights stop moving), and a tolerance is not the optimum. The log-likelihood is
# concave, so we can *measure* the distance. With $g$ the gradient and $H$ the curvature
# (Hessian) of the negative log-likelihood at the fitted weights, one Newton step would
# gain about
#
# $$
# \delta = \tfrac12\, g^\top H^{-1} g \quad\text{nats},
# $$
#
# the **Newton decrement**. It is a second-order estimate: if the log-likelihood were
# exactly quadratic around the fit, the optimum would be $\delta$ nats better and the weights
# $\sqrt{2\delta}$ standard errors away (the curvature *is* the Fisher information). We call
# a fit converged when $\delta \le$ {glue:text}`tolerance_nats:g` nats for every neuron,
# about 0.14 standard errors, far inside the weights' statistical uncertainty; the threshold
# is fixed here, before any fit is judged. The estimate is only good close to the optimum,
# so every LBFGS fit here stops when its weights move less than 1e-5 a step (nemos's default
# is 1e-4), and *Going further* measures the true distance of one fit with an independent
# solver. The fits run in single precision (float32, nemos's default), which is faster;
# the decrement, computed in double precision from the fitted weights, says whether that was
# enough. For the lasso and the group lasso,
# whose penalty has a kink at zero, $g$ is the smallest gradient the penalty allows
# (`course_utils.models.glm_convergence` has the details). Every fit whose weights the
# chapter reports is judged by its decrement; the fold fits inside `GridSearchCV` (section
# 4), whose weights are not kept, by nemos's own convergence flag. Each verdict goes into
# `convergence_log`.
#
# The optimum is also a single point here, because no feature is a weighted sum of the
# others and the intercept (the Fourier features have no constant term): the design has full
# column rank, and the log-likelihood is then strictly concave; a penalty only adds
# concavity. With B-splines, which sum to one
# as the intercept's column does, the maximum would be a flat ridge: drop one spline per
# variable, or penalize them (chapter 1, section 5).

# %%
convergence_log = []  # one row per reported fit: what, criterion, value, met


def judge(
    label: str, model: nmo.glm.PopulationGLM, X: np.ndarray, Y: np.ndarray, decrements: np.ndarray | None = None
) -> float:
    """Record whether a fitted model is within the tolerance of its optimum; return the decrement.

    ``decrements`` (one per neuron) are computed here unless the caller already has them.
    """
    if decrements is None:
        decrements = model_decrement(model, X, Y)
    convergence_log.append(
        dict(
            fit=label, criterion="Newton decrement (nats)", value=float(decrements.max()), met=is_converged(decrements)
        )
    )
    return float(decrements.max())


decrement_unreg = judge("unregularized", unregularized, X_train, Y_train)
glue("tolerance_nats", float(DEFAULT_TOLERANCE_NATS), display=False)
glue("decrement_unreg", decrement_unreg, display=False)
glue("steps_unreg", int(unregularized.optim_info_.num_steps), display=False)
unregularized.optim_info_

# %% [markdown]
# nemos reports that its solver converged after {glue:text}`steps_unreg` steps; the largest
# Newton decrement over the neurons is {glue:text}`decrement_unreg:.1e` nats, below the
# tolerance: the unregularized fit is at its optimum, to well within its standard errors.
# (*Going further* asks a solver that shares no code with nemos and gets the same answer.)
#
# ## 3. Ridge: a price on large weights
#
# Ridge regression {cite}`hoerl1970ridge` maximizes the log-likelihood minus a penalty on
# the squared size of the weights $w$ (the intercepts are not penalized):
#
# $$
# \hat w = \arg\max_w \Big[ \sum_{t=1}^{T} \log p(y_t \mid x_t, w) - \frac{\alpha}{2} \lVert w \rVert_2^2 \Big].
# $$
#
# The strength $\alpha \ge 0$ sets the exchange rate: a weight is worth making larger only if
# it buys enough log-likelihood. $\alpha = 0$ is the unregularized fit; a large $\alpha$
# pulls every weight towards zero. Seen from Bayes' rule, ridge is the most probable weight
# under a Gaussian prior of precision $\alpha$ (standard deviation $1/\sqrt{\alpha}$) on each
# standardized weight. We penalize the history weights only: every neuron is known to be
# tuned to the heading, and we want to shrink the couplings, not the tuning. nemos accepts a
# strength per weight, an array shaped like `coef_`; `coupling_pattern` holds 1 for the
# history weights and 0 for the heading's. Each neuron's *own* history (its refractoriness
# and bursting) is penalized with the couplings here, a choice: leaving it free would be as
# defensible, since every neuron is known to have one.
#
# ```{important}
# nemos minimizes the *mean* negative log-likelihood over the $T$ bins plus
# $\frac{\lambda}{2}\lVert w\rVert^2$, so its `regularizer_strength` is $\lambda = \alpha / T$.
# We quote $\alpha$, the strength on the total log-likelihood: it is the prior's precision,
# and means the same thing however long the recording is. The nemos tutorials' `0.1` is
# $\alpha$ = {glue:text}`nemos_tutorial_alpha:.0f` on our {glue:text}`n_train` training bins,
# a strength that section 4 should choose, not a default to copy; always convert.
# ```
#
# We fit three strengths, α = 0.01, 1 and 100, on the whole training set and show them side
# by side.


# %%
def ridge_glm(alpha: float, n_bins: int, pattern: np.ndarray = coupling_pattern) -> nmo.glm.PopulationGLM:
    """An unfitted ridge PopulationGLM of strength ``alpha`` (on the total log-likelihood of
    ``n_bins`` bins) on the weights where ``pattern`` is 1."""
    return nmo.glm.PopulationGLM(
        regularizer="Ridge",
        regularizer_strength=alpha / n_bins * pattern,
        solver_name="LBFGS",
        solver_kwargs=dict(maxiter=MAX_ITER, tol=LBFGS_TOL),
    )


ridge_fits = {}  # fits on the whole training set, by strength α
for alpha in RIDGE_LADDER:
    ridge_fits[alpha] = ridge_glm(alpha, n_train).fit(X_train, Y_train)
    judge(f"ridge α={alpha:g}", ridge_fits[alpha], X_train, Y_train)
jax.clear_caches()  # free the compiled programs of the fits just made (memory budget)
glue("n_alphas", len(ALPHAS), display=False)
glue("n_train", int(n_train), display=False)
glue("nemos_tutorial_alpha", float(0.1 * n_train), display=False)
ll_test = {alpha: log_likelihood(model, X_test, Y_test) for alpha, model in ridge_fits.items()}
glue("ll_test_small", float(ll_test[RIDGE_LADDER[0]]), display=False)
glue("ll_test_unreg", float(ll_test_unreg), display=False)

fig, axes = plt.subplots(1, 4, figsize=(12.5, 3.2), sharey=False)
for ax, alpha in zip(axes[:3], RIDGE_LADDER):
    plot_filters(ax, filters_of(ridge_fits[alpha]), f"α = {alpha:g}")
axes[0].set_ylabel("log-rate per spike")
for ax in axes[1:3]:
    ax.sharey(axes[0])
fig.legend(
    *axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, title="fit (solid) and truth (dashed)"
)
labels = ["none"] + [f"{a:g}" for a in RIDGE_LADDER]
values = [ll_test_unreg] + [ll_test[a] for a in RIDGE_LADDER]
axes[3].plot(range(4), values, "o-", color=plotting.COLORS["test"])
axes[3].set_xticks(range(4), labels)
axes[3].set(xlabel="ridge strength α", ylabel="test log-likelihood (nats/bin)", title="Held-out fit")
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# At α = 0.01 the penalty is negligible and the filters are those of the unregularized fit
# (test log-likelihood {glue:text}`ll_test_small:.5f` against {glue:text}`ll_test_unreg:.5f`
# nats per bin and neuron). At α = 100 the wiggles are gone and the spurious filter is
# nearly flat, and the model predicts the test set better (D); the true filters shrink a
# little too. Too little penalty keeps the noise; too much would erase the signal. Which α
# is right? The test set must not say: it would then no longer be a fair test.
#
# ## 4. Choosing α by cross-validation, with folds that respect time
#
# **Cross-validation** splits the *training* set into $K$ folds, fits on $K-1$ of them,
# scores on the one left out, and averages over the $K$ choices. Three things make it
# honest on a recording.
#
# - **Contiguous folds.** Neighbouring bins are alike: the head points the same way, the
#   same slow drift of excitability is under way. Folds cut into blocks of time score the
#   model on a stretch it has not seen, as the test set will (exercise 2 shows what
#   shuffled folds do instead).
# - **A gap.** A row's history features are made from the counts of the
#   {glue:text}`window_size` bins before it (their projections on the basis). The training
#   rows just after a validation block therefore carry that block's last counts, and would
#   leak them into the fit. `blocked_folds` leaves one history window unscored at the end of
#   a validation block that touches training data, and, as extra caution, at its start: no
#   scored count is ever seen in training, as a target or as a feature. Every fold then
#   trains on the same number of bins, so one `regularizer_strength` means one α in every
#   fold. (A gap of half a second does nothing about the slow drift; only blocks much longer
#   than the drift's time scale would.)
# - **Standardize inside the fold.** Scaling statistics computed on the whole training set
#   would carry information from the validation block into the fit. A scikit-learn
#   `Pipeline` of `StandardScaler` and the GLM refits the scaler on each fold's training
#   rows.
#
# scikit-learn's `GridSearchCV` then runs the loop for us: for every strength of the grid
# and every fold, it fits the pipeline on the training rows and scores it on the validation
# rows. nemos's GLMs have the `fit`, `score` and `get_params` it needs. Our scorer returns
# the log-likelihood per bin and neuron and, beside it, whether nemos's solver reported
# convergence, so that every one of these fits is judged too (the pipelines are not kept,
# so the solver's own verdict is the one we can record for them).

# %%
folds = blocked_folds(n_train, N_FOLDS, gap=window_size)
fold_bins = len(folds[0][0])  # bins every fold is trained on


def cv_scorer(pipeline, X: np.ndarray, Y: np.ndarray) -> dict[str, float]:
    """Validation log-likelihood per bin and neuron, and the solver's convergence flag."""
    info = pipeline[-1].optim_info_
    return {
        "log_likelihood": log_likelihood(pipeline, X, Y),
        "converged": float(info.converged and not info.reached_max_steps),
    }


started = time.perf_counter()
search = GridSearchCV(
    make_pipeline(StandardScaler(), ridge_glm(1.0, fold_bins)),
    {"populationglm__regularizer_strength": [alpha / fold_bins * coupling_pattern for alpha in ALPHAS]},
    cv=folds,
    scoring=cv_scorer,
    refit=False,
    error_score="raise",
).fit(features_train, Y_train)
search_seconds = time.perf_counter() - started
jax.clear_caches()
cv_ridge = np.array([search.cv_results_[f"split{k}_test_log_likelihood"] for k in range(N_FOLDS)])  # [fold, strength]
for k in range(N_FOLDS):
    for alpha, flag in zip(ALPHAS, search.cv_results_[f"split{k}_test_converged"]):
        convergence_log.append(
            dict(
                fit=f"ridge α={alpha:g}, fold {k + 1}", criterion="nemos solver converged", value=flag, met=flag == 1.0
            )
        )
best_alpha = ALPHAS[int(np.argmax(cv_ridge.mean(axis=0)))]
for alpha in (best_alpha, ALPHAS[-1]):  # the chosen strength and the strongest, refitted
    if alpha not in ridge_fits:
        ridge_fits[alpha] = ridge_glm(alpha, n_train).fit(X_train, Y_train)
        judge(f"ridge α={alpha:g}", ridge_fits[alpha], X_train, Y_train)
        ll_test[alpha] = log_likelihood(ridge_fits[alpha], X_test, Y_test)
best_model = ridge_fits[best_alpha]
glue("window_size", int(window_size), display=False)
glue("n_folds", int(N_FOLDS), display=False)
glue("ch2_best_alpha", float(best_alpha), display=False)
glue("ch2_ll_test_best", float(ll_test[best_alpha]), display=False)
glue("ll_test_largest", float(ll_test[ALPHAS[-1]]), display=False)
glue("largest_alpha", float(ALPHAS[-1]), display=False)
glue("search_seconds", float(search_seconds), display=False)
gap_unreg = r2_train_unreg - r2_test_unreg
gap_best = model_pseudo_r2(best_model, X_train, Y_train) - model_pseudo_r2(best_model, X_test, Y_test)
glue("gap_unreg", float(gap_unreg), display=False)
glue("gap_best", float(gap_best), display=False)

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.3), gridspec_kw=dict(width_ratios=[1.1, 1, 1]))
roles = np.zeros((N_FOLDS, n_train))  # 0: training, 1: validation, 0.5: gap
block = n_train // N_FOLDS
for k, (_, validation_bins) in enumerate(folds):
    roles[k, k * block : (k + 1) * block] = 0.5
    roles[k, validation_bins] = 1.0
role_colors = matplotlib.colors.ListedColormap([plotting.COLORS["train"], "0.85", plotting.COLORS["test"]])
axes[0].imshow(
    roles,
    aspect="auto",
    interpolation="nearest",
    cmap=role_colors,
    vmin=0,
    vmax=1,
    extent=(0, n_train * BIN_S, N_FOLDS + 0.5, 0.5),
)
axes[0].set_yticks(range(1, N_FOLDS + 1))
axes[0].set(xlabel="training time (s)", ylabel="fold", title="Blocked folds with a gap")
for value, name in ((0.0, "training"), (1.0, "validation"), (0.5, f"gap of {window_size * BIN_S:g} s (not scored)")):
    axes[0].bar(0, 0, color=role_colors(value), label=name)
axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize=8)
for k in range(N_FOLDS):
    axes[1].plot(
        ALPHAS,
        cv_ridge[k] - cv_ridge[k].max(),
        color=plotting.COLORS["model"],
        lw=0.8,
        alpha=0.5,
        label="each fold" if k == 0 else None,
    )
relative = cv_ridge - cv_ridge.max(axis=1, keepdims=True)
axes[1].plot(ALPHAS, relative.mean(axis=0), "o-", color=plotting.COLORS["model"], lw=2, label="mean over folds")
axes[1].plot(
    best_alpha,
    relative.mean(axis=0)[ALPHAS.index(best_alpha)],
    "*",
    ms=14,
    color=plotting.COLORS["model"],
    mec="k",
    label="chosen",
)
axes[1].set(
    xscale="log",
    xlabel="ridge strength α",
    ylabel="validation log-likelihood\n(nats/bin, relative to the fold's best)",
    title=f"{N_FOLDS}-fold cross-validation",
)
axes[1].legend(fontsize=8)
refitted = sorted(ll_test)
axes[2].plot(
    refitted, [ll_test[a] for a in refitted], "o-", color=plotting.COLORS["test"], label="ridge, refitted strengths"
)
axes[2].axhline(ll_test_unreg, color=plotting.COLORS["data"], ls="--", label="unregularized")
axes[2].plot(
    best_alpha, ll_test[best_alpha], "*", ms=14, color=plotting.COLORS["model"], mec="k", label="chosen by blocked CV"
)
axes[2].set(xscale="log", xlabel="ridge strength α", ylabel="test log-likelihood (nats/bin)", title="Held-out test set")
axes[2].legend(fontsize=8)
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# Panel C scores, on the test set, only the strengths refitted on the whole training set
# (those of section 3, and the chosen and the strongest if they are not among them): the test
# set judges the choice, it does not make it. Each fold's validation block is another stretch of time with its own level of
# predictability, so panel B subtracts each fold's best score: what matters is how the score
# changes with α *within* a fold. The folds agree on the shape; blocked cross-validation
# chooses α = {glue:text}`ch2_best_alpha:g`. On the test set, which played no part in the
# choice, the model refitted at that α on the whole training set scores
# {glue:text}`ch2_ll_test_best:.5f` nats per bin, better than the unregularized fit
# ({glue:text}`ll_test_unreg:.5f`) and than the largest strength of the grid,
# α = {glue:text}`largest_alpha:g` ({glue:text}`ll_test_largest:.5f`), which shrinks away
# real structure. The penalty also narrows the gap between training and test pseudo-R² from
# {glue:text}`gap_unreg:.3f` to {glue:text}`gap_best:.3f`: what it removed was fitted noise.
# What remains of the gap includes the drift of section 2's note, which no penalty removes.
#
# ```{note}
# The refit keeps α, not nemos's λ: on the whole training set, λ = α / {glue:text}`n_train`
# instead of α / (bins per fold). `GridSearchCV(refit=True)` would keep λ, a prior
# {glue:text}`n_folds`/({glue:text}`n_folds` − 1) times stronger than the one chosen.
# ```
#
# ```{tip}
# scikit-learn's `TimeSeriesSplit(gap=…)` is another time-respecting scheme: it always
# trains on the past and validates on the block that follows. Its training sets differ in
# size, so one λ would mean a different α in each fold, and nemos compiles its optimizer
# once per size.
# ```
#
# ## 5. Lasso and group lasso: which couplings survive?
#
# Ridge shrinks every weight but sets none to zero, so every pair of neurons keeps a (small)
# coupling. To *select* couplings, penalize absolute values instead:
#
# - the **lasso** {cite}`tibshirani1996regression` penalizes $\alpha \sum_k |w_k|$; it sets
#   individual weights to exactly zero, so a filter can lose some of its basis functions and
#   keep others;
# - the **group lasso** {cite}`yuan2006model` penalizes
#   $\alpha \sum_g \sqrt{p_g}\, \lVert w_g \rVert_2$ over groups $g$ of $p_g$ weights; a whole
#   group is zero or not. We make one group per *filter*: the {glue:text}`n_history_basis`
#   weights of one presynaptic neuron's history onto one postsynaptic neuron.
#
# As for ridge, the heading weights are not penalized (zero strength for the lasso, no group
# for the group lasso). nemos' `GroupLasso` takes the groups as a mask of shape
# `(n_groups, n_features, n_neurons)`; both penalties are fitted with proximal gradient
# descent (`ProximalGradient`).
#
# Where a path starts matters. Started from all-zero weights, proximal gradient stopped
# (its weights moving less than 1e-4 a step) further from the optimum than section 2's
# tolerance when we first ran the chapter: section 2's criterion caught it. Proximal
# gradient's step is set by the stiffest direction of the problem (the correlated history
# features of one neuron), so flat directions, such as the intercepts and heading weights
# that no penalty holds, move slowly from a poor start. So each path starts where the penalty is
# infinite: every coupling zero, the intercepts and heading weights at their optimum, which
# a small unpenalized fit finds. Each strength then starts from the previous one's weights.
# Proximal gradient stops by its own rule (its steps have become small), which on a flat
# stretch can be short of section 2's tolerance; a fit that is short is resumed from where it
# stopped, and the decrement judges the result.
#
# To compare the three penalties fairly, each strength is chosen by **the same protocol** as
# ridge's: the same blocked folds with their gaps, standardization inside each fold, the same
# score, the largest mean validation log-likelihood. Only the loop is written out: along a
# *path* of strengths from strong to weak, each fit starts from the previous one's weights
# (a warm start), which `GridSearchCV` cannot do and which makes the path several times
# faster. The chosen strength is then refitted on the whole training set, along the same
# path.

# %%
group_of_pair = np.arange(N_NEURONS * N_NEURONS).reshape(N_NEURONS, N_NEURONS)  # [post, pre]
group_mask = np.zeros((N_NEURONS * N_NEURONS, n_features, N_NEURONS))
group_mask[group_of_pair[:, :, None], history_columns[None, :, :], np.arange(N_NEURONS)[:, None, None]] = 1.0
SPARSE_PENALTIES = ("lasso", "group lasso")
RESUMES = 2  # a sparse fit short of the tolerance is resumed from its own weights, at most this often
glue("n_groups", int(group_mask.shape[0]), display=False)
glue("n_history_basis", int(N_HISTORY_BASIS), display=False)


def sparse_glm(kind: str, alpha: float, n_bins: int) -> nmo.glm.PopulationGLM:
    """A lasso or group-lasso PopulationGLM of strength ``alpha`` (total log-likelihood)."""
    if kind == "lasso":
        regularizer, strength = nmo.regularizer.Lasso(), alpha / n_bins * coupling_pattern
    else:
        regularizer, strength = nmo.regularizer.GroupLasso(mask=group_mask), alpha / n_bins
    return nmo.glm.PopulationGLM(
        regularizer=regularizer,
        regularizer_strength=strength,
        solver_name="ProximalGradient",
        solver_kwargs=dict(maxiter=SPARSE_MAX_ITER),
    )


heading_columns = columns["heading"].ravel()


def zero_coupling_start(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The optimum at an infinite penalty: couplings zero, heading weights and intercepts fitted."""
    heading_only = nmo.glm.PopulationGLM(solver_name="LBFGS", solver_kwargs=dict(maxiter=MAX_ITER, tol=LBFGS_TOL))
    heading_only.fit(X[:, heading_columns], Y)
    coef = np.zeros((X.shape[1], Y.shape[1]))
    coef[heading_columns] = heading_only.coef_
    return coef, np.asarray(heading_only.intercept_)


def fit_path(
    kind: str, X: np.ndarray, Y: np.ndarray, start: tuple[np.ndarray, np.ndarray], label: str
) -> dict[float, nmo.glm.PopulationGLM]:
    """Fit the path over PATH_ALPHAS from ``start``, strong to weak, each fit warm-started.

    A fit that stops (by the solver's own rule) short of section 2's tolerance is resumed from
    where it stopped, at most RESUMES times; the last one is judged either way.
    """
    path, previous = {}, start
    for alpha in PATH_ALPHAS:
        path[alpha] = sparse_glm(kind, alpha, len(X)).fit(X, Y, init_params=previous)
        decrements = model_decrement(path[alpha], X, Y)
        for _ in range(RESUMES):
            if is_converged(decrements):
                break
            path[alpha] = sparse_glm(kind, alpha, len(X)).fit(X, Y, init_params=warm_start(path[alpha]))
            decrements = model_decrement(path[alpha], X, Y)
        judge(f"{kind} α={alpha:g}, {label}", path[alpha], X, Y, decrements)
        previous = warm_start(path[alpha])
    return path


def standardized_in_fold(train_bins: np.ndarray, validation_bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A fold's training and validation rows, scaled with the training rows' statistics."""
    fold_scaler = StandardScaler().fit(features_train[train_bins])
    return (fold_scaler.transform(features_train[train_bins]), fold_scaler.transform(features_train[validation_bins]))


cv_sparse = {kind: np.empty((N_FOLDS, len(PATH_ALPHAS))) for kind in SPARSE_PENALTIES}
for k, (train_bins, validation_bins) in enumerate(folds):  # the folds and gaps of section 4
    X_fold, X_validation = standardized_in_fold(train_bins, validation_bins)
    start = zero_coupling_start(X_fold, Y_train[train_bins])
    for kind in SPARSE_PENALTIES:
        path = fit_path(kind, X_fold, Y_train[train_bins], start, f"fold {k + 1}")
        cv_sparse[kind][k] = [
            log_likelihood(path[alpha], X_validation, Y_train[validation_bins]) for alpha in PATH_ALPHAS
        ]
    jax.clear_caches()
start = zero_coupling_start(X_train, Y_train)
paths = {kind: fit_path(kind, X_train, Y_train, start, "training set") for kind in SPARSE_PENALTIES}
selected = {}
for kind in SPARSE_PENALTIES:
    chosen = PATH_ALPHAS[int(np.argmax(cv_sparse[kind].mean(axis=0)))]
    selected[kind] = (chosen, paths[kind][chosen])
jax.clear_caches()


def filter_norms(filters: np.ndarray) -> np.ndarray:
    """The size of each filter [post, pre]: zero exactly when every weight of it is zero."""
    return np.sqrt((filters**2).sum(axis=2))


chosen_models = {"ridge": (best_alpha, best_model), **selected}
edge_scores = {name: filter_norms(filters_of(model))[off_diagonal] for name, (_, model) in chosen_models.items()}
auc = {name: float(roc_auc_score(true_edges, score)) for name, score in edge_scores.items()}
kept = edge_scores["group lasso"] > 0
precision_group = float((kept & true_edges).sum() / max(kept.sum(), 1))
recall_group = float((kept & true_edges).sum() / true_edges.sum())
converged_fraction = float(np.mean([row["met"] for row in convergence_log]))
glue("alpha_lasso", float(selected["lasso"][0]), display=False)
glue("alpha_group", float(selected["group lasso"][0]), display=False)
glue("ch2_auc_ridge", auc["ridge"], display=False)
glue("ch2_auc_lasso", auc["lasso"], display=False)
glue("ch2_auc_group_lasso", auc["group lasso"], display=False)
glue("n_kept_group", int(kept.sum()), display=False)
glue("precision_group", precision_group, display=False)
glue("recall_group", recall_group, display=False)
glue("chance_precision", float(true_edges.mean()), display=False)
glue("ch2_converged_fraction", converged_fraction, display=False)
glue("n_fits_decrement", sum(row["criterion"].startswith("Newton") for row in convergence_log), display=False)
glue("n_fits_flag", sum(row["criterion"].startswith("nemos") for row in convergence_log), display=False)
glue(
    "largest_decrement",
    max(row["value"] for row in convergence_log if row["criterion"].startswith("Newton")),
    display=False,
)
best_ranker = max(auc, key=auc.get)
ranking_sentence = {
    "ridge": "shrinking without selecting ranks the true couplings best",
    "lasso": "the lasso ranks the true couplings best",
    "group lasso": "the group lasso ranks the true couplings best",
}[best_ranker]
glue("ranking_sentence", ranking_sentence, display=False)
glue("auc_spread", float(max(auc.values()) - min(auc.values())), display=False)

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
path_norms = np.array(
    [filter_norms(filters_of(paths["group lasso"][a]))[off_diagonal] for a in PATH_ALPHAS]
)  # [strength, pair]
for pair in np.flatnonzero(~true_edges):
    axes[0].plot(PATH_ALPHAS, path_norms[:, pair], color=plotting.COLORS["data"], lw=0.6, alpha=0.5)
for pair in np.flatnonzero(true_edges):
    axes[0].plot(PATH_ALPHAS, path_norms[:, pair], color=plotting.COLORS["model"], lw=1.0)
axes[0].plot([], [], color=plotting.COLORS["model"], label="true coupling")
axes[0].plot([], [], color=plotting.COLORS["data"], label="no coupling")
axes[0].axvline(selected["group lasso"][0], color="k", ls=":", label="chosen α")
axes[0].set(xscale="log", xlabel="group-lasso strength α", ylabel="filter size (norm)", title="Group-lasso path")
axes[0].legend(fontsize=8)
n_kept_path = {
    kind: [int((filter_norms(filters_of(paths[kind][a]))[off_diagonal] > 0).sum()) for a in PATH_ALPHAS]
    for kind in paths
}
for kind, color in zip(paths, (plotting.COLORS["alternative"], plotting.COLORS["model"])):
    axes[1].plot(PATH_ALPHAS, n_kept_path[kind], "o-", color=color, label=kind)
axes[1].axhline(true_edges.sum(), color=plotting.COLORS["truth"], ls="--", label="true couplings")
axes[1].set(
    xscale="log", xlabel="strength α", ylabel="couplings kept (non-zero filters)", title="Sparsity along the path"
)
for ax in axes[:2]:
    ax.set_xticks(PATH_ALPHAS, [f"{a:g}" for a in PATH_ALPHAS], minor=False)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.invert_xaxis()  # strong penalties on the left
axes[1].legend(fontsize=8)
for (name, score), color in zip(
    edge_scores.items(), (plotting.COLORS["data"], plotting.COLORS["alternative"], plotting.COLORS["model"])
):
    false_positive, true_positive, _ = roc_curve(true_edges, score)
    alpha = chosen_models[name][0]
    axes[2].plot(false_positive, true_positive, color=color, label=f"{name} (α = {alpha:g}): AUC {auc[name]:.2f}")
axes[2].plot([0, 1], [0, 1], color="k", lw=0.5, ls=":")
axes[2].set(xlabel="false-positive rate", ylabel="true-positive rate", title="Edge recovery (ROC)")
axes[2].legend(fontsize=8, loc="lower right")
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# Along the path (A, strong penalty on the left), the true couplings are the first to leave
# zero; uncoupled pairs join later and mostly stay small. The lasso keeps more non-zero
# filters than the group lasso at the same strength (B): it zeroes weights one by one, and a
# filter counts as kept as soon as one of its weights survives. The same α is not the same
# price, though: for a filter of $p$ weights, $\sqrt{p}\,\lVert w \rVert_2 \ge \lVert w
# \rVert_1$, so at equal α the group lasso charges at least as much, and part of the gap in
# B is that scale. Compare the two at equal recall, as exercise 4 does, to see what the
# grouping itself adds.
#
# Ranking the pairs by the size of their fitted filter (C), every penalty puts the true
# couplings well above the absent ones. The ROC curve plots, as the threshold on filter
# size falls, the fraction of true couplings above it against the fraction of absent ones;
# its area (AUC) is the probability that a true coupling's filter is larger than an absent
# one's (0.5 is chance). With every strength chosen by the same blocked cross-validation,
# the AUCs are {glue:text}`ch2_auc_ridge:.3f` for ridge (α = {glue:text}`ch2_best_alpha:g`),
# {glue:text}`ch2_auc_lasso:.3f` for the lasso (α = {glue:text}`alpha_lasso:g`) and
# {glue:text}`ch2_auc_group_lasso:.3f` for the group lasso (α = {glue:text}`alpha_group:g`):
# {glue:text}`ranking_sentence`, and all three lie within {glue:text}`auc_spread:.3f` of
# each other. (The sparse curves run straight where they reach the filters set exactly to
# zero: those are tied, and the curve crosses them in one step.) What the sparse penalties
# add is a yes/no answer, and at the strength chosen for prediction that answer is generous:
# the group lasso keeps {glue:text}`n_kept_group` of the {glue:text}`n_pairs` filters, a
# **precision** (the fraction of kept filters that are true couplings) of
# {glue:text}`precision_group:.2f` (chance: {glue:text}`chance_precision:.2f`) at a
# **recall** (the fraction of true couplings kept) of {glue:text}`recall_group:.2f`. The
# strength that *predicts* best is weaker than the one that would *draw the network* best:
# prediction tolerates many small spurious filters, a wiring diagram does not (exercise 4).
#
# Every fit behind these numbers was judged: {glue:text}`n_fits_decrement` by their Newton
# decrement (the largest was {glue:text}`largest_decrement:.1e` nats) and the
# {glue:text}`n_fits_flag` fold fits of the grid search by nemos's flag; a fraction
# {glue:text}`ch2_converged_fraction:.2f` of them met their criterion. For the sparse penalties
# the chapter has no second solver at this size (scikit-learn's Poisson regression has no L1
# penalty); the course's tests confirm nemos's proximal gradient on a small lasso problem
# against a different algorithm (L-BFGS-B on $w = u - v$, $u, v \ge 0$): the same weights,
# the same zeros, the same objective. Here the margin below the tolerance is what we rely on.
#
# ## 6. The recovered functional connectivity
#
# Summing each filter over its lags gives one number per pair, the net effect of a spike of
# the presynaptic neuron on the postsynaptic neuron's log-rate. Side by side with the truth:

# %%
net = {
    "truth": true_net,
    f"group lasso (α = {selected['group lasso'][0]:g})": filters_of(selected["group lasso"][1]).sum(axis=2),
    f"ridge (α = {best_alpha:g})": filters_of(best_model).sum(axis=2),
}
net_r = {
    name: metrics.pearson_r(matrix[off_diagonal], true_net[off_diagonal])
    for name, matrix in net.items()
    if name != "truth"
}
net_r_group, net_r_ridge = net_r.values()
glue("net_r_group", float(net_r_group), display=False)
glue("net_r_ridge", float(net_r_ridge), display=False)
glue(
    "net_sentence",
    "the group lasso's matrix is the closer of the two"
    if net_r_group > net_r_ridge
    else "ridge's matrix is the closer of the two",
    display=False,
)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for ax, (name, matrix) in zip(axes, net.items()):
    image = show_matrix(ax, matrix, net_limit, name if name == "truth" else f"{name}\nr = {net_r[name]:.2f}")
fig.colorbar(image, ax=axes, label=NET_LABEL, shrink=0.9)
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# Both matrices show the truth's structure with spurious couplings around it. Their entries
# correlate with the true ones at r = {glue:text}`net_r_group:.2f` for the group lasso and
# r = {glue:text}`net_r_ridge:.2f` for ridge: {glue:text}`net_sentence`. Remember what this
# matrix is: *functional* connectivity, the best predictive weights given everything else in
# the model. A real synapse is one cause of such a weight; an unrecorded neuron driving two
# recorded ones is another (exercise 3).
#
# ## Exercises
#
# Each exercise has a code cell to complete and, after it, a cell that checks your answer:
# it says what is wrong (a shape, a sign, a factor, how far off) without giving the answer
# away. Run the check cell after each attempt. In the book the solutions are hidden under
# the exercise; the attendee notebook leaves them out.
#
# ### Exercise 1: write the time-aware cross-validation loop
#
# `GridSearchCV` hid the loop of section 4; write it yourself, in two functions.
#
# 1. `folds_with_gap(n_bins, n_folds, gap)`: cut `range(n_bins)` into `n_folds` contiguous
#    blocks of equal size. For fold `k`, the training bins are every bin outside block `k`;
#    the validation bins are block `k` without its first `gap` bins (unless it is the first
#    block) and without its last `gap` bins (unless it is the last). Return a list of
#    `(training_bins, validation_bins)` pairs of integer arrays.
# 2. `cross_validated_log_likelihood(features, counts, alphas, folds)`: for each fold, fit a
#    `StandardScaler` on the training rows only, transform training and validation rows,
#    fit `ridge_glm(alpha, n_training_bins)` for each α, and score it on the validation rows
#    with `log_likelihood`. Return an array `[fold, alpha]`.
#
# The check compares your folds with `blocked_folds` and your scores with `GridSearchCV`'s.


# %% tags=["exercise"]
def folds_with_gap(n_bins: int, n_folds: int, gap: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous folds: (training bins, validation bins without the gaps) of each fold."""
    # Your code: block k is range(k * n_bins // n_folds, (k + 1) * n_bins // n_folds).
    ...


def cross_validated_log_likelihood(
    features: np.ndarray, counts: np.ndarray, alphas: tuple[float, ...], folds: list
) -> np.ndarray:
    """Validation log-likelihood per bin and neuron, [fold, alpha], of ridge fits."""
    # Your code: for each (training_bins, validation_bins) in folds, a StandardScaler fitted
    # on the training rows; for each alpha, ridge_glm(alpha, len(training_bins)).fit(...)
    # and log_likelihood(...) on the validation rows.
    ...


# %% tags=["solution", "hide-cell"]
def folds_with_gap(n_bins: int, n_folds: int, gap: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous folds: (training bins, validation bins without the gaps) of each fold."""
    bins, pairs = np.arange(n_bins), []
    for k in range(n_folds):
        start, stop = k * n_bins // n_folds, (k + 1) * n_bins // n_folds
        first = start + gap if k > 0 else start
        last = stop - gap if k < n_folds - 1 else stop
        pairs.append((np.concatenate([bins[:start], bins[stop:]]), bins[first:last]))
    return pairs


def cross_validated_log_likelihood(
    features: np.ndarray, counts: np.ndarray, alphas: tuple[float, ...], folds: list
) -> np.ndarray:
    """Validation log-likelihood per bin and neuron, [fold, alpha], of ridge fits."""
    scores = np.empty((len(folds), len(alphas)))
    for k, (training_bins, validation_bins) in enumerate(folds):
        fold_scaler = StandardScaler().fit(features[training_bins])
        X_fold = fold_scaler.transform(features[training_bins])
        X_validation = fold_scaler.transform(features[validation_bins])
        for j, alpha in enumerate(alphas):
            model = ridge_glm(alpha, len(training_bins)).fit(X_fold, counts[training_bins])
            scores[k, j] = log_likelihood(model, X_validation, counts[validation_bins])
    return scores


# %% tags=["check"]
CHECK_ALPHAS = (100.0,)  # one strength of the grid: enough to check the loop, quick to fit
checks.function(
    "ex1_folds_with_gap",
    folds_with_gap,
    [(12, 3, 1), (12, 3, 0), (n_train, N_FOLDS, window_size)],
    reference=blocked_folds,
    hints={
        "shape": "item k is fold k's (training_bins, validation_bins). Validation: block k "
        "without `gap` bins at each end that touches another block (the first block "
        "keeps its start, the last its end). Training: every bin outside block k, the "
        "gaps included (they are simply not scored).",
        "type": "return a list with one (training_bins, validation_bins) pair per fold.",
        "wrong": "the first block has no gap at its start and the last none at its end.",
    },
)
checks.function(
    "ex1_cross_validation",
    cross_validated_log_likelihood,
    [(features_train, Y_train, CHECK_ALPHAS, folds)],
    reference=lambda features, counts, alphas, folds: cv_ridge[:, [ALPHAS.index(a) for a in alphas]],
    rtol=1e-4,
    hints={
        "shape": "return one row per fold and one column per alpha.",
        "tolerance": "close but not equal: fit the scaler on each fold's training rows only, "
        "and give ridge_glm the number of training bins of the fold.",
        "wrong": "score each model on the validation rows of its fold, transformed by the "
        "scaler fitted on that fold's training rows.",
    },
)
# %% [markdown]
# ### Exercise 2: what shuffled folds reward
#
# Run your loop on **shuffled** folds: `KFold(N_FOLDS, shuffle=True, random_state=SEED)`
# deals the training bins out at random, so every validation bin has its neighbours in the
# training folds. Compute `shuffled_scores` for all `ALPHAS`, set `shuffled_alpha` to the
# strength they choose, and measure the flattery: `inflation`, for each α, the mean
# shuffled-fold score minus the mean blocked-fold score (`cv_ridge`), in nats per bin. Plot
# both mean scores against α. Which strengths do shuffled folds flatter most, and why?

# %% tags=["exercise"]
shuffled_folds = list(KFold(N_FOLDS, shuffle=True, random_state=SEED).split(features_train))
shuffled_scores = ...  # your code: cross_validated_log_likelihood on shuffled_folds, all ALPHAS
shuffled_alpha = ...  # your answer: the α with the largest mean shuffled score
inflation = ...  # your code: mean shuffled score minus mean blocked score, one value per α

# %% tags=["solution", "hide-cell"]
shuffled_folds = list(KFold(N_FOLDS, shuffle=True, random_state=SEED).split(features_train))
shuffled_scores = cross_validated_log_likelihood(features_train, Y_train, ALPHAS, shuffled_folds)
shuffled_alpha = ALPHAS[int(np.argmax(shuffled_scores.mean(axis=0)))]
jax.clear_caches()
inflation = shuffled_scores.mean(axis=0) - cv_ridge.mean(axis=0)
fig, ax = plt.subplots(figsize=(5.4, 3.6))
for name, scores, color in (
    ("blocked folds, with gap", cv_ridge, plotting.COLORS["model"]),
    ("shuffled folds", shuffled_scores, plotting.COLORS["alternative"]),
):
    ax.plot(ALPHAS, scores.mean(axis=0), "o-", color=color, label=name)
    k = int(np.argmax(scores.mean(axis=0)))
    ax.plot(ALPHAS[k], scores.mean(axis=0)[k], "*", ms=14, color=color, mec="k")
ax.set(
    xscale="log",
    xlabel="ridge strength α",
    ylabel="mean validation log-likelihood (nats/bin)",
    title="Blocked against shuffled folds",
)
ax.legend()
glue("exercise2_figure", fig, display=False)
glue("shuffled_alpha", float(shuffled_alpha), display=False)
glue("inflation_smallest", float(inflation[0]), display=False)
glue("inflation_best", float(inflation[ALPHAS.index(best_alpha)]), display=False)
glue("smallest_alpha", float(ALPHAS[0]), display=False)
plt.close(fig)
# The figure check's story: shuffled folds score every strength higher, the weakest penalty
# more than the one blocked folds choose.
assert np.all(inflation > 0) and inflation[0] > inflation[ALPHAS.index(best_alpha)], inflation

# %% tags=["check"]
checks.value(
    "ex2_shuffled_scores",
    shuffled_scores,
    rtol=1e-4,
    hints={
        "shape": "one row per shuffled fold, one column per α of ALPHAS.",
        "wrong": "call your cross_validated_log_likelihood with shuffled_folds and ALPHAS.",
    },
)
checks.choice(
    "ex2_shuffled_alpha",
    shuffled_alpha,
    ALPHAS,
    hints={a: "take the α whose mean over the shuffled folds is largest." for a in ALPHAS},
)
checks.value(
    "ex2_inflation",
    inflation,
    rtol=1e-4,
    hints={
        "shape": "one value per α: average each method's scores over its folds (axis 0) first.",
        "sign": "shuffled minus blocked: the flattery is how much higher the shuffled folds score.",
        "wrong": "the mean over folds of shuffled_scores minus the mean over folds of cv_ridge, per α.",
    },
)

# %% [markdown]
# **Figure check.** Shuffled folds score every model higher than blocked folds, and they
# flatter the weakly penalized models most: by {glue:text}`inflation_smallest:.4f` nats per
# bin at α = {glue:text}`smallest_alpha:g`, by {glue:text}`inflation_best:.4f` at the α that
# blocked folds choose. Shuffled folds choose α = {glue:text}`shuffled_alpha:g` here; on
# other data the flattery can move the optimum towards weaker penalties. With shuffling, the
# validation bins' neighbours sit in the training folds, so whatever a model memorised about
# that stretch of time, the slow drift included, is rewarded as if it were prediction. On
# time series, cut folds in time.
#
# ```{glue:figure} exercise2_figure
# :name: fig-ridge-exercise-2
#
# Expected result of exercise 2: mean validation scores of blocked and shuffled folds.
# ```
#
# ### Exercise 3: what if the model ignores the heading?
#
# The nemos head-direction tutorial fits couplings from the population's history alone. Fit
# the ridge population GLM with the history columns only (`history_columns`), at strength
# `alpha`, and return its coupling filters (`coupling_filters`). The solution then compares
# its net coupling matrix and edge-recovery AUC with the full model's. Why do neurons with
# neighbouring preferred directions now look coupled?


# %% tags=["exercise"]
def history_only_filters(alpha: float) -> np.ndarray:
    """Coupling filters [post, pre, lag] of the ridge GLM fitted on the history features alone."""
    # Your code: select the columns history_columns.ravel() of X_train, build
    # ridge_glm(alpha, n_train, pattern=...) with a pattern of ones shaped like the new coef_
    # (history_columns.size, N_NEURONS), fit it, and return coupling_filters(model.coef_).
    ...


# %% tags=["solution", "hide-cell"]
def history_only_filters(alpha: float) -> np.ndarray:
    """Coupling filters [post, pre, lag] of the ridge GLM fitted on the history features alone."""
    pattern = np.ones((history_columns.size, N_NEURONS))
    model = ridge_glm(alpha, n_train, pattern).fit(X_train[:, history_columns.ravel()], Y_train)
    return coupling_filters(model.coef_)


filters_history_only = history_only_filters(best_alpha)
auc_history_only = float(roc_auc_score(true_edges, filter_norms(filters_history_only)[off_diagonal]))
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
for ax, (name, filters, score) in zip(
    axes,
    (
        ("heading + history", filters_of(best_model), auc["ridge"]),
        ("history only", filters_history_only, auc_history_only),
    ),
):
    image = show_matrix(ax, filters.sum(axis=2), net_limit, f"{name}: AUC {score:.2f}")
fig.colorbar(image, ax=axes, label=NET_LABEL, shrink=0.9)
glue("exercise3_figure", fig, display=False)
glue("auc_history_only", auc_history_only, display=False)
plt.close(fig)
assert auc_history_only < auc["ridge"], "the figure check says the AUC falls"

# %% tags=["check"]
checks.function(
    "ex3_history_only_filters",
    history_only_filters,
    [(best_alpha,)],
    rtol=1e-2,
    atol=1e-3,
    hints={
        "shape": "return filters [post, pre, lag]: coupling_filters(model.coef_) does it.",
        "scale": "fit on the standardized X_train columns and let coupling_filters undo the standardization.",
        "wrong": "penalize every history weight (a pattern of ones) at ridge_glm(alpha, n_train, pattern).",
    },
)

# %% [markdown]
# **Figure check.** Without the heading, a band of positive couplings runs along the
# diagonal (the neurons are ordered by preferred direction, and the band wraps around into
# the corners because directions are circular), with negative couplings between neurons
# tuned to opposite directions. Neurons tuned to nearby directions fire together because the
# head points there, and the model can only explain that through their histories. The
# edge-recovery AUC falls from {glue:text}`ch2_auc_ridge:.2f` to
# {glue:text}`auc_history_only:.2f`. Shared input masquerades as coupling: put every known
# common cause in the model.
#
# ```{glue:figure} exercise3_figure
# :name: fig-ridge-exercise-3
#
# Expected result of exercise 3: net coupling matrices with and without the heading features.
# ```
#
# ### Exercise 4: precision and recall along the path
#
# For each strength of `paths["lasso"]` and `paths["group lasso"]`, call a coupling *kept*
# when its filter is not zero. Write `precision_recall`, which returns the precision (kept
# couplings that are true) and the recall (true couplings that are kept) of a fitted model;
# the solution plots recall against precision for both penalties and marks the strength
# chosen by cross-validation. Which strength would you report as the network?


# %% tags=["exercise"]
def precision_recall(model: nmo.glm.PopulationGLM) -> tuple[float, float]:
    """Precision and recall of the couplings a fitted model keeps (non-zero filters)."""
    # Your code: filter_norms(filters_of(model))[off_diagonal] > 0 against true_edges.
    ...


# %% tags=["solution", "hide-cell"]
def precision_recall(model: nmo.glm.PopulationGLM) -> tuple[float, float]:
    """Precision and recall of the couplings a fitted model keeps (non-zero filters)."""
    kept = filter_norms(filters_of(model))[off_diagonal] > 0
    hits = float((kept & true_edges).sum())
    return hits / max(int(kept.sum()), 1), hits / float(true_edges.sum())


fig, ax = plt.subplots(figsize=(5.2, 3.8))
for kind, color in zip(paths, (plotting.COLORS["alternative"], plotting.COLORS["model"])):
    points = np.array([precision_recall(paths[kind][a]) for a in PATH_ALPHAS])
    ax.plot(points[:, 1], points[:, 0], "o-", color=color, label=kind)
    for alpha, (precision, recall) in zip(PATH_ALPHAS, points):
        ax.annotate(
            f"{alpha:g}", (recall, precision), textcoords="offset points", xytext=(4, 4), fontsize=7, color=color
        )
    chosen = PATH_ALPHAS.index(selected[kind][0])
    ax.plot(points[chosen, 1], points[chosen, 0], "*", ms=14, color=color, mec="k")
ax.axhline(true_edges.mean(), color="k", lw=0.5, ls=":", label="chance precision")
ax.set(xlabel="recall", ylabel="precision", title="Kept couplings along the path (labels: α)")
ax.legend(fontsize=8)
glue("exercise4_figure", fig, display=False)
plt.close(fig)
# what the figure check says of the stars: they keep most true couplings (the rest of its
# claims are asserted in the Checks cell)
assert all(precision_recall(selected[kind][1])[1] > 0.5 for kind in paths)

# %% tags=["check"]
checks.function(
    "ex4_precision_recall",
    precision_recall,
    [(paths[kind][alpha],) for kind in SPARSE_PENALTIES for alpha in PATH_ALPHAS],
    rtol=1e-6,
    hints={
        "shape": "return two numbers: (precision, recall).",
        "order": "precision first (kept couplings that are true), recall second.",
        "wrong": "precision = true kept / kept; recall = true kept / true couplings; a "
        "coupling is kept when its filter's norm is above zero.",
    },
)
# %% [markdown]
# **Figure check.** Strong penalties keep few couplings, nearly all true (high precision, low
# recall); weak ones keep nearly every true coupling among many false ones. At the same
# strength the group lasso is at least as precise as the lasso, which keeps a filter as soon
# as one of its weights survives; but at the same strength it also charges more (section 5),
# so compare the two curves at equal recall, where the grouping itself shows. The stars
# (the path's fits at the strengths chosen for prediction) keep most true couplings and many
# false ones: to draw a network, report a stronger penalty (or threshold the filters), and
# say which.
#
# ```{glue:figure} exercise4_figure
# :name: fig-ridge-exercise-4
#
# Expected result of exercise 4: precision against recall of the kept couplings.
# ```
#
# ## Checks
#
# The chapter's scientific claims, asserted against the simulation's ground truth. They run
# at every scale and fail the book build if the science breaks.

# %%
scale = config.get_scale()
auc_floor = {"smoke": 0.65, "default": 0.8, "full": 0.9}[scale]
r_floor = {"smoke": 0.4, "default": 0.7, "full": 0.8}[scale]
# Every fit the chapter reports reached its optimum (section 2's criterion, fixed before).
assert converged_fraction == 1.0, [row for row in convergence_log if not row["met"]]
# Overfitting: the unregularized model is better on its training data than on the test set,
# and the chosen penalty narrows that gap (drift alone would leave it unchanged).
assert r2_train_unreg > r2_test_unreg, (r2_train_unreg, r2_test_unreg)
assert gap_best < gap_unreg, (gap_best, gap_unreg)
# The CV-chosen ridge beats no penalty and the grid's largest penalty on held-out data.
assert ll_test[best_alpha] > ll_test_unreg, (ll_test[best_alpha], ll_test_unreg)
assert ll_test[best_alpha] > ll_test[ALPHAS[-1]], (ll_test[best_alpha], ll_test[ALPHAS[-1]])
assert best_alpha not in (ALPHAS[0], ALPHAS[-1]), "the optimum must lie inside the grid"
# The ladder's text: α = 0.01 is close to unregularized, α = 100 helps on held-out data.
assert abs(ll_test[0.01] - ll_test_unreg) < abs(ll_test[100.0] - ll_test_unreg)
assert ll_test[100.0] > ll_test_unreg
# Edge recovery: every penalty, each chosen by the same blocked CV, ranks true couplings
# above absent ones, the group lasso clearly; its coupling matrix correlates with the truth.
assert auc["group lasso"] >= auc_floor and min(auc.values()) > 0.7, auc
assert net_r_group >= r_floor, net_r
assert precision_group > true_edges.mean(), (precision_group, true_edges.mean())
# Along the path the lasso keeps at least as many non-zero filters as the group lasso, the
# group lasso is at least as precise, and the strongest penalty that keeps any coupling
# keeps mostly (more than half) true ones (exercise 4's figure).
assert all(lasso >= group for lasso, group in zip(n_kept_path["lasso"], n_kept_path["group lasso"]))
path_precision = {kind: [] for kind in paths}
for kind in paths:
    for alpha in PATH_ALPHAS:
        kept_here = filter_norms(filters_of(paths[kind][alpha]))[off_diagonal] > 0
        path_precision[kind].append((kept_here & true_edges).sum() / max(kept_here.sum(), 1))
assert all(
    group >= lasso - 0.02
    for group, lasso, n in zip(path_precision["group lasso"], path_precision["lasso"], n_kept_path["group lasso"])
    if n > 0
), path_precision
strongest_kept = next(p for p, n in zip(path_precision["group lasso"], n_kept_path["group lasso"]) if n)
assert strongest_kept > 0.5 and precision_group < strongest_kept, (path_precision, precision_group)
print("All checks passed.")

# %% [markdown]
# ## Summary
#
# - A population GLM with every neuron's history has many weights per neuron; trained on
#   minutes of spikes it fits noise, and scores worse on the future than on its past.
# - A solver's "converged" is its tolerance, not the optimum; the Newton decrement measures
#   the distance in nats. The {glue:text}`n_fits_decrement` fits whose weights this chapter
#   reports were within {glue:text}`tolerance_nats:g` nats of their optimum, and the grid
#   search's {glue:text}`n_fits_flag` fold fits met nemos's own stopping rule.
# - Ridge adds $\frac{\alpha}{2}\lVert w \rVert^2$ to the negative log-likelihood. nemos'
#   `regularizer_strength` is $\alpha / T$ because its loss is a mean over $T$ bins: convert,
#   and refit with α, not λ.
# - Choose α with `GridSearchCV` inside the training set, on contiguous blocks of time with a
#   gap of one history window, standardizing inside each fold. Here blocked folds chose
#   α = {glue:text}`ch2_best_alpha:g`, which beat both no penalty and the strongest penalty on
#   the held-out test set; shuffled folds flatter the models that overfit (exercise 2).
# - Chosen by the same protocol, ridge, the lasso and the group lasso ranked the true
#   couplings with AUCs of {glue:text}`ch2_auc_ridge:.2f`, {glue:text}`ch2_auc_lasso:.2f`
#   and {glue:text}`ch2_auc_group_lasso:.2f`: {glue:text}`ranking_sentence`. The sparse
#   penalties add a yes/no answer, but the strength that predicts best keeps many spurious
#   couplings: prediction and selection are different questions.
# - Coupling filters are functional connectivity, conditional on what the model contains:
#   leave out a common input such as the heading and it reappears as coupling.
#
# **What's next.** Chapter 3 turns to a model whose complexity is a *rank*: low-rank
# autoregressive models of photostimulation responses, with the rank and the penalty chosen
# by cross-validation over held-out stimulation groups.
#
# ## Going further
#
# Optional, for the curious: a faster grid search that gives the same answer, a solver that
# shares no code with nemos, and the analysis on a real recording.
#
# ### The whole grid as one optimization
#
# `GridSearchCV` compiles and runs one fit per strength and fold. A `PopulationGLM`'s loss
# is a sum over neurons, each neuron's own log-likelihood plus the penalty on its own
# weights: nothing couples two neurons. So {glue:text}`n_alphas` strengths for
# {glue:text}`n_neurons` neurons are one problem with {glue:text}`n_alphas` ×
# {glue:text}`n_neurons` independent columns, copy $k$ of the counts penalized at
# $\alpha_k$. `course_utils.models.glm_grid.fit_strength_grid` builds that problem, fits it
# once and hands back each strength's weights: one optimization and one compiled program per
# fold instead of one per strength. Same folds, same standardization inside each fold, same
# score:

# %%
train_bins, validation_bins = folds[0]  # one fold is enough to compare the two
X_fold, X_validation = standardized_in_fold(train_bins, validation_bins)
strengths = [alpha / fold_bins * coupling_pattern for alpha in ALPHAS]
started = time.perf_counter()
grid = fit_strength_grid(
    lambda strength: nmo.glm.PopulationGLM(
        regularizer="Ridge",
        regularizer_strength=strength,
        solver_name="LBFGS",
        solver_kwargs=dict(maxiter=MAX_ITER, tol=LBFGS_TOL),
    ),
    strengths,
    X_fold,
    Y_train[train_bins],
)
stacked_seconds = time.perf_counter() - started
jax.clear_caches()
stacked_scores = np.array([log_likelihood(weights, X_validation, Y_train[validation_bins]) for weights in grid])
stacked_decrement = max(
    newton_decrement(
        X_fold, Y_train[train_bins], weights.coef_, weights.intercept_, penalty="ridge", strength=strength
    ).max()
    for weights, strength in zip(grid, strengths)
)
# one fold's worth of GridSearchCV's fits: each strength's fit time averaged over the folds
search_fold_seconds = float(np.sum(search.cv_results_["mean_fit_time"]))
stacked_difference = float(np.abs(stacked_scores - cv_ridge[0]).max())
stacked_same_choice = int(np.argmax(stacked_scores)) == int(np.argmax(cv_ridge[0]))
glue("stacked_seconds", float(stacked_seconds), display=False)
glue("search_fold_seconds", search_fold_seconds, display=False)
glue("stacked_difference", stacked_difference, display=False)
glue("stacked_decrement", float(stacked_decrement), display=False)
glue(
    "stacked_speed",
    f"{search_fold_seconds / stacked_seconds:.1f} times faster than"
    if stacked_seconds < search_fold_seconds
    else f"no faster than (it took {stacked_seconds / search_fold_seconds:.1f} times as long as)",
    display=False,
)
print(
    f"fold 1: GridSearchCV's fits {search_fold_seconds:.0f} s, stacked grid {stacked_seconds:.0f} s; "
    f"largest score difference {stacked_difference:.1e}; same best α: {stacked_same_choice}"
)

# %% [markdown]
# On the first fold, no validation score of the stacked grid differs from `GridSearchCV`'s
# by more than {glue:text}`stacked_difference:.1e` nats per bin, so both rank the strengths
# alike, and every stacked fit is within {glue:text}`stacked_decrement:.1e` nats of its
# optimum (Newton decrement). It took {glue:text}`stacked_seconds:.0f` s,
# {glue:text}`stacked_speed` `GridSearchCV`'s fits of that fold
# ({glue:text}`search_fold_seconds:.0f` s) on this machine. One compiled program replaces
# one per strength, but the stacked problem runs until its slowest column, the weakest
# penalty, has converged, and every step carries all the columns: it pays where compiling
# dominates (small data, many strengths, a cold cache) and not where iterating does, as
# here. The trick needs a penalty that is a sum over single weights (ridge, lasso); the group
# lasso's groups would have to be copied per strength too.
#
# ### Did the fit converge? Ask an independent solver
#
# The Newton decrement is computed from nemos's own weights, and it is an estimate; a
# solver that shares no code with nemos is a second opinion. scikit-learn's
# `PoissonRegressor` with the Newton-Cholesky solver and no penalty fits the same design,
# one neuron at a time, in double precision. The distance between the two fits, measured in
# standard errors, is what the decrement estimated.

# %%
newton_ll_gap, newton_se_gap, fisher_distance = [], [], []
X_ones = np.column_stack([np.ones(n_train), X_train])
for neuron in range(N_NEURONS):
    newton = PoissonRegressor(alpha=0.0, solver="newton-cholesky", tol=1e-10, max_iter=500)
    newton.fit(X_train, Y_train[:, neuron])
    theta = np.concatenate([[unregularized.intercept_[neuron]], np.asarray(unregularized.coef_)[:, neuron]])
    rate = np.exp(X_ones @ theta)
    ll_nemos = metrics.poisson_log_likelihood(Y_train[:, neuron], rate)
    newton_ll_gap.append(metrics.poisson_log_likelihood(Y_train[:, neuron], newton.predict(X_train)) - ll_nemos)
    fisher = X_ones.T @ (rate[:, None] * X_ones)  # weights compared in their standard errors
    standard_errors = np.sqrt(np.diag(np.linalg.inv(fisher)))
    difference = np.concatenate([[newton.intercept_], newton.coef_]) - theta
    newton_se_gap.append(np.abs(difference / standard_errors).max())
    fisher_distance.append(np.sqrt(difference @ fisher @ difference))  # joint, in standard errors
newton_ll_gap, newton_se_gap = np.array(newton_ll_gap), np.array(newton_se_gap)
fisher_distance = np.array(fisher_distance)
estimated_distance = np.sqrt(2 * model_decrement(unregularized, X_train, Y_train))  # section 2
glue("newton_ll_gap", float(np.abs(newton_ll_gap).max()), display=False)
glue("newton_se_gap", float(newton_se_gap.max()), display=False)
glue("fisher_distance", float(fisher_distance.max()), display=False)
glue("estimated_distance", float(estimated_distance.max()), display=False)
estimate_ratio = float((fisher_distance / estimated_distance).max())
glue(
    "estimate_sentence",
    f"the estimate was low, by up to {estimate_ratio:.1f} times for one neuron, as a second-order estimate can be"
    if estimate_ratio > 1.05
    else "the estimate was no more than 5 % low for any neuron",
    display=False,
)
dict(
    log_likelihood_gap=newton_ll_gap,
    largest_weight_gap_in_se=newton_se_gap,
    distance=fisher_distance,
    estimated_distance=estimated_distance,
)

# %% [markdown]
# The two solvers' training log-likelihoods differ by at most
# {glue:text}`newton_ll_gap:.1e` nats per bin and neuron, and no weight differs by more than
# {glue:text}`newton_se_gap:.2f` of its standard error. Measured jointly over all of a
# neuron's weights (in the Fisher metric, the decrement's own), the largest distance is
# {glue:text}`fisher_distance:.3f` standard errors, where section 2's decrement estimated at
# most {glue:text}`estimated_distance:.3f`: {glue:text}`estimate_sentence`.
# Both are far inside the {glue:text}`tolerance_nats:g`-nat tolerance (0.14 standard
# errors): nemos's fit sits on the optimum. On the sparse fits, which no independent solver
# checks at this size (the tests do, on a small lasso problem), the margin below the
# tolerance has to cover such an error.
#
# ### On real data
#
# The same analysis runs on the ADn recording of {cite}`peyrache2015internally` with one
# argument changed. The file is downloaded once and verified by its checksum; without network
# the cell says so in one line and the chapter goes on (pre-download with
# `python -m course_utils fetch head_direction`). We take the first minutes of wakefulness,
# the ADn units firing above 1 Hz ordered by preferred direction, and choose the ridge
# strength with the same `GridSearchCV`, folds and gap as section 4.

# %%
REAL_MINUTES = 5.0
try:
    real = load_head_direction(source="real")
except DataFetchError as error:
    real = None
    print(f"Real data skipped: {error.summary}")

if real is not None:
    first_wake = real.heading.time_support[:1]
    start = float(first_wake.start[0]) + 1.0  # inside the tracked heading
    segment = nap.IntervalSet(start, min(float(first_wake.end[0]) - 1.0, start + 60 * REAL_MINUTES))
    adn = real.units.getby_category("location")["adn"].restrict(segment)
    adn = adn[adn.rate > 1.0]
    real_tuning = nap.compute_tuning_curves(
        adn, real.heading, bins=36, range=(0, 2 * np.pi), epochs=segment, feature_names=["heading"]
    )
    order = np.argsort(real_tuning.idxmax(dim="heading").values)
    real_counts = adn.count(BIN_S, ep=segment)
    real_counts = nap.TsdFrame(t=real_counts.t, d=real_counts.values[:, order], time_support=real_counts.time_support)
    n_real = real_counts.shape[1]
    real_basis = heading_basis + nmo.basis.RaisedCosineLogConv(
        N_HISTORY_BASIS, window_size=window_size, label="history"
    )
    real_features, real_Y = design_matrix(real_basis, real_counts, heading_at(real_counts, real.heading))
    real_train = int(TRAIN_FRACTION * len(real_features)) // N_FOLDS * N_FOLDS
    real_folds = blocked_folds(real_train, N_FOLDS, gap=window_size)
    real_fold_bins = len(real_folds[0][0])
    real_columns = real_basis.split_by_feature(np.arange(real_basis.n_output_features), axis=0)["history"]
    real_pattern = np.zeros((real_features.shape[1], n_real))
    real_pattern[real_columns.ravel()] = 1.0
    real_search = GridSearchCV(
        make_pipeline(StandardScaler(), ridge_glm(1.0, real_fold_bins, real_pattern)),
        {"populationglm__regularizer_strength": [a / real_fold_bins * real_pattern for a in ALPHAS]},
        cv=real_folds,
        scoring=log_likelihood,
        refit=False,
        error_score="raise",
    ).fit(real_features[:real_train], real_Y[:real_train])
    real_alpha = ALPHAS[int(np.argmax(real_search.cv_results_["mean_test_score"]))]
    real_scaler = StandardScaler().fit(real_features[:real_train])
    real_X_train = real_scaler.transform(real_features[:real_train])
    real_X_test = real_scaler.transform(real_features[real_train:])
    real_model = ridge_glm(real_alpha, real_train, real_pattern).fit(real_X_train, real_Y[:real_train])
    real_unreg = nmo.glm.PopulationGLM(solver_name="LBFGS", solver_kwargs=dict(maxiter=MAX_ITER, tol=LBFGS_TOL))
    real_unreg.fit(real_X_train, real_Y[:real_train])
    print(
        f"{n_real} ADn units, {REAL_MINUTES:g} min of wake: blocked CV chooses α = {real_alpha:g}; "
        f"test log-likelihood {log_likelihood(real_model, real_X_test, real_Y[real_train:]):.4f} "
        f"(unregularized {log_likelihood(real_unreg, real_X_test, real_Y[real_train:]):.4f}) nats/bin"
    )
    real_weights = np.asarray(real_model.coef_)[real_columns.ravel()].reshape(n_real, N_HISTORY_BASIS, n_real)
    real_net = np.einsum("jbi,lb->ij", real_weights, kernels)  # standardized units: pattern only
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    limit = np.abs(real_net[~np.eye(n_real, dtype=bool)]).max()
    image = show_matrix(ax, real_net, limit, f"ADn, ridge α = {real_alpha:g}")
    fig.colorbar(image, ax=ax, label="net coupling (standardized weights)")
    ax.set(xlabel="presynaptic unit (by preferred direction)", ylabel="postsynaptic unit")
    plt.show()

# %% [markdown]
# ### Checks of the Going further part

# %%
assert stacked_same_choice and stacked_difference < 1e-3, (stacked_scores, cv_ridge[0])
assert stacked_decrement <= DEFAULT_TOLERANCE_NATS, stacked_decrement
# An independent solver finds the same optimum: every neuron's weights lie within the
# sqrt(2 × 0.01) ≈ 0.14 standard errors (jointly) that section 2's tolerance stands for.
assert fisher_distance.max() < 0.14, fisher_distance
print("Going further checks passed.")

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
