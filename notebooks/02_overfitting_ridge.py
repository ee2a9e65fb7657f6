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
# - write down the ridge-penalized objective, say what its strength α does, and read the
#   strength nemos expects from it;
# - choose α by cross-validation on folds of contiguous time (scikit-learn's `KFold`, or
#   `GridSearchCV`), and explain why shuffled folds flatter the models that overfit most;
# - fit a whole grid of strengths as one optimization when the penalty allows it;
# - use lasso and group lasso to select couplings, and score the selected network against the
#   true one (ROC AUC, precision and recall).
#
# **Prerequisites.** {doc}`01_glm_basics` (Poisson GLMs in nemos, temporal bases); what a
# training and a test set are.
#
# **Time to learn.** About 75 minutes, 25 more for the exercises.
#
# **Run time** (measured by `benchmarks/chapters.py`, see
# {doc}`../book/setup`):
# <!-- timings:overfitting_ridge -->
# smoke 40 s (1.2 GB) · default 245 s (1.3 GB) · full: not measured yet · on 2 CPU cores, peak memory in brackets
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
# Besides the course's helpers we need scikit-learn's cross-validation tools. nemos compiles
# its optimizer (with JAX) for each shape of design matrix and each penalty strength; fits
# that repeat both, such as the folds of a grid search, reuse the compiled program from a
# cache on disk, and `jax.clear_caches()` frees the compiled programs in memory once a batch
# of fits is done (a Binder has about 2 GB). A fit that does not converge raises an error
# here instead of a warning: its weights would not be the optimum the text talks about.

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

    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet",
                           f"course-utils @ git+{COURSE_REPOSITORY}"])

# %%
import warnings

import jax
import matplotlib
import matplotlib.pyplot as plt
import nemos as nmo
import numpy as np
import pynapple as nap
from matplotlib.gridspec import GridSpec
from course_utils.glue import glue
from sklearn.metrics import roc_curve
from sklearn.model_selection import GridSearchCV, KFold

from course_utils import config, metrics, plotting
from course_utils.data import DataFetchError, load_head_direction
from course_utils.models.glm_grid import GLMWeights, fit_strength_grid
from course_utils.workshop import report

plotting.use_course_style()
nap.nap_config.suppress_conversion_warnings = True  # nemos returns jax arrays; the copy is intended
config.use_jax_compilation_cache()
warnings.filterwarnings("error", message="The fit did not converge")
report(packages=("nemos", "pynapple", "scikit-learn", "numpy"))

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
MAX_ITER = 3000  # optimizer steps allowed per fit
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
session = load_head_direction(source="simulated", seed=SEED, duration_s=DURATION_S,
                              bin_s=BIN_S, n_neurons=N_NEURONS)
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
tuning = nap.compute_tuning_curves(units, heading, bins=36, range=(0, 2 * np.pi), epochs=wake,
                                   feature_names=["heading"])
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
heading_basis = nmo.basis.FourierEval(frequencies=(1, N_HARMONICS + 1), bounds=(0, 2 * np.pi),
                                      label="heading")
history_basis = nmo.basis.RaisedCosineLogConv(N_HISTORY_BASIS, window_size=window_size,
                                              label="history")
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
print(f"design matrix: {features.shape[0]} bins × {n_features} features; "
      f"history columns per neuron: {history_columns.shape[1]}")

# %% [markdown]
# Every neuron gets {glue:text}`n_weights` weights: {glue:text}`n_harmonic_features` for
# the heading and the rest for the population's history. We keep the last part of the
# recording as the **test set**, the future the model has never seen, and train on the
# beginning. The training set is cut to a multiple of the number of cross-validation folds
# (section 4), so that every fold has the same size.
#
# The features are then **standardized** (zero mean, unit standard deviation, computed on the
# training set only). A penalty treats all weights alike, so the features must share one
# scale; standardized features also make the optimizer converge much faster.

# %%
n_train = int(TRAIN_FRACTION * len(features)) // N_FOLDS * N_FOLDS
feature_mean = features[:n_train].mean(axis=0)
feature_scale = features[:n_train].std(axis=0)
X = (features - feature_mean) / feature_scale
X_train, Y_train = X[:n_train], spike_counts[:n_train]
X_test, Y_test = X[n_train:], spike_counts[n_train:]
_, kernels = history_basis.evaluate_on_grid(window_size)  # [lag, basis function]
lags_s = np.arange(1, window_size + 1) * BIN_S
true_filters = np.zeros((N_NEURONS, N_NEURONS, window_size))
true_filters[:, :, : truth.window_size] = truth.filters  # zero beyond the truth's window


def fit(model: nmo.glm.PopulationGLM, X: np.ndarray, Y: np.ndarray, init=None) -> nmo.glm.PopulationGLM:
    """Fit ``model``, optionally warm-started from another fit's (coef, intercept)."""
    return model.fit(X, Y, init_params=init)


def warm_start(model: nmo.glm.PopulationGLM) -> tuple[np.ndarray, np.ndarray]:
    """A fitted model's parameters, to start the next fit of a path from."""
    return model.coef_, model.intercept_


def log_likelihood(model: nmo.glm.PopulationGLM, X: np.ndarray, Y: np.ndarray) -> float:
    """Mean Poisson log-likelihood per bin and neuron (nats)."""
    return metrics.poisson_log_likelihood(Y, np.asarray(model.predict(X)))


