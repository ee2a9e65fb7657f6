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
# # 1 · GLM basics: what does this neuron really encode?
#
# A neuron in the hippocampus fires more in the middle of a linear track. Is it a place
# cell? The animal also runs fastest in the middle of the track, so a neuron that only cares
# about **speed** draws the same bump in a position tuning curve. Tuning curves look at one
# variable at a time and cannot tell the two apart. A **generalized linear model** (GLM)
# weighs every variable at once, and on simulated data, where we know the answer, we will
# watch it find the true cause.
#
# **Learning goals.** After this chapter you can
#
# - say why a tuning curve misleads when two behavioural variables are correlated;
# - write down a Poisson GLM (features, weights, design matrix, exponential non-linearity,
#   log-likelihood) and explain why it beats linear regression for spike counts;
# - fit, compare and score GLMs with [nemos](https://nemos.readthedocs.io) on held-out data
#   (log-likelihood, pseudo-R²);
# - build features with basis functions: smooth 1-D bases for position and speed, and a
#   log-stretched raised-cosine *temporal* basis that recovers a neuron's stimulus filter.
#
# **Prerequisites.** Python and NumPy; what a spike train is; the idea of a likelihood.
# [pynapple](https://pynapple.org) objects (`Tsd`, `TsGroup`, `IntervalSet`)
# {cite}`viejo2023pynapple` are introduced as they come.
#
# **Time to learn.** The core path (sections 1 to 6, checks and summary) takes about 50
# minutes to read and run; the three exercises about 30 more. *Going further* (checking a
# fit's convergence with an independent solver, and the real recording) is optional: about
# 15 minutes.
#
# **Run time** (measured by `benchmarks/chapters.py`, see
# {doc}`../book/setup`):
# <!-- timings:glm_basics -->
# smoke 27 s (1.3 GB) · default 56 s (1.3 GB) · full: not measured yet · on 2 CPU cores, peak memory in brackets
# <!-- /timings -->
#
# **Notebooks to download** (from the book):
# <a href="../_static/variants/attendee/01_glm_basics.ipynb" download>attendee</a>
# (exercises open with their checks, expected figures included) ·
# <a href="../_static/variants/presenter/01_glm_basics.ipynb" download>presenter</a>
# (all code, headings only).

# %% [markdown]
# ## Setup
#
# The course's helper package `course_utils` reports the run scale (`COURSE_SCALE`: `smoke`,
# `default` or `full`) and the versions in use; every size that depends on the scale sits in
# the one cell tagged `parameters` below.

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
import jax
import matplotlib.pyplot as plt
import nemos as nmo
import numpy as np
import pynapple as nap
import scipy.special
from sklearn.linear_model import PoissonRegressor

from course_utils import config, metrics, plotting
from course_utils.data import DataFetchError, load_current_injection, load_place_cells
from course_utils.exercises import ExerciseChecks
from course_utils.glue import glue
from course_utils.workshop import report

plotting.use_course_style()
nap.nap_config.suppress_conversion_warnings = True  # nemos returns jax arrays; the copy is intended
config.use_jax_compilation_cache()  # fits of the same shape reuse compiled programs
# Double precision: these fits are small, and float32 rounding can stop a quasi-Newton
# solver short of the maximum.
jax.config.update("jax_enable_x64", True)
report(packages=("nemos", "pynapple", "numpy"))
checks = ExerciseChecks("01_glm_basics")  # checks your exercise answers (see "Exercises")

# %% tags=["parameters"]
SIZES = config.sizes("glm_basics")
DURATION_S = SIZES["duration_s"]  # length of the simulated maze session
BIN_S = SIZES["bin_s"]  # spike-count bin
N_POSITION_BINS = SIZES["n_position_bins"]  # one-hot position features
N_BASIS = SIZES["n_basis"]  # smooth basis functions per variable
INJECTION_DURATION_S = SIZES["injection_duration_s"]  # current-injection recording
N_KERNEL_BASIS = SIZES["n_kernel_basis"]  # temporal basis functions
N_SURFACE_GRID = SIZES["n_surface_grid"]  # grid points per axis of the likelihood surface
SEED = 2026
glue("ch1_scale", config.get_scale(), display=False)  # the scale of the numbers quoted
rng = config.seed_everything(SEED)
dict(SIZES)

# %% [markdown]
# ## 1. A linear maze where the answer is known
#
# `load_place_cells()` returns, by default, a *simulated* session shaped like the real
# recording of {cite}`grosmark2016diversity`: spike times of a few neurons (a pynapple
# `TsGroup`), the animal's position on a 100 cm track (a `Tsd`) and the runs along the track
# (an `IntervalSet`). Because it is simulated it also carries `truth`, the rule each neuron
# really follows. The same call with `source="real"` loads the recording itself (last section).

# %%
session = load_place_cells(source="simulated", seed=SEED, duration_s=DURATION_S, bin_s=BIN_S)
truth = session.truth
units, position, runs = session.units, session.position, session.epochs
units

# %% [markdown]
# Speed is not in the file: like an experimenter, we compute it from the position, run by
# run, so that a jump from one end of the track to the other never counts as motion.


# %%
def running_speed(position: nap.Tsd, runs: nap.IntervalSet) -> nap.Tsd:
    """Absolute speed (cm/s) from the position, computed within each run."""
    pieces = []
    for run in runs:
        pos = position.restrict(run)
        pieces.append(nap.Tsd(t=pos.t, d=np.abs(np.gradient(pos.values, pos.t))))
    return nap.Tsd(
        t=np.concatenate([p.t for p in pieces]),
        d=np.concatenate([p.values for p in pieces]),
        time_support=runs,
    )


position = position.restrict(runs)
speed = running_speed(position, runs)
track_centre = truth.track_length_cm / 2
speed_position_r = metrics.pearson_r(speed.values, np.abs(position.values - track_centre))
glue("n_runs", len(runs), display=False)
glue("speed_position_r", float(speed_position_r), display=False)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw=dict(width_ratios=[2, 1]))
window = runs[:6]
axes[0].plot(
    position.restrict(window).t,
    position.restrict(window).values,
    ".",
    ms=1.5,
    color=plotting.COLORS["position"],
)
axes[0].set(xlabel="time (s)", ylabel="position (cm)", title="Six runs along the track")
twin = axes[0].twinx()
twin.plot(
    speed.restrict(window).t,
    speed.restrict(window).values,
    ".",
    ms=1.5,
    color=plotting.COLORS["speed"],
)
twin.set_ylabel("speed (cm/s)", color=plotting.COLORS["speed"])
axes[1].hexbin(position.values, speed.values, gridsize=25, bins="log", cmap="Greys", mincnt=1)
axes[1].set(xlabel="position (cm)", ylabel="speed (cm/s)", title="Speed against position")
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# Over {glue:text}`n_runs` runs the animal is slow at the ends of the track and fast in the
# middle: the correlation between speed and the distance from the track's centre is
# {glue:text}`speed_position_r:.2f`. Each run has its own top speed, so the two variables are
# correlated but not locked together, and that is what lets a model separate them.
#
# ## 2. Tuning curves mislead
#
# A tuning curve is the mean firing rate in each bin of one variable. pynapple computes it
# from spike times and the variable directly.