def pseudo_r2(model: nmo.glm.PopulationGLM, X: np.ndarray, Y: np.ndarray) -> float:
    """McFadden's pseudo-R² against each neuron's mean training rate."""
    return metrics.pseudo_r2(Y, np.asarray(model.predict(X)), null_rate=Y_train.mean(axis=0))


def coupling_filters(history_coef: np.ndarray) -> np.ndarray:
    """Filters [post, pre, lag] in log-rate per spike, from the history weights of a fit."""
    weights = np.asarray(history_coef).reshape(N_NEURONS, N_HISTORY_BASIS, N_NEURONS)
    weights = weights / feature_scale[history_columns][:, :, None]  # undo the standardization
    return np.einsum("jbi,lb->ijl", weights, kernels)


def filters_of(model: nmo.glm.PopulationGLM) -> np.ndarray:
    """The coupling filters of a model fitted on the full design matrix."""
    return coupling_filters(np.asarray(model.coef_)[history_columns.ravel()])


unregularized = fit(nmo.glm.PopulationGLM(solver_name="LBFGS", solver_kwargs=dict(maxiter=MAX_ITER)),
                    X_train, Y_train)
r2_train_unreg = pseudo_r2(unregularized, X_train, Y_train)
r2_test_unreg = pseudo_r2(unregularized, X_test, Y_test)
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
spurious = np.unravel_index(np.argmax(np.where(off_diagonal & ~truth.adjacency, norm_unreg, -1.0)),
                            norm_unreg.shape)
examples = {"excitatory coupling": strongest_excitatory, "inhibitory coupling": strongest_inhibitory,
            "no coupling (largest spurious filter)": spurious}


def plot_filters(ax: plt.Axes, filters: np.ndarray, title: str) -> None:
    """Fitted (solid) and true (dashed) filters of the three example pairs."""
    for (name, (post, pre)), color in zip(examples.items(), ("#d62728", "#1f77b4", "#7f7f7f")):
        ax.plot(lags_s * 1e3, true_filters[post, pre], "--", color=color, lw=1.2)
        ax.plot(lags_s * 1e3, filters[post, pre], color=color, label=f"{name} ({pre}→{post})")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="lag (ms)", title=title)


fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw=dict(width_ratios=[1, 1.6]))
axes[0].bar([0, 1], [r2_train_unreg, r2_test_unreg],
            color=[plotting.COLORS["train"], plotting.COLORS["test"]])
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
# that the data barely constrain can take large values of either sign). With about {glue:text}`spikes_per_weight:.0f` training
# spikes per weight and neuron, the data do not pin every weight down.
#
# ```{note}
# Part of the train/test gap is not overfitting: the recording drifts slowly (as real ones
# do), so the end of the session differs from its beginning. Only the *comparison* between
# models on the same test data tells overfitting apart, as in the next section.
# ```
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
# nemos divides the log-likelihood by the number of bins $T$ (it minimizes a *mean* loss), so
# its `regularizer_strength` is $\lambda = \alpha / T$. We quote $\alpha$, the strength on the
# total log-likelihood, which means the same thing however long the recording is, and give
# nemos `alpha / n_bins` of the data it is fitted to.
# ```
#
# We fit every strength of the grid used later, and we fit them **all at once**. A
# `PopulationGLM`'s loss is a sum over neurons, each neuron's own log-likelihood plus the
# penalty on its own weights: nothing couples two neurons. So {glue:text}`n_alphas`
# strengths for {glue:text}`n_neurons` neurons are one problem with
# {glue:text}`n_alphas` × {glue:text}`n_neurons` independent columns, copy $k$ of the
# counts penalized at $\alpha_k$. `course_utils.models.glm_grid.fit_strength_grid` builds
# that problem, fits it once and hands back each strength's weights: one optimization and one
# compiled program instead of one per strength (its tests check it against separate fits).
# Three of the strengths, α = 0.01, 1 and 100, are compared side by side.

# %%
def ridge_model(strength: np.ndarray) -> nmo.glm.PopulationGLM:
    """An unfitted ridge PopulationGLM with nemos' per-weight ``regularizer_strength``."""
    return nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=strength,
                                 solver_name="LBFGS", solver_kwargs=dict(maxiter=MAX_ITER))


def ridge_glm(alpha: float, n_bins: int, pattern: np.ndarray = coupling_pattern) -> nmo.glm.PopulationGLM:
    """A ridge PopulationGLM of strength ``alpha`` (on the total log-likelihood of ``n_bins``)
    on the weights where ``pattern`` is 1."""
    return ridge_model(alpha / n_bins * pattern)


def ridge_grid(alphas: tuple[float, ...], X: np.ndarray, Y: np.ndarray) -> dict[float, GLMWeights]:
    """Ridge weights at every strength of ``alphas``, fitted as one stacked PopulationGLM."""
    strengths = [alpha / len(X) * coupling_pattern for alpha in alphas]
    return dict(zip(alphas, fit_strength_grid(ridge_model, strengths, X, Y)))


ridge_fits = ridge_grid(ALPHAS, X_train, Y_train)
glue("n_alphas", len(ALPHAS), display=False)
ll_test = {alpha: log_likelihood(model, X_test, Y_test) for alpha, model in ridge_fits.items()}
glue("ll_test_small", float(ll_test[RIDGE_LADDER[0]]), display=False)
glue("ll_test_unreg", float(ll_test_unreg), display=False)

fig, axes = plt.subplots(1, 4, figsize=(12.5, 3.2), sharey=False)
for ax, alpha in zip(axes[:3], RIDGE_LADDER):
    plot_filters(ax, filters_of(ridge_fits[alpha]), f"α = {alpha:g}")
axes[0].set_ylabel("log-rate per spike")
for ax in axes[1:3]:
    ax.sharey(axes[0])
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3,
           title="fit (solid) and truth (dashed)")
labels = ["none"] + [f"{a:g}" for a in RIDGE_LADDER]
values = [ll_test_unreg] + [ll_test[a] for a in RIDGE_LADDER]
axes[3].plot(range(4), values, "o-", color=plotting.COLORS["test"])
axes[3].set_xticks(range(4), labels)
axes[3].set(xlabel="ridge strength α", ylabel="test log-likelihood (nats/bin)",
            title="Held-out fit")
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# At α = 0.01 the penalty is negligible and the filters are those of the unregularized fit
# (test log-likelihood {glue:text}`ll_test_small:.5f` against {glue:text}`ll_test_unreg:.5f`
# nats per bin and neuron). At α = 100 the wiggles are gone and the spurious filter is nearly flat, and
# the model predicts the test set better (D); the true filters shrink a little too. Too
# little penalty keeps the noise; too much would erase the signal. Which α is right?
#
# ## 4. Choosing α by cross-validation, with folds that respect time
#
# The test set must not choose α: it would then no longer be a fair test. **Cross-validation**
# splits the *training* set into $K$ folds, fits on $K-1$ of them, scores on the one left
# out, and averages over the $K$ choices. scikit-learn's `KFold` cuts the folds; on each we
# fit the whole grid of strengths at once, as in section 3, and score every strength on the
# left-out fold with the log-likelihood per bin. (scikit-learn's `GridSearchCV` runs the same
# loop for any estimator with `fit`, `score` and `get_params`, which nemos' GLMs have, with
# one fit per strength and fold; the real-data section below uses it.)
#
# How the folds are cut matters. Neighbouring bins of a recording are alike: the head points
# the same way, the same slow drift of excitability is under way. `KFold(shuffle=False)` cuts
# the training set into **contiguous blocks**, so the model is always scored on a stretch of
# time it has not seen, as it will be on the test set. `KFold(shuffle=True)` deals the bins
# out at random: every validation bin then has its neighbours in the training folds, and the
# score measures how well the model *interpolates* between them {cite}`roberts2017cross`.
# We run both and compare.

# %%
fold_bins = n_train * (N_FOLDS - 1) // N_FOLDS  # bins each fold is trained on


def cross_validate(folds: KFold) -> np.ndarray:
    """Mean validation log-likelihood of every strength in ALPHAS over the folds of ``folds``."""
    per_fold = []
    for train_bins, validation_bins in folds.split(X_train):
        fitted = ridge_grid(ALPHAS, X_train[train_bins], Y_train[train_bins])
        per_fold.append([log_likelihood(fitted[alpha], X_train[validation_bins],
                                        Y_train[validation_bins]) for alpha in ALPHAS])
    return np.mean(per_fold, axis=0)


fold_schemes = {"blocked": KFold(N_FOLDS, shuffle=False),
                "shuffled": KFold(N_FOLDS, shuffle=True, random_state=SEED)}
cv_scores = {name: cross_validate(folds) for name, folds in fold_schemes.items()}
jax.clear_caches()  # free the compiled programs of the fits just made (memory budget)

best_alpha = ALPHAS[int(np.argmax(cv_scores["blocked"]))]
shuffled_alpha = ALPHAS[int(np.argmax(cv_scores["shuffled"]))]
inflation = cv_scores["shuffled"] - cv_scores["blocked"]
best_model = ridge_fits[best_alpha]
glue("best_alpha", float(best_alpha), display=False)
glue("shuffled_alpha", float(shuffled_alpha), display=False)
glue("ll_test_best", float(ll_test[best_alpha]), display=False)
glue("ll_test_largest", float(ll_test[ALPHAS[-1]]), display=False)
glue("largest_alpha", float(ALPHAS[-1]), display=False)
glue("inflation_smallest", float(inflation[0]), display=False)
glue("inflation_best", float(inflation[ALPHAS.index(best_alpha)]), display=False)
glue("smallest_alpha", float(ALPHAS[0]), display=False)
glue("n_folds", int(N_FOLDS), display=False)
gap_unreg = r2_train_unreg - r2_test_unreg
gap_best = pseudo_r2(best_model, X_train, Y_train) - pseudo_r2(best_model, X_test, Y_test)
glue("gap_unreg", float(gap_unreg), display=False)
glue("gap_best", float(gap_best), display=False)

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.3), gridspec_kw=dict(width_ratios=[1.1, 1, 1]))
fold_of_bin = {name: np.empty(n_train, dtype=int) for name in fold_schemes}
for name, folds in fold_schemes.items():
    for k, (_, held_out) in enumerate(folds.split(X_train)):
        fold_of_bin[name][held_out] = k