# %%
tuning = nap.compute_tuning_curves(units, position, bins=N_POSITION_BINS, epochs=runs)
kinds = truth.neuron_kinds

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, len(kinds), figsize=(9, 2.8))
centres = tuning.coords[tuning.dims[1]].values
for ax, unit, kind in zip(axes, tuning.coords["unit"].values, kinds):
    ax.plot(centres, tuning.sel(unit=unit).values, color=plotting.COLORS[kind])
    ax.set(title=f"neuron {unit}", xlabel="position (cm)")
axes[0].set_ylabel("firing rate (Hz)")
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# All three look like place cells with a field somewhere in the middle of the track. The
# simulation knows better: neuron 0 encodes **speed only**, neuron 1 position only, and
# neuron 2 both. Neuron 0's "place field" is the animal's speed profile seen through the
# position axis. We need a model that looks at position and speed together.
#
# ## 3. What a GLM is
#
# A Poisson GLM predicts the spike count $y_t$ in bin $t$ from **features** $x_t$ (a row of
# the **design matrix** $X$) through **weights** $w$, an intercept $b$ and an exponential
# non-linearity:
#
# $$
# \mu_t = \exp(b + x_t^\top w), \qquad y_t \sim \mathrm{Poisson}(\mu_t),
# $$
#
# where $\mu_t$ is the expected count in the bin (what nemos predicts; the firing rate is
# $\mu_t / \Delta t$ for bins of $\Delta t$ seconds, so $b$ is a log count per bin). The
# weights are chosen to maximise the **log-likelihood** of the observed counts,
#
# $$
# \log L(b, w) = \sum_t \big[ y_t \log \mu_t - \mu_t - \log y_t! \big],
# $$
#
# a function of the weights alone once the data are fixed. For the Poisson GLM with the
# exponential link it is concave in $(b, w)$ {cite}`paninski2004maximum`: no local optima,
# so any decent optimizer finds the top {cite}`nelder1972generalized,truccolo2005point`. The
# top is a single point as long as no feature (the intercept's column of ones included) is a
# weighted sum of the others, and every feature's weight is pinned by data (a position bin
# the neuron never fired in would push its weight to minus infinity); section 5 meets a case
# where the first condition fails. Let us draw the
# log-likelihood for neuron 0 with a single feature, speed.

# %%
counts = units.count(BIN_S, ep=runs)
# Behaviour is sampled on its own clock: read it at the centre of every count bin.
speed_binned = speed.interpolate(counts, ep=runs)
position_binned = position.interpolate(counts, ep=runs)
assert len(counts) == len(speed_binned) == len(position_binned)
assert not np.isnan(speed_binned.values).any() and not np.isnan(position_binned.values).any()

y0 = counts[:, 0].values.astype(float)
s = speed_binned.values
intercepts = np.linspace(np.log(0.2 * BIN_S), np.log(4.0 * BIN_S), N_SURFACE_GRID)
slopes = np.linspace(0.0, 0.12, N_SURFACE_GRID)
# log L(b, w) = b*sum(y) + w*sum(y*s) - exp(b)*sum(exp(w*s)) + const: one pass per slope.
sum_exp = np.exp(np.outer(slopes, s)).sum(axis=1)
surface = (
    intercepts[None, :] * y0.sum() + slopes[:, None] * (y0 * s).sum() - np.exp(intercepts)[None, :] * sum_exp[:, None]
) / y0.size

speed_only = nmo.glm.GLM(solver_name="BFGS").fit(s[:, None], y0)
true_intercept = truth.neurons[0].baseline_log_rate + np.log(BIN_S)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(5.2, 3.8))
levels = np.quantile(surface, np.linspace(0.3, 1.0, 15))
contours = ax.contourf(intercepts, slopes, surface, levels=levels, cmap="viridis", extend="min")
fig.colorbar(
    contours,
    ax=ax,
    format="%.3f",
    ticks=levels[::3],
    label="log-likelihood per bin (nats, up to a constant)",
)
ax.plot(
    speed_only.intercept_[0],
    speed_only.coef_[0],
    "o",
    mfc="none",
    mec="white",
    ms=12,
    mew=2,
    label="nemos fit (maximum)",
)
ax.plot(
    true_intercept,
    truth.neurons[0].speed_weight,
    "x",
    color=plotting.COLORS["alternative"],
    ms=9,
    mew=2,
    label="truth",
)
ax.set(
    xlabel="intercept b (log count per bin)",
    ylabel="speed weight w (per cm/s)",
    title="Log-likelihood over two weights",
)
ax.legend(loc="upper right", frameon=True, facecolor="white", framealpha=0.9)
plt.show()

# %% [markdown]
# The surface is a single smooth ridge-shaped hill; nemos climbs to its top, a hair away from
# the truth (the gap is sampling noise: a longer recording shrinks it).
#
# (Did nemos really reach the top? *Going further* checks the fits of section 4 with an
# independent solver.)
#
# ### Why not linear regression?
#
# Ordinary least squares assumes Gaussian noise of constant variance and a linear mean.
# Spike counts are non-negative integers whose variance grows with their mean, and a linear
# mean happily predicts negative rates.

# %%
speed_edges = np.linspace(0, np.quantile(s, 0.99), 16)
which = np.digitize(s, speed_edges[1:-1])
mean_count = np.array([y0[which == k].mean() for k in range(len(speed_edges) - 1)])
var_count = np.array([y0[which == k].var() for k in range(len(speed_edges) - 1)])
speed_centres = 0.5 * (speed_edges[1:] + speed_edges[:-1])