fold_colors = matplotlib.colormaps["Set2"].resampled(N_FOLDS)
axes[0].imshow(np.stack([fold_of_bin["blocked"], fold_of_bin["shuffled"]]), aspect="auto",
               interpolation="nearest", cmap=fold_colors, extent=(0, n_train * BIN_S, 1.5, -0.5))
axes[0].set_yticks([0, 1], ["blocked", "shuffled"])
axes[0].set(xlabel="training time (s)", title="Validation fold of each bin")
for k in range(N_FOLDS):
    axes[0].bar(0, 0, color=fold_colors(k), label=f"fold {k + 1}")
axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=N_FOLDS, fontsize=8)
for name, color in zip(fold_schemes, (plotting.COLORS["model"], plotting.COLORS["alternative"])):
    axes[1].plot(ALPHAS, cv_scores[name], "o-", color=color, label=f"{name} folds")
    k = int(np.argmax(cv_scores[name]))
    axes[1].plot(ALPHAS[k], cv_scores[name][k], "*", ms=14, color=color, mec="k")
axes[1].set(xscale="log", xlabel="ridge strength α", ylabel="validation log-likelihood (nats/bin)",
            title=f"{N_FOLDS}-fold cross-validation")
axes[1].legend()
axes[2].plot(ALPHAS, [ll_test[a] for a in ALPHAS], "o-", color=plotting.COLORS["test"],
             label="ridge")
axes[2].axhline(ll_test_unreg, color=plotting.COLORS["data"], ls="--", label="unregularized")
axes[2].plot(best_alpha, ll_test[best_alpha], "*", ms=14, color=plotting.COLORS["model"],
             mec="k", label="chosen by blocked CV")
axes[2].set(xscale="log", xlabel="ridge strength α", ylabel="test log-likelihood (nats/bin)",
            title="Held-out test set")
axes[2].legend()
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# Blocked cross-validation chooses α = {glue:text}`best_alpha:g`. On the test set, which
# played no part in the choice, that model scores {glue:text}`ll_test_best:.5f` nats per bin,
# better than the unregularized fit ({glue:text}`ll_test_unreg:.5f`) and than the largest
# strength of the grid, α = {glue:text}`largest_alpha:g` ({glue:text}`ll_test_largest:.5f`),
# which shrinks away real structure. (The test set's absolute level differs from the
# validation folds' because it is another stretch of time; compare models within a panel.)
# The penalty also narrows the gap between training and test pseudo-R² from
# {glue:text}`gap_unreg:.3f` to {glue:text}`gap_best:.3f`: what it removed was fitted noise.
# What remains of the gap includes the drift of section 2's note, which no penalty removes.
#
# Shuffled folds score every model higher than blocked folds (B), and they flatter the
# weakly penalized models most: by {glue:text}`inflation_smallest:.4f` nats per bin at
# α = {glue:text}`smallest_alpha:g`, by {glue:text}`inflation_best:.4f` at the chosen α.
# Shuffled folds pick α = {glue:text}`shuffled_alpha:g` here; on other data the flattery can
# move the optimum towards weaker penalties. With shuffling, the validation bins' neighbours sit
# in the training folds, so whatever a model memorised about that stretch of time, the slow
# drift included, is rewarded as if it were prediction. On time series, cut folds in time.
#
# ```{tip}
# scikit-learn's `TimeSeriesSplit` is another time-respecting scheme: it always trains on
# the past and validates on the block that follows. Its folds differ in size, and nemos
# compiles its optimizer once per size, so equal contiguous blocks are faster here.
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
# for the group lasso).
#
# nemos' `GroupLasso` takes the groups as a mask of shape `(n_groups, n_features, n_neurons)`;
# both penalties are fitted with proximal gradient descent (`ProximalGradient`). We trace the
# **path** over strengths from strong to weak, warm-starting each fit from the previous one,
# on the first {glue:text}`n_folds_minus_one` folds of the training set, and choose the
# strength that predicts the last fold best: one blocked fold of section 4, to save time.
# The chosen model is refitted on the whole training set.

# %%
group_of_pair = np.arange(N_NEURONS * N_NEURONS).reshape(N_NEURONS, N_NEURONS)  # [post, pre]
group_mask = np.zeros((N_NEURONS * N_NEURONS, n_features, N_NEURONS))
group_mask[group_of_pair[:, :, None], history_columns[None, :, :],
           np.arange(N_NEURONS)[:, None, None]] = 1.0
glue("n_groups", int(group_mask.shape[0]), display=False)
glue("n_history_basis", int(N_HISTORY_BASIS), display=False)
glue("n_folds_minus_one", int(N_FOLDS - 1), display=False)


def sparse_glm(kind: str, alpha: float, n_bins: int) -> nmo.glm.PopulationGLM:
    """A lasso or group-lasso PopulationGLM of strength ``alpha`` (total log-likelihood)."""
    if kind == "lasso":
        regularizer, strength = nmo.regularizer.Lasso(), alpha / n_bins * coupling_pattern
    else:
        regularizer, strength = nmo.regularizer.GroupLasso(mask=group_mask), alpha / n_bins
    return nmo.glm.PopulationGLM(regularizer=regularizer, regularizer_strength=strength,
                                 solver_name="ProximalGradient", solver_kwargs=dict(maxiter=MAX_ITER))


def filter_norms(filters: np.ndarray) -> np.ndarray:
    """The size of each filter [post, pre]: zero exactly when every weight of it is zero."""
    return np.sqrt((filters**2).sum(axis=2))


X_fit, Y_fit = X_train[:fold_bins], Y_train[:fold_bins]
X_val, Y_val = X_train[fold_bins:], Y_train[fold_bins:]
paths, validation, selected = {}, {}, {}
for kind in ("lasso", "group lasso"):
    paths[kind], previous = {}, None
    for alpha in PATH_ALPHAS:
        paths[kind][alpha] = fit(sparse_glm(kind, alpha, fold_bins), X_fit, Y_fit, init=previous)
        previous = warm_start(paths[kind][alpha])
    validation[kind] = {a: log_likelihood(m, X_val, Y_val) for a, m in paths[kind].items()}
    chosen = max(validation[kind], key=validation[kind].get)
    selected[kind] = (chosen, fit(sparse_glm(kind, chosen, n_train), X_train, Y_train,
                                  init=warm_start(paths[kind][chosen])))
    jax.clear_caches()

edge_scores = {"ridge (CV)": filter_norms(filters_of(best_model))[off_diagonal]}
for kind, (alpha, model) in selected.items():
    edge_scores[f"{kind} (α = {alpha:g})"] = filter_norms(filters_of(model))[off_diagonal]
auc = {name: metrics.roc_auc(true_edges, score) for name, score in edge_scores.items()}
group_name = f"group lasso (α = {selected['group lasso'][0]:g})"
kept = edge_scores[group_name] > 0
precision_group = float((kept & true_edges).sum() / max(kept.sum(), 1))
recall_group = float((kept & true_edges).sum() / true_edges.sum())
lasso_name = f"lasso (α = {selected['lasso'][0]:g})"
glue("alpha_lasso", float(selected["lasso"][0]), display=False)
glue("alpha_group", float(selected["group lasso"][0]), display=False)
glue("auc_lasso", float(auc[lasso_name]), display=False)
glue("auc_group", float(auc[group_name]), display=False)
glue("auc_ridge", float(auc["ridge (CV)"]), display=False)
glue("n_kept_group", int(kept.sum()), display=False)
glue("precision_group", precision_group, display=False)
glue("recall_group", recall_group, display=False)
glue("chance_precision", float(true_edges.mean()), display=False)

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
path_norms = np.array([filter_norms(filters_of(paths["group lasso"][a]))[off_diagonal]
                       for a in PATH_ALPHAS])  # [strength, pair]
for pair in np.flatnonzero(~true_edges):
    axes[0].plot(PATH_ALPHAS, path_norms[:, pair], color=plotting.COLORS["data"], lw=0.6, alpha=0.5)
for pair in np.flatnonzero(true_edges):
    axes[0].plot(PATH_ALPHAS, path_norms[:, pair], color=plotting.COLORS["model"], lw=1.0)
axes[0].plot([], [], color=plotting.COLORS["model"], label="true coupling")
axes[0].plot([], [], color=plotting.COLORS["data"], label="no coupling")
axes[0].axvline(selected["group lasso"][0], color="k", ls=":", label="chosen α")
axes[0].set(xscale="log", xlabel="group-lasso strength α", ylabel="filter size (norm)",
            title="Group-lasso path")
axes[0].legend(fontsize=8)
n_kept_path = {kind: [int((filter_norms(filters_of(paths[kind][a]))[off_diagonal] > 0).sum())
                       for a in PATH_ALPHAS] for kind in paths}
for kind, color in zip(paths, (plotting.COLORS["alternative"], plotting.COLORS["model"])):
    axes[1].plot(PATH_ALPHAS, n_kept_path[kind], "o-", color=color, label=kind)
axes[1].axhline(true_edges.sum(), color=plotting.COLORS["truth"], ls="--", label="true couplings")
axes[1].set(xscale="log", xlabel="strength α", ylabel="couplings kept (non-zero filters)",
            title="Sparsity along the path")
for ax in axes[:2]:
    ax.set_xticks(PATH_ALPHAS, [f"{a:g}" for a in PATH_ALPHAS], minor=False)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.invert_xaxis()  # strong penalties on the left