ols_slope, ols_intercept = np.polyfit(s, y0, deg=1)
grid = np.linspace(0, speed_edges[-1], 100)
ols_at_rest = ols_intercept / BIN_S
glue("ols_rate_at_rest", float(ols_at_rest), display=False)
glue("glm_rate_at_rest", float(np.exp(speed_only.intercept_[0])) / BIN_S, display=False)
glue(
    "true_rate_at_rest",
    float(np.exp(truth.neurons[0].baseline_log_rate)),
    display=False,
)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].plot(speed_centres, mean_count / BIN_S, "o", color=plotting.COLORS["data"], label="data")
axes[0].plot(
    grid,
    (ols_intercept + ols_slope * grid) / BIN_S,
    color=plotting.COLORS["alternative"],
    label="linear regression",
)
axes[0].plot(
    grid,
    np.exp(speed_only.intercept_[0] + speed_only.coef_[0] * grid) / BIN_S,
    color=plotting.COLORS["model"],
    label="Poisson GLM",
)
axes[0].axhline(0, color="k", lw=0.6)
axes[0].set(
    xlabel="speed (cm/s)",
    ylabel="firing rate (Hz)",
    title="Mean: exponential, not linear",
)
axes[0].legend()
axes[1].plot(mean_count, var_count, "o", color=plotting.COLORS["data"], label="speed bins")
axes[1].plot(
    [0, mean_count.max()],
    [0, mean_count.max()],
    color=plotting.COLORS["model"],
    label="Poisson: variance = mean",
)
axes[1].set(
    xlabel="mean count per bin",
    ylabel="variance of count",
    title="Variance grows with the mean",
)
axes[1].legend()
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# Linear regression predicts {glue:text}`ols_rate_at_rest:.2f` Hz when the animal stands
# still, a negative firing rate, where the GLM predicts {glue:text}`glm_rate_at_rest:.2f` Hz
# (the simulation's truth is {glue:text}`true_rate_at_rest:.2f` Hz). The variance of the counts tracks
# their mean, as a Poisson model says and a constant-variance Gaussian model denies. (Here
# that holds by construction, since the simulation draws Poisson counts; real counts are
# often more variable than Poisson, which a negative binomial GLM allows for.)
#
# ## 4. Position alone, or position and speed?
#
# Now the question of the hook. We fit two GLMs to each neuron with nemos:
#
# - **position only**: one feature per position bin (one-hot), as a tuning curve would;
# - **position + speed**: the same position features plus the speed.
#
# One position bin is left out as the reference, absorbed by the intercept. We fit on some
# runs and score on others: held-out data, and whole runs, so that neighbouring time bins
# (which are alike) never straddle the split. Runs alternate direction (out, back, out, …),
# so "every other run" would train on outbound runs only and test on return runs. Real place
# fields are often directional {cite}`mcnaughton1983contributions`: such a split would score
# a model of one field on another. We split by *pairs* of runs instead, one outbound and one
# return each, so that both directions are in both sets. nemos's `PopulationGLM`
# fits every neuron of a design in one call: the neurons' log-likelihoods simply add up, so
# this is the same as one fit per neuron, run as one computation.

# %%
position_edges = np.linspace(0, truth.track_length_cm, N_POSITION_BINS + 1)
position_bin = np.clip(np.digitize(position_binned.values, position_edges) - 1, 0, N_POSITION_BINS - 1)
one_hot = np.eye(N_POSITION_BINS)[position_bin][:, 1:]
designs = {
    "position only": one_hot,
    "position + speed": np.column_stack([one_hot, s]),
}
# Runs 0 and 1 form pair 0, runs 2 and 3 pair 1, ...: even pairs train, odd pairs test.
run_pair = np.arange(len(runs)) // 2
train_runs, test_runs = runs[run_pair % 2 == 0], runs[run_pair % 2 == 1]
is_train = ~np.isnan(train_runs.in_interval(counts))  # bins inside a training run
is_test = ~np.isnan(test_runs.in_interval(counts))


def fit_and_score(X: np.ndarray, Y: np.ndarray) -> tuple[nmo.glm.PopulationGLM, np.ndarray, np.ndarray]:
    """Fit every neuron (a column of Y) on the training runs; return the model and each
    neuron's held-out log-likelihood and pseudo-R²."""
    model = nmo.glm.PopulationGLM(solver_name="BFGS").fit(X[is_train], Y[is_train])
    rate = np.asarray(model.predict(X[is_test]))
    ll, r2 = [], []
    for n in range(Y.shape[1]):
        y_test = Y[is_test, n]
        ll.append(metrics.poisson_log_likelihood(y_test, rate[:, n]))
        r2.append(metrics.pseudo_r2(y_test, rate[:, n], null_rate=Y[is_train, n].mean()))
    return model, np.array(ll), np.array(r2)


Y = counts.values.astype(float)  # one column per neuron
weights, scores, models = {}, {}, {}
for name, X in designs.items():
    model, ll, r2 = fit_and_score(X, Y)
    models[name] = model
    for neuron in range(len(kinds)):
        weights[neuron, name] = np.asarray(model.coef_)[:, neuron]
        scores[neuron, name] = dict(ll=ll[neuron], r2=r2[neuron])

speed_weight_fit = float(weights[0, "position + speed"][-1])
speed_weight_true = truth.neurons[0].speed_weight
glue("ch1_speed_weight_fit", float(speed_weight_fit), display=False)
glue("ch1_speed_weight_true", float(speed_weight_true), display=False)
glue("ch1_r2_pos_only", float(scores[0, "position only"]["r2"]), display=False)
glue("ch1_r2_pos_speed", float(scores[0, "position + speed"]["r2"]), display=False)
position_range_ratio = float(
    np.ptp(weights[0, "position + speed"][: N_POSITION_BINS - 1])
    / np.ptp(weights[0, "position only"][: N_POSITION_BINS - 1])
)
glue("ch1_position_range_ratio", position_range_ratio, display=False)
all_r2 = [score["r2"] for score in scores.values()]

# Neuron 1, the place cell: how much does its fitted speed weight move its rate? The weight's
# standard error comes from the Fisher information X' diag(mu) X of the training bins (the
# curvature of the log-likelihood at its maximum), intercept column included.
X_train = np.column_stack([np.ones(is_train.sum()), designs["position + speed"][is_train]])
theta_1 = np.concatenate(
    [[models["position + speed"].intercept_[1]], np.asarray(models["position + speed"].coef_)[:, 1]]
)
fisher_1 = X_train.T @ (np.exp(X_train @ theta_1)[:, None] * X_train)
speed_weight_1 = float(theta_1[-1])
speed_se_1 = float(np.sqrt(np.linalg.inv(fisher_1)[-1, -1]))
top_speed = float(np.quantile(s, 0.95))  # the speeds the animal runs: 0 to this
speed_effect_1 = float(np.exp(speed_weight_1 * top_speed) - 1.0)  # relative rate change
glue("speed_weight_1", speed_weight_1, display=False)
glue("speed_se_1", speed_se_1, display=False)
glue("top_speed", top_speed, display=False)
glue("ch1_place_cell_speed_effect", 100 * speed_effect_1, display=False)
# The rate change a weight 3 standard errors from the fitted one would make: how precisely
# this session pins the effect down (the standard error shrinks as one over the square root
# of the session's length).
speed_effect_bound_1 = float(np.exp((abs(speed_weight_1) + 3 * speed_se_1) * top_speed) - 1.0)
glue("speed_effect_bound_1", 100 * speed_effect_bound_1, display=False)
glue(
    "place_cell_speed_clause",
    "the fitted speed weight is consistent with no effect at all"
    if abs(speed_weight_1) < 3 * speed_se_1
    else "the fitted speed weight is more than three standard errors from zero",
    display=False,
)
glue("r2_range", f"{min(all_r2):.2f} to {max(all_r2):.2f} on held-out runs", display=False)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
bin_centres = 0.5 * (position_edges[1:] + position_edges[:-1])
for name, color in zip(designs, (plotting.COLORS["alternative"], plotting.COLORS["model"])):
    with_reference = np.concatenate([[0.0], weights[0, name][: N_POSITION_BINS - 1]])
    axes[0].plot(bin_centres, with_reference, "o-", color=color, label=name)