axes[1].legend(fontsize=8)
for (name, score), color in zip(edge_scores.items(), (plotting.COLORS["data"],
                                                     plotting.COLORS["alternative"],
                                                     plotting.COLORS["model"])):
    false_positive, true_positive, _ = roc_curve(true_edges, score)
    axes[2].plot(false_positive, true_positive, color=color, label=f"{name}: AUC {auc[name]:.2f}")
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
# B is that scale. Compare the two at equal numbers of kept filters, as exercise 2 does,
# to see what the grouping itself adds.
#
# Ranking the pairs by the size of their fitted filter (C), every penalty puts the true
# couplings well above the absent ones. The ROC curve plots, as the threshold on filter
# size falls, the fraction of true couplings above it against the fraction of absent ones;
# its area (AUC) is the probability that a true coupling's filter is larger than an absent
# one's: an ROC AUC of {glue:text}`auc_group:.2f` for the
# group lasso chosen by validation (α = {glue:text}`alpha_group:g`),
# {glue:text}`auc_lasso:.2f` for the lasso (α = {glue:text}`alpha_lasso:g`) and
# {glue:text}`auc_ridge:.2f` for ridge (0.5 is chance). As a *ranking*, shrinking without
# selecting does as well or better. (The sparse curves run straight where they reach the
# filters set exactly to zero: those are tied, and the curve crosses them in one step.) What
# the sparse penalties add is a yes/no answer, and at the strength chosen for prediction that
# answer is generous: the group lasso keeps {glue:text}`n_kept_group` of the
# {glue:text}`n_pairs` filters, a **precision** (the fraction of kept filters that are true
# couplings) of {glue:text}`precision_group:.2f` (chance: {glue:text}`chance_precision:.2f`)
# at a **recall** (the fraction of true couplings kept) of {glue:text}`recall_group:.2f`. The strength that *predicts* best is weaker than the one
# that would *draw the network* best: prediction tolerates many small spurious filters, a
# wiring diagram does not (exercise 2).
#
# ## 6. The recovered functional connectivity
#
# Summing each filter over its lags gives one number per pair, the net effect of a spike of
# the presynaptic neuron on the postsynaptic neuron's log-rate. Side by side with the truth:

# %%
net = {"truth": true_net,
       f"group lasso (α = {selected['group lasso'][0]:g})": filters_of(selected["group lasso"][1]).sum(axis=2),
       f"ridge (α = {best_alpha:g})": filters_of(best_model).sum(axis=2)}
net_r = {name: metrics.pearson_r(matrix[off_diagonal], true_net[off_diagonal])
         for name, matrix in net.items() if name != "truth"}
glue("net_r_group", float(list(net_r.values())[0]), display=False)
glue("net_r_ridge", float(list(net_r.values())[1]), display=False)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for ax, (name, matrix) in zip(axes, net.items()):
    image = show_matrix(ax, matrix, net_limit,
                        name if name == "truth" else f"{name}\nr = {net_r[name]:.2f}")
fig.colorbar(image, ax=axes, label=NET_LABEL, shrink=0.9)
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# Both matrices show the truth's structure with spurious couplings around it; the group
# lasso's are smaller: its entries correlate with the true ones at
# r = {glue:text}`net_r_group:.2f`, against {glue:text}`net_r_ridge:.2f` for ridge. Remember what this
# matrix is: *functional* connectivity, the best predictive weights given everything else in
# the model. A real synapse is one cause of such a weight; an unrecorded neuron driving two
# recorded ones is another.
#
# ## Exercises
#
# ### Exercise 1: what if the model ignores the heading?
#
# The nemos head-direction tutorial fits couplings from the population's history alone. Fit
# the ridge population GLM (strength `best_alpha`) with the history columns only
# (`history_columns`), compute its coupling filters with `coupling_filters`, and compare its
# net coupling matrix and edge-recovery AUC with the full model's. Why do neurons with
# neighbouring preferred directions now look coupled?

# %% tags=["exercise"]
def fit_without_heading(alpha: float) -> nmo.glm.PopulationGLM:
    """Fit the ridge PopulationGLM on the history features alone (no heading features)."""
    # Your code: select the columns history_columns.ravel() of X_train, build
    # ridge_glm(alpha, n_train, pattern=...) with a pattern of ones shaped like the new coef_
    # (history_columns.size, N_NEURONS), and fit it with fit(...).
    ...


# %% tags=["solution", "hide-cell"]
def fit_without_heading(alpha: float) -> nmo.glm.PopulationGLM:
    """Fit the ridge PopulationGLM on the history features alone (no heading features)."""
    pattern = np.ones((history_columns.size, N_NEURONS))
    return fit(ridge_glm(alpha, n_train, pattern), X_train[:, history_columns.ravel()], Y_train)


history_only = fit_without_heading(best_alpha)
filters_history_only = coupling_filters(history_only.coef_)
auc_history_only = metrics.roc_auc(true_edges, filter_norms(filters_history_only)[off_diagonal])
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
for ax, (name, filters, score) in zip(axes, (
        ("heading + history", filters_of(best_model), auc["ridge (CV)"]),
        ("history only", filters_history_only, auc_history_only))):
    image = show_matrix(ax, filters.sum(axis=2), net_limit, f"{name}: AUC {score:.2f}")
fig.colorbar(image, ax=axes, label=NET_LABEL, shrink=0.9)
glue("exercise1_figure", fig, display=False)
glue("auc_history_only", float(auc_history_only), display=False)
plt.close(fig)
assert auc_history_only < auc["ridge (CV)"], "the figure check says the AUC falls"

# %% [markdown]
# **Figure check.** Without the heading, a band of positive couplings runs along the
# diagonal (the neurons are ordered by preferred direction, and the band wraps around into
# the corners because directions are circular), with negative couplings between neurons
# tuned to opposite directions. Neurons tuned to nearby directions fire together because the
# head points there, and the model can only explain that through their histories. The
# edge-recovery AUC falls from {glue:text}`auc_ridge:.2f` to
# {glue:text}`auc_history_only:.2f`. Shared input masquerades as coupling: put every known
# common cause in the model.
#
# ```{glue:figure} exercise1_figure
# :name: fig-ridge-exercise-1
#
# Expected result of exercise 1: net coupling matrices with and without the heading features.
# ```
#
# ### Exercise 2: precision and recall along the path
#
# For each strength of `paths["lasso"]` and `paths["group lasso"]`, call a coupling *kept*
# when its filter is not zero. Compute the precision (kept couplings that are true) and the
# recall (true couplings that are kept), plot recall against precision for both penalties,
# and mark the strength chosen by validation. Which strength would you report as the
# network?

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
        ax.annotate(f"{alpha:g}", (recall, precision), textcoords="offset points", xytext=(4, 4),
                    fontsize=7, color=color)
    chosen = PATH_ALPHAS.index(selected[kind][0])
    ax.plot(points[chosen, 1], points[chosen, 0], "*", ms=14, color=color, mec="k")
ax.axhline(true_edges.mean(), color="k", lw=0.5, ls=":", label="chance precision")
ax.set(xlabel="recall", ylabel="precision", title="Kept couplings along the path (labels: α)")
ax.legend(fontsize=8)
glue("exercise2_figure", fig, display=False)
plt.close(fig)
# what the figure check says of the stars: they keep most true couplings (the rest of its
# claims are asserted in the Checks cell)
assert all(precision_recall(selected[kind][1])[1] > 0.5 for kind in paths)

# %% [markdown]
# **Figure check.** Strong penalties keep few couplings, nearly all true (high precision, low
# recall); weak ones keep nearly every true coupling among many false ones. At the same
# strength the group lasso is at least as precise as the lasso, which keeps a filter as soon
# as one of its weights survives; but at the same strength it also charges more (section 5),
# so compare the two curves at equal recall, where the grouping itself shows. The stars
# (the path's fits at the strengths chosen for prediction) keep most true couplings and many
# false ones: to draw a network, report a stronger penalty (or threshold the
# filters), and say which.
#
# ```{glue:figure} exercise2_figure
# :name: fig-ridge-exercise-2
#
# Expected result of exercise 2: precision against recall of the kept couplings.
# ```
#
# ## On real data
#
# The same analysis runs on the ADn recording of {cite}`peyrache2015internally` with one
# argument changed. The file is downloaded once and verified by its checksum; without network
# the cell says so in one line and the chapter goes on (pre-download with
# `python -m course_utils fetch head_direction`). We take the first minutes of wakefulness,
# the ADn units firing above 1 Hz ordered by preferred direction, and choose the ridge
# strength by blocked cross-validation.

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
    real_tuning = nap.compute_tuning_curves(adn, real.heading, bins=36, range=(0, 2 * np.pi),
                                            epochs=segment, feature_names=["heading"])
    order = np.argsort(real_tuning.idxmax(dim="heading").values)
    real_counts = adn.count(BIN_S, ep=segment)
    real_counts = nap.TsdFrame(t=real_counts.t, d=real_counts.values[:, order],
                               time_support=real_counts.time_support)
    real_heading = heading_at(real_counts, real.heading)
    n_real = real_counts.shape[1]
    real_basis = heading_basis + nmo.basis.RaisedCosineLogConv(
        N_HISTORY_BASIS, window_size=window_size, label="history")
    real_X, real_Y = design_matrix(real_basis, real_counts, real_heading)
    real_train = int(TRAIN_FRACTION * len(real_X)) // N_FOLDS * N_FOLDS
    real_X = (real_X - real_X[:real_train].mean(axis=0)) / real_X[:real_train].std(axis=0)
    real_fold = real_train * (N_FOLDS - 1) // N_FOLDS
    real_columns = real_basis.split_by_feature(np.arange(real_basis.n_output_features), axis=0)["history"]
    real_pattern = np.zeros((real_X.shape[1], n_real))
    real_pattern[real_columns.ravel()] = 1.0

    def log_likelihood_scorer(model, X, Y) -> float:
        """GridSearchCV scorer: mean Poisson log-likelihood per bin and neuron."""
        return log_likelihood(model, X, Y)

    real_search = GridSearchCV(ridge_glm(1.0, real_fold, real_pattern),
                               {"regularizer_strength": [a / real_fold * real_pattern for a in ALPHAS]},
                               cv=KFold(N_FOLDS, shuffle=False), scoring=log_likelihood_scorer,
                               refit=False, error_score="raise").fit(real_X[:real_train], real_Y[:real_train])
    real_alpha = ALPHAS[int(np.argmax(real_search.cv_results_["mean_test_score"]))]
    real_model = fit(ridge_glm(real_alpha, real_train, real_pattern), real_X[:real_train], real_Y[:real_train])
    real_unreg = fit(nmo.glm.PopulationGLM(solver_name="LBFGS", solver_kwargs=dict(maxiter=MAX_ITER)),
                     real_X[:real_train], real_Y[:real_train])
    print(f"{n_real} ADn units, {REAL_MINUTES:g} min of wake: blocked CV chooses α = {real_alpha:g}; "
          f"test log-likelihood {log_likelihood(real_model, real_X[real_train:], real_Y[real_train:]):.4f} "
          f"(unregularized {log_likelihood(real_unreg, real_X[real_train:], real_Y[real_train:]):.4f}) nats/bin")
    real_weights = np.asarray(real_model.coef_)[real_columns.ravel()].reshape(n_real, N_HISTORY_BASIS, n_real)
    real_net = np.einsum("jbi,lb->ij", real_weights, kernels)  # standardized units: pattern only
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    limit = np.abs(real_net[~np.eye(n_real, dtype=bool)]).max()
    image = show_matrix(ax, real_net, limit, f"ADn, ridge α = {real_alpha:g}")
    fig.colorbar(image, ax=ax, label="net coupling (standardized weights)")
    ax.set(xlabel="presynaptic unit (by preferred direction)", ylabel="postsynaptic unit")
    plt.show()