axes[0].axhline(0, color=plotting.COLORS["truth"], lw=1, ls="--", label="truth (no position effect)")
axes[0].set(
    xlabel="position (cm)",
    ylabel="position weight (log-rate)",
    title="Neuron 0: position weights",
)
axes[0].legend()

width = 0.38
for k, (name, color) in enumerate(zip(designs, (plotting.COLORS["alternative"], plotting.COLORS["model"]))):
    values = [scores[n, name]["r2"] for n in range(len(kinds))]
    axes[1].bar(
        np.arange(len(kinds)) + (k - 0.5) * width,
        values,
        width,
        color=color,
        label=name,
    )
axes[1].set_xticks(np.arange(len(kinds)), [f"neuron {n}\n({kind})" for n, kind in enumerate(kinds)])
axes[1].set(ylabel="held-out pseudo-R²", title="Scored on held-out runs")
axes[1].legend()
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# For neuron 0 the position weights of the position-only model trace the "place field"; add
# speed and they collapse towards zero (their range shrinks to a fraction
# {glue:text}`ch1_position_range_ratio:.2f` of what it was), while the speed weight comes out at
# {glue:text}`ch1_speed_weight_fit:.4f` per cm/s against a true {glue:text}`ch1_speed_weight_true:.4f`.
# The richer model also predicts held-out runs better (pseudo-R² {glue:text}`ch1_r2_pos_speed:.3f`
# against {glue:text}`ch1_r2_pos_only:.3f`). For the true place cell, neuron 1,
# {glue:text}`place_cell_speed_clause`: its speed weight is {glue:text}`speed_weight_1:.4f`
# per cm/s with a standard error of {glue:text}`speed_se_1:.4f`, and it changes the rate by
# {glue:text}`ch1_place_cell_speed_effect:+.1f` %
# between standing still and {glue:text}`top_speed:.0f` cm/s (the 95th percentile of
# speed). The data do not pin it down tightly, though: a weight three standard errors
# larger would change the rate by {glue:text}`speed_effect_bound_1:.0f` %. The correlation
# between speed and position that fooled the tuning curve also blurs the weights: part of
# what speed does, position can mimic. The model only uses a feature when the data ask for
# it, and the standard error says how firmly the data can say so. (The curvature of the
# log-likelihood at its maximum, the *Fisher information* matrix, measures how sharply the
# data pin the weights down; a weight's standard error is the square root of the matching
# diagonal entry of its inverse. For a lone weight that is one over the square root of its
# curvature; here it is larger, because position can mimic part of what speed does.)
#
# ```{note}
# McFadden's pseudo-R² {cite}`mcfadden1974conditional` is one minus the ratio of the model's
# log-likelihood to that of a constant-rate model. Values far below 1 are normal for spike
# counts in short bins (here {glue:text}`r2_range`): most of the variability of a Poisson
# count is irreducible noise. Compare models on the same data, never
# across datasets or bin sizes.
# ```
#
# ## 5. Smooth features: basis functions
#
# One-hot bins cost one weight per bin and give jagged curves. A **basis** represents a smooth
# function of a variable as a weighted sum of a few bumps. nemos builds the features for us:
# `BSplineEval` evaluates B-splines at each value, and adding two bases (`+`) concatenates
# their features.

# %%
position_basis = nmo.basis.BSplineEval(N_BASIS, bounds=(0.0, truth.track_length_cm), label="position")
speed_basis = nmo.basis.BSplineEval(N_BASIS, bounds=(0.0, float(s.max()) + 1e-6), label="speed")
smooth_basis = position_basis + speed_basis
X_smooth = smooth_basis.compute_features(position_binned.values, s)
both = 2  # the neuron that encodes position and speed
smooth_fit, _, _ = fit_and_score(X_smooth, Y[:, [both]])
coef = smooth_basis.split_by_feature(np.asarray(smooth_fit.coef_)[:, 0], axis=0)


def centred(values: np.ndarray) -> np.ndarray:
    """Subtract the mean: log-rate components are defined up to a constant."""
    return values - values.mean()


pos_grid, pos_features = position_basis.evaluate_on_grid(200)
spd_grid, spd_features = speed_basis.evaluate_on_grid(200)
pos_fit_curve = centred(pos_features @ coef["position"])
spd_fit_curve = centred(spd_features @ coef["speed"])
cell = truth.neurons[both]
pos_true_curve = centred(cell.position_effect(pos_grid))
spd_true_curve = centred(cell.speed_effect(spd_grid))
position_curve_r = metrics.pearson_r(pos_fit_curve, pos_true_curve)
speed_curve_r = metrics.pearson_r(spd_fit_curve, spd_true_curve)
glue("position_curve_r", float(position_curve_r), display=False)
glue("speed_curve_r", float(speed_curve_r), display=False)
glue("n_basis_total", int(2 * N_BASIS), display=False)
# Where the fitted position curve departs from the truth: the outer 10 cm of each end of the
# track (where the animal is also slow) against the rest.
at_ends = (pos_grid < 10.0) | (pos_grid > truth.track_length_cm - 10.0)
curve_error = np.abs(pos_fit_curve - pos_true_curve)
glue("pos_error_ends", float(curve_error[at_ends].max()), display=False)
glue("pos_error_middle", float(curve_error[~at_ends].max()), display=False)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 3, figsize=(10, 3))
axes[0].plot(pos_grid, pos_features, lw=1)
axes[0].set(
    xlabel="position (cm)",
    ylabel="feature value",
    title=f"{N_BASIS} B-splines over position",
)
axes[1].plot(pos_grid, pos_true_curve, "--", color=plotting.COLORS["truth"], label="truth")
axes[1].plot(pos_grid, pos_fit_curve, color=plotting.COLORS["model"], label="GLM")
axes[1].set(
    xlabel="position (cm)",
    ylabel="log-rate (centred)",
    title="Neuron 2: position effect",
)
axes[1].legend()
axes[2].plot(spd_grid, spd_true_curve, "--", color=plotting.COLORS["truth"], label="truth")
axes[2].plot(spd_grid, spd_fit_curve, color=plotting.COLORS["model"], label="GLM")
axes[2].set(xlabel="speed (cm/s)", ylabel="log-rate (centred)", title="Neuron 2: speed effect")
axes[2].legend()
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# With {glue:text}`n_basis_total` smooth weights, the model recovers both the place field
# (correlation with the truth {glue:text}`position_curve_r:.3f`) and the linear speed effect
# (correlation {glue:text}`speed_curve_r:.3f`) of the conjunctive neuron. It is least sure
# at the ends of the track: the position curve is off by up to
# {glue:text}`pos_error_ends:.2f` (log-rate) in the outer 10 cm, against
# {glue:text}`pos_error_middle:.2f` elsewhere. The animal is slow only near the ends, so
# there the end splines of position and the low-speed splines of speed can trade off
# against each other with little change in the predicted counts: section 1's confound, in a
# milder form. (The B-splines of each variable sum to one, as the intercept's column does,
# so the maximum is not a point but a flat ridge: raising one variable's curve by a constant
# and lowering the intercept by the same amount changes no prediction. Each curve is only
# defined up to a constant and is shown centred; dropping one spline per variable, or a
# penalty, would pin the weights themselves.) Penalties that settle such trade-offs are the
# subject of chapter 2.
#
# ## 6. Time as a feature: a temporal basis for current injection
#
# Features can also be the *recent past* of a signal. In a current-injection experiment
# {cite}`gouwens2019classification` a neuron receives a noisy current; a
# linear-nonlinear-Poisson neuron filters that current with a temporal **kernel** and fires
# at the exponential of the result. To estimate the kernel we convolve the current with a
# **log-stretched raised-cosine** basis {cite}`pillow2008spatio`: narrow bumps at short lags,
# where the kernel changes fast, and wide ones at long lags.