# %% [markdown]
# ## Checks
#
# The chapter's scientific claims, asserted against the simulation's ground truth. They run
# at every scale and fail the book build if the science breaks. (Every fit converged: a fit
# that did not would have raised an error in its cell.)

# %%
scale = config.get_scale()
auc_floor = {"smoke": 0.65, "default": 0.8, "full": 0.9}[scale]
r_floor = {"smoke": 0.4, "default": 0.7, "full": 0.8}[scale]
# Overfitting: the unregularized model is better on its training data than on the test set,
# and the chosen penalty narrows that gap (drift alone would leave it unchanged).
assert r2_train_unreg > r2_test_unreg, (r2_train_unreg, r2_test_unreg)
assert gap_best < gap_unreg, (gap_best, gap_unreg)
# The CV-chosen ridge beats no penalty and the grid's largest penalty on held-out data.
assert ll_test[best_alpha] > ll_test_unreg, (ll_test[best_alpha], ll_test_unreg)
assert ll_test[best_alpha] > ll_test[ALPHAS[-1]], (ll_test[best_alpha], ll_test[ALPHAS[-1]])
assert best_alpha not in (ALPHAS[0], ALPHAS[-1]), "the optimum must lie inside the grid"
# Shuffled folds score every strength higher, the weakest penalty more than the chosen one.
assert np.all(inflation > 0) and inflation[0] > inflation[ALPHAS.index(best_alpha)], inflation
# The ladder's text: α = 0.01 is close to unregularized, α = 100 helps on held-out data.
assert abs(ll_test[0.01] - ll_test_unreg) < abs(ll_test[100.0] - ll_test_unreg)
assert ll_test[100.0] > ll_test_unreg
# Edge recovery: every penalty ranks true couplings above absent ones, the group lasso
# clearly; its coupling matrix correlates with the truth, better than ridge's.
assert auc[group_name] >= auc_floor and min(auc.values()) > 0.7, auc
assert auc["ridge (CV)"] >= max(auc[group_name], auc[lasso_name]) - 0.02, (
    "the text says ridge ranks as well or better", auc)
assert net_r[list(net_r)[0]] >= r_floor and net_r[list(net_r)[0]] > net_r[list(net_r)[1]], net_r
assert precision_group > true_edges.mean(), (precision_group, true_edges.mean())
# Along the path the lasso keeps at least as many non-zero filters as the group lasso, the
# group lasso is at least as precise, and the strongest penalty that keeps any coupling
# keeps mostly true ones (exercise 2's figure).
assert all(lasso >= group for lasso, group in zip(n_kept_path["lasso"], n_kept_path["group lasso"]))
path_precision = {kind: [] for kind in paths}
for kind in paths:
    for alpha in PATH_ALPHAS:
        kept_here = filter_norms(filters_of(paths[kind][alpha]))[off_diagonal] > 0
        path_precision[kind].append((kept_here & true_edges).sum() / max(kept_here.sum(), 1))
assert all(g >= l - 0.02 for g, l, n in zip(path_precision["group lasso"], path_precision["lasso"],
                                           n_kept_path["group lasso"]) if n > 0), path_precision
strongest_kept = next(p for p, n in zip(path_precision["group lasso"], n_kept_path["group lasso"]) if n)
assert strongest_kept >= 0.8 and precision_group < strongest_kept, (path_precision, precision_group)
print("All checks passed.")

# %% [markdown]
# ## Summary
#
# - A population GLM with every neuron's history has many weights per neuron; trained on
#   minutes of spikes it fits noise, and scores worse on the future than on its past.
# - Ridge adds $\frac{\alpha}{2}\lVert w \rVert^2$ to the negative log-likelihood. nemos'
#   `regularizer_strength` is $\alpha / T$ because its loss is a mean over $T$ bins.
# - Choose α by cross-validation inside the training set (a `KFold` loop or `GridSearchCV`),
#   on contiguous blocks of time: shuffled folds flatter the models that overfit. Here blocked folds chose
#   α = {glue:text}`best_alpha:g`, which beat both no penalty and the strongest penalty on
#   the held-out test set.
# - Lasso zeroes single weights; group lasso zeroes whole filters and recovered the simulated
#   wiring with an AUC of {glue:text}`auc_group:.2f`. The strength that predicts best keeps
#   many spurious couplings: prediction and selection are different questions.
# - Coupling filters are functional connectivity, conditional on what the model contains:
#   leave out a common input such as the heading and it reappears as coupling.
#
# **What's next.** Chapter 3 turns to a model whose complexity is a *rank*: low-rank
# autoregressive models of photostimulation responses, with the rank and the penalty chosen
# by cross-validation over held-out stimulation groups.
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