# %%
injection = load_current_injection(source="simulated", seed=SEED, duration_s=INJECTION_DURATION_S)
inj_truth = injection.truth
inj_bin = inj_truth.bin_s
window_size = inj_truth.kernel.size
inj_counts = injection.units.count(inj_bin, ep=injection.epochs)[:, 0]
current = injection.current.bin_average(inj_bin, ep=injection.epochs)

temporal_basis = nmo.basis.RaisedCosineLogConv(N_KERNEL_BASIS, window_size=window_size, label="current")
X_current = temporal_basis.compute_features(current)  # NaN for the first window of each sweep
kernel_glm = nmo.glm.GLM(solver_name="BFGS").fit(X_current, inj_counts)
lag_grid, kernel_features = temporal_basis.evaluate_on_grid(window_size)
kernel_fit = kernel_features @ np.asarray(kernel_glm.coef_)
kernel_r = metrics.pearson_r(kernel_fit, inj_truth.kernel)
glue("ch1_kernel_r", float(kernel_r), display=False)
glue("n_kernel_basis", int(N_KERNEL_BASIS), display=False)
glue("window_size", int(window_size), display=False)
glue("n_spikes_injection", int(inj_counts.values.sum()), display=False)

lags_ms = inj_truth.kernel_lags_s * 1e3

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 3, figsize=(10, 3))
shown = current.restrict(nap.IntervalSet(injection.epochs.start[0], injection.epochs.start[0] + 1.0))
axes[0].plot(shown.t - shown.t[0], shown.values, color=plotting.COLORS["data"], lw=1)
spikes_shown = injection.units[0].restrict(shown.time_support).t - shown.t[0]
axes[0].plot(
    spikes_shown,
    np.full(spikes_shown.size, shown.values.max() * 1.1),
    "|",
    color="k",
    ms=8,
)
axes[0].set(
    xlabel="time in sweep (s)",
    ylabel="current (pA)",
    title="Injected current and spikes",
)
axes[1].plot(lags_ms, kernel_features, lw=1)
axes[1].set(xlabel="lag (ms)", ylabel="basis function", title="Raised-cosine basis")
axes[2].plot(lags_ms, inj_truth.kernel, "--", color=plotting.COLORS["truth"], label="truth")
axes[2].plot(lags_ms, kernel_fit, color=plotting.COLORS["model"], label="GLM")
axes[2].axhline(0, color="k", lw=0.5)
axes[2].set(xlabel="lag (ms)", ylabel="log-rate per pA", title="Recovered kernel")
axes[2].legend()
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# From {glue:text}`n_spikes_injection` spikes the GLM recovers the biphasic kernel: a fast
# excitatory lobe and a slower suppression (correlation with the truth
# {glue:text}`ch1_kernel_r:.3f`). {glue:text}`n_kernel_basis` numbers describe a filter of
# {glue:text}`window_size` lags, which is already a form of regularization: the basis restricts which kernels the model can express. Chapter 2
# makes that idea explicit with penalties.
#
# ## Exercises
#
# Each exercise has a code cell to complete and, after it, a cell that checks your answer:
# it says what is wrong (a shape, a sign, a factor, how far off) without giving the answer
# away. Run the check cell after each attempt. In the book the solutions are hidden under
# the exercise; the attendee notebook leaves them out.
#
# ### Exercise 1: write the Poisson log-likelihood
#
# Everything nemos does in this chapter rests on one function: the log-likelihood of section
# 3. Write it for a GLM with intercept `intercept` (a number) and weights `weights` (one
# per column of the design matrix `X`), as the **mean over bins** of
# $y_t \log \mu_t - \mu_t - \log y_t!$ with $\mu_t = \exp(b + x_t^\top w)$. That is what
# nemos's `model.score(X, y)` reports, and the check compares your function with nemos on
# the speed-only model of section 3. (`scipy.special.gammaln(y + 1)` is $\log y!$.)


# %% tags=["exercise"]
def poisson_log_likelihood(y: np.ndarray, X: np.ndarray, intercept: float, weights: np.ndarray) -> float:
    """Mean Poisson log-likelihood per bin of counts `y` under a GLM (nats per bin)."""
    # Your code: the expected counts mu from X, intercept and weights; then the mean of
    # y * log(mu) - mu - log(y!).
    ...


# %% tags=["solution", "hide-cell"]
def poisson_log_likelihood(y: np.ndarray, X: np.ndarray, intercept: float, weights: np.ndarray) -> float:
    """Mean Poisson log-likelihood per bin of counts `y` under a GLM (nats per bin)."""
    log_mu = intercept + X @ weights
    return float(np.mean(y * log_mu - np.exp(log_mu) - scipy.special.gammaln(y + 1)))


# %% tags=["check"]
check_rng = np.random.default_rng(1)  # small inputs the check chooses
ll_inputs = [
    (
        np.array([0.0, 1.0, 1.0, 0.0, 1.0]),
        check_rng.normal(size=(5, 2)),
        -0.5,
        np.array([0.3, -0.2]),
    ),  # counts of 0 and 1 only: log(y!) is 0 for every bin
    (np.array([0.0, 1.0, 3.0, 0.0, 2.0]), check_rng.normal(size=(5, 2)), -0.5, np.array([0.3, -0.2])),
    (check_rng.poisson(2.0, size=40).astype(float), check_rng.normal(size=(40, 3)), 0.7, np.array([0.1, 0.0, -0.4])),
]
ll_hints = {
    "scale": "nemos reports the mean over bins, not the sum.",
    "sign": "the log-likelihood is y·log(mu) − mu − log(y!): mind which terms are negative.",
    "tolerance": "is log(y!) in? scipy.special.gammaln(y + 1) computes it.",
    "wrong": "mu = exp(intercept + X @ weights); then y·log(mu) − mu − log(y!), averaged. If "
    "check input 1 (counts of 0 and 1 only) passes and the others fail, log(y!) is "
    "missing: scipy.special.gammaln(y + 1).",
    "shape": "return one number, the mean over all bins.",
}
checks.function("ex1_log_likelihood", poisson_log_likelihood, ll_inputs, hints=ll_hints)
checks.function(
    "ex1_against_nemos",
    poisson_log_likelihood,
    [(y0, s[:, None], float(speed_only.intercept_[0]), np.asarray(speed_only.coef_))],
    reference=lambda y, X, b, w: float(speed_only.score(X, y, score_type="log-likelihood")),
    rtol=1e-6,
    hints=ll_hints,
)
# %% [markdown]
# ### Exercise 2: the place field of a speed cell
#
# Section 2 claimed that neuron 0's "place field" is its speed profile seen through the
# position axis. Test the claim: take the **speed-only** GLM of section 3 (`speed_only`),
# whose rate depends on nothing but speed, predict neuron 0's expected count in every bin,
# and average the prediction within each position bin, in Hz. If speed explains the field,
# this *predicted* tuning curve matches the measured one. Write `predicted_tuning_curve`
# and plot both curves against position.

# %% tags=["exercise"]
speed_only_counts = np.asarray(speed_only.predict(s[:, None]))  # expected count per bin
measured_curve = np.array([y0[position_bin == k].mean() for k in range(N_POSITION_BINS)]) / BIN_S


def predicted_tuning_curve(
    expected_counts: np.ndarray, position_bin: np.ndarray, n_bins: int, bin_s: float
) -> np.ndarray:
    """Mean predicted rate (Hz) in each of `n_bins` position bins (bin k: position_bin == k)."""
    # Your code: for each position bin, the mean of expected_counts over the time bins in
    # it, converted from a count per time bin to a rate in Hz.
    ...


# %% tags=["solution", "hide-cell"]
def predicted_tuning_curve(
    expected_counts: np.ndarray, position_bin: np.ndarray, n_bins: int, bin_s: float
) -> np.ndarray:
    """Mean predicted rate (Hz) in each of `n_bins` position bins (bin k: position_bin == k)."""
    total = np.bincount(position_bin, weights=expected_counts, minlength=n_bins)
    visits = np.bincount(position_bin, minlength=n_bins)
    return total / visits / bin_s


speed_curve = predicted_tuning_curve(speed_only_counts, position_bin, N_POSITION_BINS, BIN_S)
fig, ax = plt.subplots(figsize=(5.2, 3.2))
ax.plot(bin_centres, measured_curve, "o", color=plotting.COLORS["data"], label="measured")
ax.plot(bin_centres, speed_curve, color=plotting.COLORS["model"], label="predicted from speed alone")
ax.set(xlabel="position (cm)", ylabel="firing rate (Hz)", title="Neuron 0: a field made by speed")
ax.legend()
glue("exercise2_figure", fig, display=False)
glue("ex2_field_r", float(metrics.pearson_r(speed_curve, measured_curve)), display=False)
plt.show()

# %% tags=["check"]
checks.function(
    "ex2_predicted_tuning_curve",
    predicted_tuning_curve,
    [
        (np.array([0.1, 0.3, 0.2, 0.2]), np.array([0, 1, 0, 2]), 3, 0.5),
        (speed_only_counts, position_bin, N_POSITION_BINS, BIN_S),
    ],
    hints={
        "scale": "a mean count per time bin is not a rate: divide by the bin width (s).",
        "shape": "one value per position bin: n_bins values.",
        "order": "value k belongs to position bin k.",
        "wrong": "average (not sum) the expected counts of the time bins in each position "
        "bin, then divide by the bin width in seconds.",
        "nan": "a bin with no visits has no mean; every bin is visited here, so look for a division by zero elsewhere.",
    },
)
# %% [markdown]
# **Figure check.** The curve predicted from speed alone follows the measured "place field"
# (correlation {glue:text}`ex2_field_r:.3f`): slow at the ends of the track, fast and so
# active in the middle. A tuning curve cannot tell this neuron from a place cell; the GLM,
# which sees speed and position together, can.
#
# ```{glue:figure} exercise2_figure
# :name: fig-glm-exercise-2
#
# Expected result of exercise 2: neuron 0's measured tuning curve and the one its speed
# alone predicts.
# ```
#
# ### Exercise 3: how many temporal basis functions?
#
# Fit the current-injection GLM on **one sweep only** with 2 and `N_KERNEL_BASIS` raised
# cosines, and with one weight per lag (`nmo.basis.HistoryConv(window_size)`: `window_size`
# features, no smoothing at all). For
# each, record the correlation of the recovered kernel with the truth and the
# log-likelihood on the last sweeps, held out of the fit. Which size predicts the held-out
# sweeps best (set `best_size`), and why do too few and too many both lose?

# %% tags=["exercise"]
held_out = injection.epochs[-max(1, len(injection.epochs) // 4) :]  # the last sweeps
train_sweeps = injection.epochs[:1]  # one sweep: little data, as in a short experiment


def kernel_for(n_basis: int, train_ep: nap.IntervalSet) -> tuple[np.ndarray, float]:
    """Fit on `train_ep`; return the kernel and the held-out LL per bin."""
    # Your code: build nmo.basis.RaisedCosineLogConv(n_basis, window_size=window_size)
    # (nmo.basis.HistoryConv(window_size) when n_basis == window_size), compute its features
    # of `current`, fit nmo.glm.GLM(solver_name="BFGS") on train_ep (as in section 6),
    # evaluate the kernel on the grid, and score the model on `held_out` (skipping rows with
    # NaN features) with metrics.poisson_log_likelihood.
    ...


best_size = ...  # your answer: 2, N_KERNEL_BASIS or window_size


# %% tags=["solution", "hide-cell"]
def kernel_for(n_basis: int, train_ep: nap.IntervalSet) -> tuple[np.ndarray, float]:
    """Fit on `train_ep`; return the kernel and the held-out LL per bin."""
    if n_basis == window_size:  # one weight per lag
        basis = nmo.basis.HistoryConv(window_size)
    else:
        basis = nmo.basis.RaisedCosineLogConv(n_basis, window_size=window_size)
    X = basis.compute_features(current)
    model = nmo.glm.GLM(solver_name="BFGS").fit(X.restrict(train_ep), inj_counts.restrict(train_ep))
    X_test, y_test = X.restrict(held_out), inj_counts.restrict(held_out)
    keep = ~np.any(np.isnan(X_test.values), axis=1)
    rate = np.asarray(model.predict(X_test.values[keep]))
    return basis.evaluate_on_grid(window_size)[1] @ np.asarray(model.coef_), metrics.poisson_log_likelihood(
        y_test.values[keep], rate
    )


basis_sizes = [2, N_KERNEL_BASIS, window_size]
results = {n: kernel_for(n, train_sweeps) for n in basis_sizes}
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].plot(lags_ms, inj_truth.kernel, "--", color=plotting.COLORS["truth"], label="truth")
for n, (kernel, _) in results.items():
    axes[0].plot(
        lags_ms,
        kernel,
        label="one weight per lag" if n == window_size else f"{n} raised cosines",
    )
axes[0].set(xlabel="lag (ms)", ylabel="log-rate per pA", title="Recovered kernels")
axes[0].legend()
axes[1].plot(
    basis_sizes,
    [ll for _, ll in results.values()],
    "o-",
    color=plotting.COLORS["model"],
)
axes[1].set(
    xlabel="number of features (log scale)",
    xscale="log",
    ylabel="held-out log-likelihood per bin",
    title="Held-out fit",
)
axes[1].set_xticks(basis_sizes, [str(n) for n in basis_sizes])
axes[1].minorticks_off()
plotting.label_panels(axes)
glue("exercise3_figure", fig, display=False)
plt.show()
kernel_r_by_size = {n: metrics.pearson_r(k, inj_truth.kernel) for n, (k, _) in results.items()}
held_out_ll_by_size = {n: ll for n, (_, ll) in results.items()}
best_basis_size = max(held_out_ll_by_size, key=held_out_ll_by_size.get)
best_size = best_basis_size
glue("best_basis_size", int(best_basis_size), display=False)
glue("kernel_r_few", float(kernel_r_by_size[2]), display=False)
glue("kernel_r_mid", float(kernel_r_by_size[N_KERNEL_BASIS]), display=False)
glue("kernel_r_many", float(kernel_r_by_size[window_size]), display=False)
glue("ll_few", float(held_out_ll_by_size[2]), display=False)
glue("ll_mid", float(held_out_ll_by_size[N_KERNEL_BASIS]), display=False)
glue("ll_many", float(held_out_ll_by_size[window_size]), display=False)
# The figure check's story, checked: held-out data choose the middle size, and one weight
# per lag is the worst kernel of the three.
assert best_basis_size == N_KERNEL_BASIS, held_out_ll_by_size
assert kernel_r_by_size[window_size] < min(kernel_r_by_size[2], kernel_r_by_size[N_KERNEL_BASIS]), kernel_r_by_size

# %% tags=["check"]
checks.function(
    "ex3_kernel_for",
    kernel_for,
    [(N_KERNEL_BASIS, train_sweeps), (window_size, train_sweeps)],
    rtol=1e-3,
    atol=1e-5,
    hints={
        "shape": "return the kernel on the lag grid (window_size values) and one number.",
        "wrong": "fit on train_ep only, and score on `held_out` only, skipping the NaN rows of the first window.",
    },
)
checks.choice(
    "ex3_best_size",
    best_size,
    [2, N_KERNEL_BASIS, window_size],
    hints={
        2: "compare the held-out log-likelihoods of the three sizes: which is highest?",
        window_size: "one weight per lag fits the training sweep best; pick by the held-out log-likelihood instead.",
    },
)
# %% [markdown]
# **Figure check.** The held-out log-likelihood per bin, which needs no truth, is highest
# for {glue:text}`best_basis_size` basis functions ({glue:text}`ll_mid:.4f`, against
# {glue:text}`ll_few:.4f` for two and {glue:text}`ll_many:.4f` for one weight per lag). One
# weight per lag follows the noise of a single sweep and wiggles: its kernel is the furthest
# from the truth (correlation {glue:text}`kernel_r_many:.3f`, against
# {glue:text}`kernel_r_few:.3f` for two basis functions and {glue:text}`kernel_r_mid:.3f` for
# {glue:text}`n_kernel_basis`). Two basis functions cannot bend freely, so the model pays in predictions
# even where the shape looks close. Choosing model size by held-out data is the idea
# chapter 2 turns into cross-validation.
#
# ```{glue:figure} exercise3_figure
# :name: fig-glm-exercise-3
#
# Expected result of exercise 3: kernels and held-out log-likelihood by basis size.
# ```
#
# ## Checks
#
# The chapter's scientific claims, asserted against the simulation's ground truth. They run
# at every scale and fail the book build if the science breaks. They never read an
# exercise's answer.

# %%
speed_tolerance = 0.25 * speed_weight_true  # a generous band that even the smoke scale meets
assert abs(speed_weight_fit - speed_weight_true) < speed_tolerance, (
    speed_weight_fit,
    speed_weight_true,
)
assert scores[0, "position only"]["ll"] < scores[0, "position + speed"]["ll"], scores
assert position_range_ratio < 0.3, position_range_ratio
# Neuron 1 has no speed effect: its weight lies within 3 standard errors of zero (a z-test
# from the Fisher information; a true null fails it 0.3 % of the time).
assert abs(speed_weight_1) < 3 * speed_se_1, (speed_weight_1, speed_se_1)
# Each pair of runs (the unit of the split) holds one run in each direction.
starts = np.array([position.restrict(runs[k : k + 1]).values[0] for k in range(len(runs))])
outbound = starts < track_centre
paired = run_pair < run_pair.max() if len(runs) % 2 else np.ones(len(runs), bool)
assert np.all(np.bincount(run_pair[paired], weights=outbound[paired]) == 1), "one run each way"
assert kernel_r > (0.7 if config.get_scale() == "smoke" else 0.85), kernel_r
assert ols_at_rest < 0, "the text says linear regression predicts a negative rate at rest"
assert position_curve_r > 0.8 and speed_curve_r > 0.8, (position_curve_r, speed_curve_r)
assert tuple(kinds) == ("speed", "position", "both"), "the text names neurons 0, 1, 2 by kind"
assert curve_error[at_ends].max() > curve_error[~at_ends].max(), "least sure at the track's ends"
glm_rest = float(np.exp(speed_only.intercept_[0])) / BIN_S
true_rest = float(np.exp(truth.neurons[0].baseline_log_rate))
assert abs(glm_rest - true_rest) < 0.25 * true_rest, (glm_rest, true_rest)
print("All checks passed.")

# %% [markdown]
# ## Summary
#
# - A tuning curve averages over every variable it does not show; when speed and position are
#   correlated, a speed cell looks like a place cell.
# - A Poisson GLM models the log-rate as a weighted sum of features. Its log-likelihood is
#   concave, so fits are reliable, and it respects what counts are: non-negative, with a
#   variance that grows with the mean.
# - Fitted with both variables, the GLM gives the speed neuron a speed weight of
#   {glue:text}`ch1_speed_weight_fit:.4f` (truth {glue:text}`ch1_speed_weight_true:.4f`) and
#   flat position weights; held-out runs, in both directions, confirm the richer model.
# - Bases turn variables, and the recent past of a signal, into a few smooth features.
# - Real neurons mix many variables at once {cite}`hardcastle2017multiplexed`: the GLM's
#   joint fit is what lets you say which ones matter.
#
# **What's next.** With many features (a population's coupling filters) a GLM starts to fit
# the noise. Chapter 2 shows that overfitting and cures it with ridge, lasso and group lasso,
# the strength chosen by cross-validation.
#
# ## Going further
#
# Optional, for the curious: how to make sure a fit converged, and the same question asked
# of a real recording.
#
# ### Did the fit converge? Ask an independent solver
#
# A concave log-likelihood has one maximum, but a solver can still stop before it reaches
# it: it stops when a tolerance is met, and a tolerance is not the maximum. The chapter uses
# `solver_name="BFGS"`, a quasi-Newton method that keeps a full estimate of the curvature:
# the right tool for a few dozen weights (its limited-memory cousin `"LBFGS"` is built for
# thousands). A fit that stopped early looks like a worse model, so check once: fit the
# same design with a solver that shares no code with nemos, here scikit-learn's Newton
# solver without a penalty, and compare the weights and the training log-likelihoods.

# %%
newton_gap, newton_weight_gap, newton_se_gap = [], [], []
X_both = designs["position + speed"][is_train]
for neuron in range(len(kinds)):
    y_train = Y[is_train, neuron]
    newton = PoissonRegressor(alpha=0.0, solver="newton-cholesky", tol=1e-12, max_iter=500)
    newton.fit(X_both, y_train)
    nemos_model = models["position + speed"]
    ll_nemos = metrics.poisson_log_likelihood(
        y_train, np.exp(nemos_model.intercept_[neuron] + X_both @ np.asarray(nemos_model.coef_)[:, neuron])
    )
    ll_newton = metrics.poisson_log_likelihood(y_train, newton.predict(X_both))
    newton_gap.append(ll_newton - ll_nemos)
    # Weights compared in units of their standard errors (Fisher information, as in section 4).
    theta = np.concatenate([[nemos_model.intercept_[neuron]], np.asarray(nemos_model.coef_)[:, neuron]])
    X_ones = np.column_stack([np.ones(len(X_both)), X_both])
    fisher = X_ones.T @ (np.exp(X_ones @ theta)[:, None] * X_ones)
    standard_errors = np.sqrt(np.diag(np.linalg.inv(fisher)))
    difference = np.concatenate([[newton.intercept_], newton.coef_]) - theta
    newton_weight_gap.append(np.abs(difference).max())
    newton_se_gap.append(np.abs(difference / standard_errors).max())
newton_gap, newton_weight_gap = np.array(newton_gap), np.array(newton_weight_gap)
newton_se_gap = np.array(newton_se_gap)
model_gap_0 = scores[0, "position + speed"]["ll"] - scores[0, "position only"]["ll"]
glue("ch1_newton_gap_max", float(np.abs(newton_gap).max()), display=False)
glue("newton_weight_gap_max", float(newton_weight_gap.max()), display=False)
glue("newton_se_gap_max", float(newton_se_gap.max()), display=False)
glue("model_gap_0", float(model_gap_0), display=False)
dict(log_likelihood_gap=newton_gap, weight_gap=newton_weight_gap, in_standard_errors=newton_se_gap)

# %% [markdown]
# The two solvers' training log-likelihoods differ by at most
# {glue:text}`ch1_newton_gap_max:.1e` nats per bin over the three neurons: both sit on the
# same maximum, far below the differences between models the chapter interprets (the
# held-out gain of adding speed for neuron 0, for one, is {glue:text}`model_gap_0:.4f` nats
# per bin). Their weights differ by up to {glue:text}`newton_weight_gap_max:.1e`: where
# the log-likelihood is nearly flat (a rarely visited position bin, weights that trade off)
# two solvers stop at slightly different points of the same plateau. Measured in standard
# errors, the statistical uncertainty of each weight, the largest difference is
# {glue:text}`newton_se_gap_max:.2f`: no conclusion drawn from these weights could change.
# Do this check once per kind of fit, and whenever a result surprises you.
#
# ### On real data
#
# The same analysis runs on the recording of {cite}`grosmark2016diversity` with one argument
# changed: for the most active pyramidal cell, position only against position and speed,
# fitted on alternate tenths of the session and scored on the others (held-out data as in
# section 4, though tenths of a session do not balance the running directions as pairs of
# runs do; if speed matters for this cell, the second score is higher). The file is downloaded once and
# verified by its checksum; without network the cell says so in one line and the chapter
# goes on (pre-download with `python -m course_utils fetch place_cells`).

# %%
try:
    real = load_place_cells(source="real")
except DataFetchError as error:
    real = None
    print(f"Real data skipped: {error.summary}")

if real is not None:
    pyramidal = real.units.getby_category("cell_type")["pE"]
    pyramidal = pyramidal.getby_threshold("rate", 0.3)
    real_position = real.position.restrict(real.epochs)
    real_speed = running_speed(real_position, real.epochs)
    real_counts = pyramidal.count(BIN_S, ep=real.epochs)
    real_pos = real_position.interpolate(real_counts, ep=real.epochs).values
    real_spd = real_speed.interpolate(real_counts, ep=real.epochs).values
    edges = np.linspace(np.nanmin(real_pos), np.nanmax(real_pos), N_POSITION_BINS + 1)
    real_one_hot = np.eye(N_POSITION_BINS)[np.clip(np.digitize(real_pos, edges) - 1, 0, N_POSITION_BINS - 1)][:, 1:]
    neuron = int(np.argmax(pyramidal.rate.values))
    y_real = real_counts[:, neuron].values.astype(float)
    # Fit on alternate tenths of the session, score on the others; skip untracked bins.
    tracked = np.isfinite(real_pos) & np.isfinite(real_spd)
    tenth = np.arange(y_real.size) * 10 // y_real.size
    fit_bins, score_bins = tracked & (tenth % 2 == 0), tracked & (tenth % 2 == 1)
    for name, X in {
        "position only": real_one_hot,
        "position + speed": np.column_stack([real_one_hot, real_spd]),
    }.items():
        model = nmo.glm.GLM(solver_name="BFGS").fit(X[fit_bins], y_real[fit_bins])
        rate = np.asarray(model.predict(X[score_bins]))
        r2 = metrics.pseudo_r2(y_real[score_bins], rate, null_rate=y_real[fit_bins].mean())
        print(f"{name:>17}: held-out pseudo-R² {r2:.3f}")

# %% [markdown]
# ### Checks of the Going further part

# %%
assert np.abs(newton_gap).max() < 1e-6, ("nemos's BFGS fits reach the maximum", newton_gap)
# Solver differences in the weights are under a tenth of their standard errors.
assert newton_se_gap.max() < 0.1, ("weights agree within their uncertainty", newton_se_gap)
print("Going further checks passed.")

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
