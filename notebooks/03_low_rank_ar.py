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
# # 3 · Low-rank autoregressive models of photostimulation responses
#
# Two-photon holographic optogenetics stimulates a chosen group of about ten neurons while
# two-photon imaging records the whole population. Stimulate a group, and which other neurons
# respond? A linear **autoregressive** (AR) model answers with a coupling matrix per time lag:
# for a hundred neurons that is tens of thousands of numbers, to be learned from a few hundred
# stimulation trials. Least squares fits them all, and fits the noise with them. Wagenmaker
# et al. {cite}`wagenmaker2024active` constrain each matrix to be **diagonal plus low rank**.
# This chapter tunes that model (penalty, rank, order, epochs, learning rate, initialization)
# by cross-validation on whole stimulation groups, batches the search into one tensor
# computation, and shows why the structured model predicts the responses to stimulation
# patterns it has never seen far better than the full model.
#
# **Learning goals.** After this chapter you can
#
# - write down an AR model with a stimulation input, count its parameters, and say why an
#   unregularized full-rank fit overfits when trials are few;
# - call a neuron responsive with the "6 × baseline noise" rule of photostimulation studies;
# - fit closed-form least-squares and ridge AR models, and a diagonal-plus-low-rank AR model
#   with Adam and an L2 penalty, initialized from an SVD or at random;
# - cross-validate on folds of **whole stimulation groups** over the penalty λ, the rank r,
#   the order k, the number of epochs, the learning rate and the initialization, training a
#   whole grid of models as one batched tensor computation;
# - compare models by held-out error and by ROC curves for predicting which neurons respond;
# - choose the next stimulation patterns from a fitted model's uncertainty (active learning)
#   and test the choice against random patterns.
#
# **Prerequisites.** Linear regression and ridge; cross-validation (chapter 2); PyTorch
# tensors, autograd and the Adam optimizer; the singular value decomposition.
#
# **Time to learn.** About 85 minutes, 25 more for the exercises.
#
# **Run time** (measured by `benchmarks/chapters.py`, see
# {doc}`../book/setup`):
# <!-- timings:low_rank_ar -->
# smoke 26 s (0.7 GB) · default 57 s (1.0 GB) · full: not measured yet · on 2 CPU cores, peak memory in brackets
# <!-- /timings -->
#
# **Notebooks to download** (from the book):
# <a href="../_static/variants/attendee/03_low_rank_ar.ipynb" download>attendee</a>
# (exercises open, expected figures included) ·
# <a href="../_static/variants/presenter/03_low_rank_ar.ipynb" download>presenter</a>
# (all code, headings only).

# %% [markdown]
# ## Setup
#
# `course_utils` reports the run scale (`COURSE_SCALE`) and the torch device: every model
# below is created on `training.get_device()`, so the same notebook runs at the `full` scale
# on a GPU. All scale-dependent sizes sit in the cell tagged `parameters`.

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
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from course_utils.glue import glue
from sklearn.metrics import roc_auc_score, roc_curve

from course_utils import config, plotting, training
from course_utils.data import load_photostim
from course_utils.models import low_rank_ar as lrar
from course_utils.models import stim_design
from course_utils.simulate.photostim import simulate_trials
from course_utils.workshop import report

plotting.use_course_style()
report(packages=("torch", "numpy", "scikit-learn"), device=True)
DEVICE = training.get_device()

# %% tags=["parameters"]
SIZES = config.sizes("low_rank_ar")
N_NEURONS = SIZES["n_neurons"]  # imaged neurons d
RANK, ORDER = SIZES["rank"], SIZES["order"]  # the planted rank r and order k
N_GROUPS, N_HELDOUT_GROUPS = SIZES["n_groups"], SIZES["n_heldout_groups"]  # stimulation groups
GROUP_SIZE, N_REPEATS = SIZES["group_size"], SIZES["n_repeats"]  # neurons per group, trials per group
ORDERS, RANKS = SIZES["orders"], SIZES["ranks"]  # the k and r that cross-validation tries
LAMBDAS = SIZES["lambdas"]  # L2 penalties of the low-rank grid
LEARNING_RATES = SIZES["learning_rates"]  # Adam learning rates tried
N_FOLDS = SIZES["n_folds"]  # cross-validation folds (of whole groups)
STEPS, EVAL_EVERY = SIZES["steps"], SIZES["eval_every"]  # Adam steps; validate every few
TIMING_STEPS = SIZES["timing_steps"]  # steps timed for the batched-versus-loop comparison
RIDGE_LAMBDAS = np.logspace(-3, 1, 7)  # penalties of the closed-form ridge fits
SEED = 2026
rng = config.seed_everything(SEED)
SIZES

# %% [markdown]
# ## 1. A photostimulation experiment where the answer is known
#
# The recordings of {cite}`wagenmaker2024active` (mouse motor cortex) are not public, so this
# chapter runs on a simulation of the same experiment, and section 11 shows how to load your
# own recording instead. `load_photostim()` simulates $d$ neurons whose activity $x_t$ follows
# a stable AR model of order $k$ with a stimulation input $u_t$,
#
# $$
# x_{t+1} = v + \sum_{s=0}^{k-1} \left( A_s x_{t-s} + B_s u_{t-s} \right) + \varepsilon_t,
# \qquad A_s = D_{A_s} + U_{A_s} V_{A_s}^\top, \quad B_s = D_{B_s} + U_{B_s} V_{B_s}^\top,
# $$
#
# where each $D$ is diagonal (a neuron's own memory, and its direct response to being
# stimulated) and each $U V^\top$ has rank $r$ (a few shared network modes). Groups of
# neurons are stimulated together for a few frames at the start of each trial, each group
# many times in a random order, and the recorded activity carries observation noise on top
# of the noise $\varepsilon_t$ of the dynamics. A few groups are **held out**: no model sees
# their trials until the end, when we ask each model to predict the responses to these new
# patterns.

# %%
session = load_photostim(
    source="simulated", seed=SEED, n_neurons=N_NEURONS, rank=RANK, order=ORDER,
    n_groups=N_GROUPS, n_heldout_groups=N_HELDOUT_GROUPS, group_size=GROUP_SIZE,
    n_repeats=N_REPEATS,
)
truth = session.truth.dynamics  # the planted model (simulated data only)
activity, stimulation = session.activity, session.stimulation
n_frames, n_neurons = activity.shape
n_patterns = session.patterns.shape[0]
glue("n_neurons", int(n_neurons), display=False)
glue("n_frames", int(n_frames), display=False)
glue("n_patterns", int(n_patterns), display=False)
glue("n_heldout", int(session.heldout_patterns.size), display=False)
glue("n_trials", int(session.trial_onsets.size), display=False)
glue("group_size", int(GROUP_SIZE), display=False)
glue("stim_frames", int(session.stim_frames), display=False)
glue("trial_frames", int(session.trial_frames), display=False)
glue("n_repeats", int(N_REPEATS), display=False)
glue("true_rank", int(RANK), display=False)
glue("true_order", int(ORDER), display=False)

first = session.trial_onsets[0] - 10
window = slice(first, first + 8 * session.trial_frames)
shown_neurons = np.argsort(-session.patterns[session.trial_pattern[:8]].sum(0), kind="stable")[:40]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw=dict(width_ratios=[1.6, 1]))
image = axes[0].imshow(activity[window][:, shown_neurons].T, aspect="auto", cmap="magma",
                       extent=(window.start, window.stop, len(shown_neurons), 0))
stim_t, stim_i = np.nonzero(stimulation[window][:, shown_neurons])
axes[0].plot(stim_t + window.start + 0.5, stim_i + 0.5, "s", ms=2.5, mfc="none",
             mec=plotting.COLORS["test"], label="stimulated")
fig.colorbar(image, ax=axes[0], label="activity (a.u.)")
axes[0].set(xlabel="frame", ylabel="neuron (40 shown)", title="Eight trials of the experiment")
axes[0].legend(loc="upper right", fontsize=8, frameon=True)
pattern = 0
onsets = session.trial_onsets[session.trial_pattern == pattern]
lags = np.arange(-4, session.trial_frames)
average = np.mean([activity[o + lags] for o in onsets], axis=0)  # (lags, neurons)
targets = np.flatnonzero(session.patterns[pattern])
others = np.setdiff1d(np.arange(n_neurons), targets)
axes[1].plot(lags, average[:, targets], color=plotting.COLORS["test"], lw=1)
axes[1].plot(lags, average[:, others], color=plotting.COLORS["data"], lw=0.5, alpha=0.5)
axes[1].axvspan(0, session.stim_frames - 1, color=plotting.COLORS["test"], alpha=0.15)
axes[1].plot([], [], color=plotting.COLORS["test"], label="stimulated neurons")
axes[1].plot([], [], color=plotting.COLORS["data"], label="other neurons")
axes[1].set(xlabel="frames from stimulation onset", ylabel="trial-averaged activity (a.u.)",
            title=f"Responses to group {pattern}")
axes[1].legend(fontsize=8)
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# The session has {glue:text}`n_neurons` neurons and {glue:text}`n_frames` frames:
# {glue:text}`n_trials` trials in which one of {glue:text}`n_patterns` groups of
# {glue:text}`group_size` neurons is stimulated for {glue:text}`stim_frames` frames, one trial
# every {glue:text}`trial_frames` frames, each group {glue:text}`n_repeats` times. The
# stimulated neurons (panel B, orange) jump; the others move a little, some up, some down:
# the network's indirect response, what the off-diagonal couplings describe.
#
# ## 2. Which neurons respond? The 6 × noise rule
#
# Photostimulation studies call a neuron **responsive** to a group when its trial-averaged
# response exceeds a multiple of its baseline noise; the seed project used 6 times. Here the
# response of a trial is the mean activity over the frames after the onset minus the mean
# over the frames just before it, and a neuron's baseline noise is the standard deviation,
# over all trials, of that pre-stimulus mean.

# %%
BASELINE_FRAMES = 4  # frames before each onset that define its baseline
RESPONSE_WINDOW = np.arange(1, session.stim_frames + 2)  # stimulation shows from the next frame
THRESHOLD = 6.0  # times the baseline noise


def trial_windows(activity: np.ndarray, onsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean activity before each onset and in its response window, each (n_trials, d)."""
    baseline = np.stack([activity[o - BASELINE_FRAMES : o].mean(axis=0) for o in onsets])
    response = np.stack([activity[o + RESPONSE_WINDOW].mean(axis=0) for o in onsets])
    return baseline, response


usable = (session.trial_onsets >= BASELINE_FRAMES) & (session.trial_onsets + RESPONSE_WINDOW[-1] < n_frames)
onsets, trial_pattern = session.trial_onsets[usable], session.trial_pattern[usable]
baseline, response = trial_windows(activity, onsets)
baseline_noise = baseline.std(axis=0)  # (d,)
signal = np.stack([(response - baseline)[trial_pattern == p].mean(axis=0) for p in range(n_patterns)])
responds = signal > THRESHOLD * baseline_noise  # (patterns, neurons)

stimulated = session.patterns > 0
true_signal = truth.response(session.patterns, RESPONSE_WINDOW[-1] + 1, session.stim_frames)
true_signal = true_signal[:, RESPONSE_WINDOW].mean(axis=1)  # noiseless response, same window
glue("detected_direct", 100 * float(responds[stimulated].mean()), display=False)
glue("n_indirect_responders", int(responds[~stimulated].sum()), display=False)
glue("n_responders", int(responds.sum()), display=False)

fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
neuron = int(targets[0])
axes[0].plot(lags, average[:, neuron] - average[:BASELINE_FRAMES, neuron].mean(), "o-", ms=3,
             color=plotting.COLORS["test"], label=f"neuron {neuron} (stimulated)")
indirect = int(others[np.argmax(signal[pattern, others])])
axes[0].plot(lags, average[:, indirect] - average[:BASELINE_FRAMES, indirect].mean(), "o-", ms=3,
             color=plotting.COLORS["model"], label=f"neuron {indirect} (not stimulated)")
axes[0].axhline(THRESHOLD * baseline_noise[neuron], color=plotting.COLORS["test"], ls="--", lw=1,
                label=f"{THRESHOLD:g} × baseline noise")
axes[0].axhline(THRESHOLD * baseline_noise[indirect], color=plotting.COLORS["model"], ls="--", lw=1)
axes[0].axvspan(RESPONSE_WINDOW[0], RESPONSE_WINDOW[-1], color="k", alpha=0.06, label="response window")
axes[0].set(xlabel="frames from stimulation onset", ylabel="activity minus baseline (a.u.)",
            title=f"Group {pattern}: trial averages")
axes[0].legend(fontsize=8)
ratio = signal / baseline_noise
axes[1].scatter(true_signal[~stimulated], ratio[~stimulated], s=4, alpha=0.4,
                color=plotting.COLORS["data"], label="not stimulated")
axes[1].scatter(true_signal[stimulated], ratio[stimulated], s=6, alpha=0.7,
                color=plotting.COLORS["test"], label="stimulated")
axes[1].axhline(THRESHOLD, color="k", ls="--", lw=1, label=f"threshold ({THRESHOLD:g}×)")
axes[1].set(xlabel="true noiseless response (a.u.)", ylabel="measured signal / baseline noise",
            title="Every group × neuron pair")
axes[1].legend(fontsize=8)
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# The rule catches {glue:text}`detected_direct:.0f` % of the directly stimulated neurons and
# {glue:text}`n_indirect_responders` indirect responders, out of
# {glue:text}`n_responders` responsive pairs in all (panel B: the measured signal tracks the
# true response, and the threshold sits far above the noise around zero). These labels are
# what we will ask the models to predict for the held-out groups.
#
# ## 3. How many numbers does a full model need?
#
# With full $d \times d$ matrices $A_s$ and $B_s$, the model has $2kd^2 + d$ parameters; the
# diagonal-plus-low-rank model has $2k(d + 2dr) + d$.

# %%
n_full = 2 * ORDER * n_neurons**2 + n_neurons
n_low_rank = 2 * ORDER * (n_neurons + 2 * n_neurons * RANK) + n_neurons
n_train_values = int(np.isin(trial_pattern, session.heldout_patterns, invert=True).sum()) \
    * session.trial_frames * n_neurons
glue("n_full", int(n_full), display=False)
glue("n_low_rank", int(n_low_rank), display=False)
glue("n_train_values", int(n_train_values), display=False)
glue("n_stim_directions", int(n_patterns - session.heldout_patterns.size), display=False)

# %% [markdown]
# At the planted order and rank the full model has {glue:text}`n_full` parameters, the
# low-rank one {glue:text}`n_low_rank`, and the training trials hold about
# {glue:text}`n_train_values` numbers. There is a second, sharper problem. The training
# trials stimulate only {glue:text}`n_stim_directions` distinct patterns, so the stimulation
# part of the data spans at most that many directions of the $d$-dimensional input space:
# a full $B_s$ is determined only on that subspace, and an unregularized fit sets the rest to
# zero (the minimum-norm solution). A new group is a new direction, and the full model
# predicts only its projection onto the patterns it has seen. The diagonal of $B_s$, by
# contrast, is one number per neuron, learned whenever that neuron was stimulated in *any*
# group: it generalizes to every new combination.
#
# ## 4. Held-out groups and folds of whole groups
#
# Every model predicts frame $t+1$ from frames $t, \dots, t-k+1$. A row of the data is one
# such prediction, and it belongs to the trial of its target frame. The held-out groups'
# rows are the **test set**. The training groups are split into folds of whole groups:
# rows from the same group are alike (same stimulation), so splitting rows at random would
# let a model validate on the very patterns it trained on (chapter 2 makes the same point
# for time series).

# %%
K_MAX = max(ORDERS)
data = lrar.lag_data(activity, stimulation, K_MAX, device=DEVICE)  # rows for every order tried
trial_of_row = np.searchsorted(session.trial_onsets, data.frame.cpu().numpy(), side="right") - 1
pattern_of_row = np.where(trial_of_row >= 0, session.trial_pattern[np.clip(trial_of_row, 0, None)], -1)
is_test = np.isin(pattern_of_row, session.heldout_patterns)
is_train = (pattern_of_row >= 0) & ~is_test
train_patterns = np.unique(pattern_of_row[is_train])
fold_of_pattern = np.full(n_patterns, -1)
fold_of_pattern[rng.permutation(train_patterns)] = np.arange(train_patterns.size) % N_FOLDS
fold_of_row = np.where(is_train, fold_of_pattern[pattern_of_row], -1)
fit_rows = torch.as_tensor(np.stack([is_train & (fold_of_row != f) for f in range(N_FOLDS)]), device=DEVICE)
val_rows = torch.as_tensor(np.stack([fold_of_row == f for f in range(N_FOLDS)]), device=DEVICE)
train_data = data.rows(torch.as_tensor(is_train, device=DEVICE))
test_data = data.rows(torch.as_tensor(is_test, device=DEVICE))
glue("n_train_rows", len(train_data), display=False)
glue("n_test_rows", len(test_data), display=False)
glue("n_folds", int(N_FOLDS), display=False)


def fold_mse(weights: lrar.ARWeights, data: lrar.LaggedData, rows: torch.Tensor) -> np.ndarray:
    """Validation MSE of fold-batched weights (n_folds, n_models, ...), shape (n_folds, n_models)."""
    return np.stack([lrar.mse(weights.select(f).predict(data.rows(rows[f])), data.rows(rows[f]).target).cpu().numpy()
                     for f in range(rows.shape[0])])


def held_out_mse(prediction: torch.Tensor) -> float:
    """MSE of a prediction of the test rows."""
    return float(lrar.mse(prediction.detach(), test_data.target))

# %% [markdown]
# {glue:text}`n_train_rows` training rows and {glue:text}`n_test_rows` test rows, with the
# training groups in {glue:text}`n_folds` folds.
#
# ## 5. The full-rank baselines: least squares and ridge
#
# The baseline is the unregularized least-squares AR model, in closed form (with the
# pseudo-inverse, `torch.linalg.pinv`, since the design is rank deficient). We fit it for
# each order $k$ and look at the error on the training rows and on the held-out groups.

# %%
least_squares = {k: lrar.least_squares_ar(train_data.truncate(k)) for k in ORDERS}
ls_train = {k: float(lrar.mse(w.predict(train_data.truncate(k)), train_data.target)) for k, w in least_squares.items()}
ls_test = {k: held_out_mse(w.predict(test_data.truncate(k))) for k, w in least_squares.items()}
true_weights = lrar.ARWeights(*(torch.as_tensor(a, dtype=torch.float32, device=DEVICE)
                                for a in (truth.A, truth.B, truth.bias)))
truth_test = held_out_mse(true_weights.predict(test_data.truncate(ORDER)))

# Ridge for every order, batched over folds and penalties: one linear solve per order.
ridge_cv = {}
for k in ORDERS:
    fits = lrar.ridge_ar(data.truncate(k), RIDGE_LAMBDAS, fit_rows)
    ridge_cv[k] = fold_mse(fits, data.truncate(k), val_rows).mean(axis=0)  # (lambdas,)
best_ridge_order = min(ORDERS, key=lambda k: ridge_cv[k].min())
glue("ls_train", ls_train[ORDER], display=False)
glue("ls_test", ls_test[ORDER], display=False)
glue("truth_test", truth_test, display=False)
glue("best_ridge_order", int(best_ridge_order), display=False)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
axes[0].plot(ORDERS, [ls_train[k] for k in ORDERS], "o-", color=plotting.COLORS["train"], label="training rows")
axes[0].plot(ORDERS, [ls_test[k] for k in ORDERS], "o-", color=plotting.COLORS["test"], label="held-out groups")
axes[0].axhline(truth_test, color=plotting.COLORS["truth"], ls="--", lw=1, label="true model, held out")
axes[0].set(xlabel="order k (frames of history)", ylabel="MSE (a.u.²)", xticks=ORDERS,
            title="Least squares overfits")
axes[0].legend(fontsize=8)
for k in ORDERS:
    axes[1].semilogx(RIDGE_LAMBDAS, ridge_cv[k], "o-", ms=3, label=f"k = {k}")
axes[1].set(xlabel="ridge penalty λ", ylabel="cross-validated MSE (a.u.²)", title="Ridge, by order")
axes[1].legend(fontsize=8)
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# At the planted order the least-squares fit reaches an MSE of {glue:text}`ls_train:.3f` on
# its training rows and {glue:text}`ls_test:.3f` on the held-out groups, where the true
# model scores {glue:text}`truth_test:.3f` (the noise floor). Ridge regression (chapter 2)
# shrinks the weights and helps on the validation folds, but
# cross-validation of ridge prefers $k =$ {glue:text}`best_ridge_order`: a full model cannot
# afford the parameters of more lags,
# even where the data have longer memory. And no penalty on a full $B_s$ can invent the
# responses to directions it never saw.
#
# ## 6. The low-rank model, many at once
#
# `lrar.LowRankAR` stores a **batch of models** in each parameter tensor, with a leading
# model dimension: `U_A` has shape `(n_models, k, d, r_max)`. Model $m$ uses only its first
# $r_m$ factor columns and first $k_m$ lags (the others are masked to zero), so models of
# different ranks and orders share one tensor. Each model's loss is its mean squared error
# (summed over neurons) plus $\lambda_m$ times its squared weights; summing the losses over
# models gives every model the gradient of its own loss, and Adam updates each weight from
# its own gradients only, so `lrar.train_batched` trains a whole grid with one forward and
# one backward pass per step.
#
# Two more tricks keep it cheap. Models are grouped by fold, each group seeing its fold's
# training rows. And the squared error of a linear predictor depends on the rows only
# through their second moments, so `lrar.compress` replaces each fold's rows by the rows
# $S V^\top$, $U^\top Y$ of an SVD of the design matrix: at most $2kd$ rows, whatever the
# length of the recording, with exactly the same losses and gradients.
#
# ### 6a. The order k
#
# We first let the data choose the order, with flexible models (the largest rank of the
# grid, the middle penalty), initialized from the SVD of each fold's ridge fit. One Adam
# step uses all training rows: a step is an epoch.

# %%
train_c = lrar.compress(data, fit_rows)  # folds compressed to their second moments
val_c = lrar.compress(data, val_rows, center_rows=fit_rows)
ridge_start = lrar.ridge_ar(data, [RIDGE_LAMBDAS[int(np.argmin(ridge_cv[K_MAX]))]], fit_rows)


def fold_start(weights: lrar.ARWeights, per_fold: int) -> lrar.ARWeights:
    """Repeat each fold's weights (folds, 1, ...) for the per_fold models of that fold."""
    return lrar.ARWeights(*(w[:, 0].repeat_interleave(per_fold, dim=0) for w in (weights.A, weights.B, weights.bias)))


def cv_curves(history: lrar.BatchedHistory, n_configs: int) -> np.ndarray:
    """Validation MSE averaged over folds, shape (n_checkpoints, n_configs)."""
    return history.val_mse.reshape(len(history.val_steps), N_FOLDS, n_configs).mean(axis=1)


order_model = lrar.LowRankAR.from_weights(fold_start(ridge_start, len(ORDERS)),
                                          ranks=[max(RANKS)] * (N_FOLDS * len(ORDERS)),
                                          orders=list(ORDERS) * N_FOLDS)
order_history = lrar.train_batched(order_model, train_c, val_c, lambdas=LAMBDAS[len(LAMBDAS) // 2],
                                   lr=LEARNING_RATES[1], steps=STEPS, eval_every=EVAL_EVERY)
order_cv = cv_curves(order_history, len(ORDERS)).min(axis=0)  # best epoch of each order
best_order = int(ORDERS[int(np.argmin(order_cv))])
glue("best_order", best_order, display=False)

# %% [markdown]
# Cross-validation picks $k =$ {glue:text}`best_order` (the planted order is
# {glue:text}`true_order`; figure in 6b). From here on every model, including the baselines in
# the final comparison, uses this order.
#
# ### 6b. Penalty × rank, as one batched computation
#
# Now the grid that matters most: every λ with every rank, on every fold, trained together.
# The validation error is recorded every few steps, so the number of epochs is tuned on the
# same run (early stopping, read off the curves).

# %%
data_k = data.truncate(best_order)
train_k, val_k = lrar.compress(data_k, fit_rows), lrar.compress(data_k, val_rows, center_rows=fit_rows)
ridge_k = lrar.ridge_ar(data_k, [RIDGE_LAMBDAS[int(np.argmin(ridge_cv[best_order]))]], fit_rows)
grid = [(lam, rank) for lam in LAMBDAS for rank in RANKS]  # one fold's models, in order


def grid_model(start: lrar.ARWeights) -> lrar.LowRankAR:
    """The λ × rank grid of every fold, initialized from each fold's ridge fit."""
    return lrar.LowRankAR.from_weights(fold_start(start, len(grid)), ranks=[r for _, r in grid] * N_FOLDS)


grid_lambdas = [lam for lam, _ in grid] * N_FOLDS
grid_net = grid_model(ridge_k)
grid_history = lrar.train_batched(grid_net, train_k, val_k, lambdas=grid_lambdas, lr=LEARNING_RATES[1],
                                  steps=STEPS, eval_every=EVAL_EVERY)
grid_curves = cv_curves(grid_history, len(grid))  # (checkpoints, configs)
grid_cv = grid_curves.min(axis=0).reshape(len(LAMBDAS), len(RANKS))
best_lam_index, best_rank_index = np.unravel_index(np.argmin(grid_cv), grid_cv.shape)
best_lambda, best_rank = float(LAMBDAS[best_lam_index]), int(RANKS[best_rank_index])
best_config = int(np.argmin(grid_curves.min(axis=0)))
best_epochs = int(grid_history.val_steps[np.argmin(grid_curves[:, best_config])])
glue("best_rank", best_rank, display=False)
glue("best_lambda", best_lambda, display=False)
glue("best_epochs", best_epochs, display=False)
glue("n_grid_models", int(grid_net.n_models), display=False)
glue("grid_seconds", float(grid_history.wall_time_s), display=False)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
axes[0].plot(ORDERS, order_cv, "o-", color=plotting.COLORS["model"])
axes[0].axvline(ORDER, color=plotting.COLORS["truth"], ls="--", lw=1, label="planted k")
axes[0].set(xlabel="order k", ylabel="cross-validated MSE (a.u.²)", xticks=ORDERS, title="Order")
axes[0].legend(fontsize=8)
for i, lam in enumerate(LAMBDAS):
    axes[1].plot(RANKS, grid_cv[i], "o-", ms=4, label=f"λ = {lam:g}")
axes[1].axvline(RANK, color=plotting.COLORS["truth"], ls="--", lw=1, label="planted r")
axes[1].set(xlabel="rank r", ylabel="cross-validated MSE (a.u.²)", xticks=RANKS, title="Rank, by penalty")
axes[1].legend(fontsize=8)
for j, rank in enumerate(RANKS):
    axes[2].semilogx(LAMBDAS, grid_cv[:, j], "o-", ms=4, label=f"r = {rank}",
                     lw=2.5 if rank == best_rank else 1)
axes[2].set(xlabel="L2 penalty λ", ylabel="cross-validated MSE (a.u.²)", title="Penalty, by rank")
axes[2].legend(fontsize=7, ncol=2)
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# The {glue:text}`n_grid_models` models trained together in {glue:text}`grid_seconds:.1f` s.
# Cross-validation picks rank {glue:text}`best_rank` (the planted rank is
# {glue:text}`true_rank`), λ = {glue:text}`best_lambda:g` and {glue:text}`best_epochs` epochs.
# Too low a rank misses network modes that are really there; too high a rank spends
# parameters on the noise. The penalty and the rank both limit what the model can fit, so
# they are tuned together. Each point is the best epoch of its model: the curves are the
# result of tuning the epochs too.
#
# ### How much does batching buy?
#
# The same models, trained in a Python loop one after the other, for a few steps each:

# %%
def loop_over_models(steps: int) -> float:
    """Seconds to train every grid model separately (one fold's data each) for `steps` steps."""
    per_fold = len(grid)
    singles = [lrar.LowRankAR.from_weights(ridge_k.select(m // per_fold), ranks=[grid[m % per_fold][1]])
               for m in range(N_FOLDS * per_fold)]
    start = time.perf_counter()
    for m, single in enumerate(singles):
        lrar.train_batched(single, train_k.group(m // per_fold), None, lambdas=grid_lambdas[m],
                           lr=LEARNING_RATES[1], steps=steps)
    return time.perf_counter() - start


def batched_grid(steps: int) -> float:
    """Seconds to train the whole grid as one batch for `steps` steps."""
    model = grid_model(ridge_k)
    start = time.perf_counter()
    lrar.train_batched(model, train_k, None, lambdas=grid_lambdas, lr=LEARNING_RATES[1], steps=steps)
    return time.perf_counter() - start


loop_s, batched_s = loop_over_models(TIMING_STEPS), batched_grid(TIMING_STEPS)
glue("speedup", loop_s / batched_s, display=False)
glue("timing_steps", int(TIMING_STEPS), display=False)
glue("loop_ms_per_step", 1000 * loop_s / TIMING_STEPS, display=False)
glue("batched_ms_per_step", 1000 * batched_s / TIMING_STEPS, display=False)

# %% [markdown]
# Over {glue:text}`timing_steps` steps, the loop took {glue:text}`loop_ms_per_step:.0f` ms
# per step and the batch {glue:text}`batched_ms_per_step:.0f` ms: a speed-up of
# {glue:text}`speedup:.1f` × on this machine, measured while this page was built. The batch
# replaces many small matrix products, each paying Python and dispatch overhead, by a few
# large ones; on a GPU the gap grows. `benchmarks/low_rank_ar.py` measures it more carefully
# (several repeats, the whole grid) and writes `benchmarks/results/low_rank_ar.json`.
#
# ### 6c. Learning rate and initialization
#
# At the chosen order, rank and penalty we now compare learning rates and two
# initializations: from the SVD of the fold's ridge fit (diagonals from its diagonals,
# factors from the top singular vectors of the rest), or random (small Gaussian factors,
# zero diagonals). Again one batch: every fold × learning rate × initialization.

# %%
lr_grid = [(rate, init) for rate in LEARNING_RATES for init in ("svd", "random")]
lr_net = lrar.LowRankAR.from_weights(fold_start(ridge_k, len(lr_grid)), ranks=[best_rank] * (N_FOLDS * len(lr_grid)))
random_start = lrar.LowRankAR(n_neurons, best_order, [best_rank] * lr_net.n_models, init_scale=0.05,
                              generator=torch.Generator().manual_seed(SEED)).to(DEVICE)
is_random = torch.tensor([init == "random" for _, init in lr_grid] * N_FOLDS, device=DEVICE)
with torch.no_grad():
    for name, values in lr_net.named_parameters():
        values[is_random] = getattr(random_start, name)[is_random]
lr_history = lrar.train_batched(lr_net, train_k, val_k, lambdas=best_lambda,
                                lr=[rate for rate, _ in lr_grid] * N_FOLDS, steps=STEPS, eval_every=EVAL_EVERY)
lr_curves = cv_curves(lr_history, len(lr_grid))
best_lr_config = int(np.argmin(lr_curves.min(axis=0)))
best_lr, best_init = lr_grid[best_lr_config]
final_epochs = int(lr_history.val_steps[np.argmin(lr_curves[:, best_lr_config])])
glue("epochs_note", "the last epoch of the budget: its validation error was still falling slowly"
     if final_epochs == STEPS else "where its validation error stopped falling", display=False)
glue("best_lr", float(best_lr), display=False)
glue("best_init", best_init, display=False)
glue("final_epochs", final_epochs, display=False)
glue("slow_lr", float(min(LEARNING_RATES)), display=False)

fig, ax = plt.subplots(figsize=(6.5, 3.6))
colors = plt.cm.viridis(np.linspace(0, 0.85, len(LEARNING_RATES)))
for c, (rate, init) in enumerate(lr_grid):
    ax.plot(lr_history.val_steps, lr_curves[:, c], color=colors[LEARNING_RATES.index(rate)],
            ls="-" if init == "svd" else ":", label=f"lr {rate:g}, {init}")
ax.set(xlabel="epoch (Adam step)", ylabel="cross-validated MSE (a.u.²)",
       title=f"Rank {best_rank}, λ = {best_lambda:g}: validation curves",
       ylim=(lr_curves.min() - 0.05 * np.ptp(lr_curves[-1]) - 0.02, np.quantile(lr_curves, 0.9)))
ax.legend(fontsize=8, ncol=2)
plt.show()

# %% [markdown]
# The SVD start begins near a good solution, where a random start spends its first epochs
# finding one; with the smallest learning rate ({glue:text}`slow_lr:g`) the models have not
# converged when the epochs run out. The best combination is learning rate
# {glue:text}`best_lr:g` with the {glue:text}`best_init` initialization, stopped after
# {glue:text}`final_epochs` epochs, {glue:text}`epochs_note`. (A full grid over all six
# knobs would multiply their sizes; searching the knobs that interact, λ, rank and epochs,
# jointly and the others one at a time is a common compromise.)
#
# ## 7. The held-out comparison
#
# Each model is refitted on all training groups with its tuned settings and scored on the
# held-out groups: least squares (the baseline), ridge (λ by cross-validation), a full-rank
# model trained by gradient descent (Adam from zero with the ridge penalty, so it heads for
# the ridge solution, for {glue:text}`full_rank_epochs` epochs), and the tuned low-rank model.
# Both gradient-trained models go through `course_utils.training.fit`, the course's training
# loop.

# %%
train_kd, test_kd = train_data.truncate(best_order), test_data.truncate(best_order)
ridge_lambda = float(RIDGE_LAMBDAS[int(np.argmin(ridge_cv[best_order]))])
baseline = lrar.least_squares_ar(train_kd)
ridge = lrar.ridge_ar(train_kd, [ridge_lambda]).select(0, 0)
batch = (train_kd.x_lags, train_kd.u_lags, train_kd.target)


def low_rank_loss(model: lrar.LowRankAR, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Mean over frames of the squared error summed over neurons, plus the L2 penalty."""
    x, u, y = batch
    return ((model(x, u)[0] - y) ** 2).sum(dim=-1).mean() + best_lambda * model.penalty()[0]


def tuned_low_rank(start: lrar.ARWeights, n_models: int = 1) -> lrar.LowRankAR:
    """Low-rank models of the tuned rank, initialized as tuned: by SVD of ``start`` or at random."""
    if best_init == "svd":
        return lrar.LowRankAR.from_weights(start, ranks=[best_rank] * n_models)
    return lrar.LowRankAR(n_neurons, best_order, [best_rank] * n_models, init_scale=0.05,
                          generator=torch.Generator().manual_seed(SEED)).to(DEVICE)


low_rank = tuned_low_rank(ridge)
low_rank_history = training.fit(
    low_rank, [batch], loss_fn=low_rank_loss, optimizer=torch.optim.Adam(low_rank.parameters(), lr=best_lr),
    epochs=max(final_epochs, 1), device=DEVICE, mixed_precision=False, progress=False,
)


def full_rank_loss(model: lrar.FullRankAR, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The same loss for the full-rank model, with the ridge penalty."""
    x, u, y = batch
    return ((model(x, u) - y) ** 2).sum(dim=-1).mean() + ridge_lambda * model.penalty()


full_rank_epochs = 2 * STEPS
full_rank = lrar.FullRankAR(n_neurons, best_order)  # starts from zero
full_rank_history = training.fit(
    full_rank, [batch], loss_fn=full_rank_loss, epochs=full_rank_epochs, device=DEVICE,
    optimizer=torch.optim.Adam(full_rank.parameters(), lr=max(LEARNING_RATES)),
    mixed_precision=False, progress=False,
)

models = {
    "least squares": baseline,
    "ridge": ridge,
    "full rank, Adam": full_rank.weights(),
    "low rank, Adam": low_rank.weights().select(0),
}
test_mse = {name: held_out_mse(w.predict(test_kd)) for name, w in models.items()}
improvement = 1 - test_mse["low rank, Adam"] / test_mse["least squares"]
glue("improvement", 100 * improvement, display=False)
glue("low_rank_test", test_mse["low rank, Adam"], display=False)
glue("baseline_test", test_mse["least squares"], display=False)
glue("ridge_test", test_mse["ridge"], display=False)
glue("full_rank_test", test_mse["full rank, Adam"], display=False)
glue("full_rank_epochs", int(full_rank_epochs), display=False)

fig, ax = plt.subplots(figsize=(6.5, 3.2))
names = list(test_mse)
bars = ax.barh(names[::-1], [test_mse[n] for n in names[::-1]],
               color=[plotting.COLORS["model"] if "low" in n else plotting.COLORS["data"] for n in names[::-1]])
ax.bar_label(bars, fmt="%.3f", padding=3, fontsize=9)
ax.axvline(truth_test, color=plotting.COLORS["truth"], ls="--", lw=1, label="true model (noise floor)")
ax.set(xlabel="held-out MSE (a.u.²)", title="Responses to new stimulation groups",
       xlim=(0, 1.15 * max(test_mse.values())))
ax.legend(fontsize=8, loc="lower right")
plt.show()
{name: round(value, 4) for name, value in test_mse.items()} | {"true model": round(truth_test, 4)}

# %% [markdown]
# On the held-out groups the tuned low-rank model reaches an MSE of
# {glue:text}`low_rank_test:.3f` against {glue:text}`baseline_test:.3f` for least squares:
# an improvement of {glue:text}`improvement:.0f` %. Ridge ({glue:text}`ridge_test:.3f`) and
# the full-rank model trained by Adam ({glue:text}`full_rank_test:.3f`) stay far behind: like
# least squares they estimate every coupling separately, and they can extrapolate a full
# $B_s$ to a new pattern only through the patterns they saw. The low-rank model wins for two
# reasons: it has far fewer parameters to estimate from the same trials (less variance), and
# its diagonal carries each neuron's direct response to any group that contains it
# (generalization). It does not reach the true model: its estimates carry the noise of a
# limited number of trials, and the
# network's response to the part of a new pattern that lies outside every pattern seen
# (through the off-diagonal $U_{B_s} V_{B_s}^\top$) cannot be learned from these trials by any
# model.
#
# ## 8. Predicted and measured responses
#
# The question an experimenter asks: if I stimulate this new group, what happens? Each model
# answers by running its dynamics from the baseline with the group's pattern as input, no
# data involved (`lrar.stimulation_response`). We compare with the trial-averaged
# responses measured for a held-out group, and with the true model's noiseless response.

# %%
heldout = session.heldout_patterns
n_lags = session.trial_frames
predicted = {name: lrar.stimulation_response(
    w, torch.as_tensor(session.patterns[heldout], dtype=torch.float32, device=DEVICE), n_lags,
    session.stim_frames).detach().cpu().numpy() for name, w in models.items()}  # (held-out, lags, d)
true_response = truth.response(session.patterns[heldout], n_lags, session.stim_frames)
shown_pattern = 0  # the first held-out group
measured = np.mean([activity[o + np.arange(-BASELINE_FRAMES, n_lags)]
                    for o in onsets[trial_pattern == heldout[shown_pattern]]], axis=0)
measured = measured - measured[:BASELINE_FRAMES].mean(axis=0)
direct = int(np.flatnonzero(session.patterns[heldout[shown_pattern]])[0])
others = np.flatnonzero(session.patterns[heldout[shown_pattern]] == 0)
indirect = int(others[np.argmax(np.abs(true_response[shown_pattern][:, others]).max(axis=0))])
quiet = int(others[np.argmin(np.abs(true_response[shown_pattern][:, others]).max(axis=0))])
line_styles = {"least squares": (plotting.COLORS["alternative"], "-"), "ridge": ("#e377c2", ":"),
               "full rank, Adam": (plotting.COLORS["data"], "-."), "low rank, Adam": (plotting.COLORS["model"], "-")}
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharex=True)
for ax, neuron, label in zip(axes, (direct, indirect, quiet), ("stimulated", "strongest indirect", "barely affected")):
    ax.plot(np.arange(-BASELINE_FRAMES, n_lags), measured[:, neuron], "o", ms=3, color=plotting.COLORS["data"],
            label="measured (trial average)")
    ax.plot(np.arange(n_lags), true_response[shown_pattern][:, neuron], "--", color=plotting.COLORS["truth"], lw=1.2,
            label="true model")
    for name, (color, style) in line_styles.items():
        ax.plot(np.arange(n_lags), predicted[name][shown_pattern][:, neuron], style, color=color, label=name)
    ax.set(title=f"Neuron {neuron} ({label})", xlabel="frames from stimulation onset")
axes[0].set_ylabel("response (a.u.)")
axes[0].legend(fontsize=7, loc="upper right")
plotting.label_panels(axes)
plt.show()

# Over every stimulated neuron of every held-out group: predicted / true direct response.
window_means = {name: p[:, RESPONSE_WINDOW].mean(axis=1) for name, p in predicted.items()}  # (held-out, d)
true_window = true_response[:, RESPONSE_WINDOW].mean(axis=1)
targeted = session.patterns[heldout] > 0
direct_pct = {name: 100 * float(np.median(w[targeted] / true_window[targeted])) for name, w in window_means.items()}
glue("ls_direct_pct", direct_pct["least squares"], display=False)
glue("low_rank_direct_pct", direct_pct["low rank, Adam"], display=False)

# %% [markdown]
# Over all stimulated neurons of the held-out groups, least squares predicts a median
# {glue:text}`ls_direct_pct:.0f` % of the true direct response (in the response window), the
# low-rank model {glue:text}`low_rank_direct_pct:.0f` %: the full models see only the
# projection of the new pattern onto the old ones. The indirect responses are smaller, and
# harder for every model.
#
# ## 9. Predicting which neurons respond: ROC curves
#
# Section 2 labelled each (group, neuron) pair as responsive or not, from data. For the
# held-out groups we score each pair by the model's predicted response in the same window
# and ask how well the score ranks responsive pairs above the rest: the ROC curve and the
# area under it (AUROC; 0.5 is chance, 1 is perfect).

# %%
labels = responds[heldout].ravel()
auroc = {name: float(roc_auc_score(labels, score.ravel())) for name, score in window_means.items()}
auroc["true model"] = float(roc_auc_score(labels, true_window.ravel()))
glue("auroc_low_rank", auroc["low rank, Adam"], display=False)
glue("auroc_baseline", auroc["least squares"], display=False)
glue("auroc_truth", auroc["true model"], display=False)
glue("n_heldout_positive", int(labels.sum()), display=False)

fig, ax = plt.subplots(figsize=(4.6, 4.2))
for name, score in window_means.items():
    fpr, tpr, _ = roc_curve(labels, score.ravel())
    color, style = line_styles[name]
    ax.plot(fpr, tpr, style, color=color, label=f"{name} ({auroc[name]:.3f})")
ax.plot([0, 1], [0, 1], color="k", lw=0.6, label="chance")
ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Held-out groups: who responds?",
       aspect="equal")
ax.legend(fontsize=8, loc="lower right", title="model (AUROC)", title_fontsize=8)
plt.show()

# %% [markdown]
# With {glue:text}`n_heldout_positive` responsive pairs among the held-out groups, the
# low-rank model's AUROC is {glue:text}`auroc_low_rank:.3f`, the baseline's
# {glue:text}`auroc_baseline:.3f` (the true model's {glue:text}`auroc_truth:.3f`).

# %% [markdown]
# ## 10. Choosing the next patterns: active learning
#
# Section 7 showed where the low-rank model's error lies: in the responses to patterns it
# has not seen. Every trial costs time in a live experiment, so which groups should be
# stimulated next? Wagenmaker et al. {cite}`wagenmaker2024active` let the fitted model
# choose. To first order, the error of its predicted response to a new random group of $g$
# of the $d$ neurons has two parts that the stimulated patterns control:
#
# $$
# E \approx \sigma^2 \Big[\, \underbrace{p\,k \sum_j \frac{1}{n_j + c}
# + r \operatorname{tr}\!\big(\Sigma_u (S^\top S + c I)^{-1}\big)}_{\text{per neuron}}
# \;+\; \underbrace{d \,\operatorname{tr}\!\big(\hat V_B^\top \Sigma_u \hat V_B\, M^{-1}\big)}_{\text{along the input directions}} \Big],
# \qquad M = \sum_i z_i z_i^\top, \quad z_i = \hat V_B^\top u_i ,
# $$
#
# where the patterns seen so far are the rows $u_i$ of $S$, $n_j$ counts those that contain
# neuron $j$, $\Sigma_u$ is the average $u u^\top$ of a random group, $p = g/d$ and $c$ is a
# prior count.
#
# - **Per neuron.** Neuron $j$'s direct responses (the diagonals of the $k$ matrices $B_s$)
#   are learned only from the $n_j$ patterns that contain it. Its row of $V_B$ is learned
#   from the sums $V_B^\top u$ over the neurons of each pattern, so it depends on how well the
#   patterns seen span the input space: two neurons always stimulated together cannot be
#   told apart, and an input direction no pattern has probed stays unknown.
# - **Along the input directions.** The network's response $U_B V_B^\top u$ depends on a
#   pattern only through its projections $z = V_B^\top u$ on the input directions (the
#   columns of every lag's $V_{B_s}$; $r$ counts them all), and $U_B$ is learned from the
#   projections of the patterns seen.
#
# The **active design** repeats: fit the tuned model to every trial so far, take its input
# directions $\hat V_B$ (`stim_design.input_directions`), then pick from a pool of random
# candidate groups, one at a time, the group that lowers $E$ most
# (`stim_design.choose_patterns`, a greedy A-optimal design), and record its trials. The
# **random design** takes candidates as they come. To see which part of $E$ does the work we
# also run each term alone. The simulator plays the microscope: `simulate_trials` records
# the trials of whatever patterns a design asks for, with the planted dynamics. Every design
# starts from the same few random groups; the experiment is repeated a few times (new
# initial groups and noise), and at each round all designs of all repeats are refitted as
# one batch of models, with the settings tuned in section 6 (the same for every design, so
# the comparison stays fair). Every model is scored on the same held-out groups as in
# section 7.

# %%
AL_INITIAL, AL_PER_ROUND = SIZES["al_initial_groups"], SIZES["al_groups_per_round"]
AL_ROUNDS, AL_EXPERIMENTS, AL_CANDIDATES = SIZES["al_rounds"], SIZES["al_experiments"], SIZES["al_candidates"]
design_terms = {"random": None, "active": ("neurons", "directions"),
                "per-neuron term only": ("neurons",), "directions term only": ("directions",)}
design_names = list(design_terms)


def record(patterns: np.ndarray, rng: np.random.Generator) -> lrar.LaggedData:
    """Run N_REPEATS trials of each pattern on the simulated microscope; lagged at the chosen order."""
    block_activity, block_stimulation = simulate_trials(truth, patterns, N_REPEATS, rng,
                                                        trial_frames=session.trial_frames,
                                                        stim_frames=session.stim_frames)
    return lrar.lag_data(block_activity, block_stimulation, best_order, device=DEVICE)


def refit_all(datasets: list[lrar.LaggedData]) -> lrar.LowRankAR:
    """The tuned low-rank model (rank, λ, learning rate, epochs, initialization) fitted to each dataset, as one batch."""
    everything = lrar.LaggedData.concatenate(datasets)
    owner = torch.cat([torch.full((len(rows),), i, device=DEVICE) for i, rows in enumerate(datasets)])
    masks = owner[None, :] == torch.arange(len(datasets), device=DEVICE)[:, None]
    model = tuned_low_rank(fold_start(lrar.ridge_ar(everything, [ridge_lambda], masks), 1), len(datasets))
    lrar.train_batched(model, lrar.compress(everything, masks), lambdas=best_lambda, lr=best_lr,
                       steps=max(final_epochs, 1))
    return model


runs = [(experiment, name) for experiment in range(AL_EXPERIMENTS) for name in design_names]
experiment_rngs = [np.random.default_rng([SEED, experiment]) for experiment in range(AL_EXPERIMENTS)]
patterns_of, data_of = {}, {}
for experiment, rng_e in enumerate(experiment_rngs):
    initial = stim_design.random_groups(n_neurons, GROUP_SIZE, AL_INITIAL, rng_e)
    first_block = record(initial, rng_e)  # the same first trials for every design
    for name in design_names:
        patterns_of[experiment, name], data_of[experiment, name] = initial, [first_block]

al_start = time.perf_counter()
al_mse = np.empty((AL_ROUNDS + 1, AL_EXPERIMENTS, len(design_names)))  # held-out MSE
al_unstimulated = np.empty_like(al_mse)  # neurons no pattern has stimulated yet
for round_ in range(AL_ROUNDS + 1):
    fitted = refit_all([lrar.LaggedData.concatenate(data_of[run]) for run in runs])
    with torch.no_grad():
        scores = lrar.mse(fitted(test_kd.x_lags, test_kd.u_lags), test_kd.target).cpu().numpy()
    al_mse[round_] = scores.reshape(AL_EXPERIMENTS, len(design_names))
    al_unstimulated[round_] = np.reshape([(patterns_of[run].sum(axis=0) == 0).sum() for run in runs],
                                         (AL_EXPERIMENTS, len(design_names)))
    if round_ == AL_ROUNDS:
        break
    for experiment, rng_e in enumerate(experiment_rngs):
        pool = stim_design.random_groups(n_neurons, GROUP_SIZE, AL_CANDIDATES, rng_e)  # shared by the designs
        for name, terms in design_terms.items():
            run = (experiment, name)
            if terms is None:
                picked = np.arange(AL_PER_ROUND)  # random: the first candidates drawn
            else:
                directions = stim_design.input_directions(fitted, runs.index(run))
                picked = stim_design.choose_patterns(pool, patterns_of[run], directions, AL_PER_ROUND,
                                                     order=best_order, terms=terms)
            patterns_of[run] = np.concatenate([patterns_of[run], pool[picked]])
            data_of[run].append(record(pool[picked], rng_e))
al_seconds = time.perf_counter() - al_start
n_groups_seen = AL_INITIAL + AL_PER_ROUND * np.arange(AL_ROUNDS + 1)
al_mean = al_mse.mean(axis=1)  # (rounds, designs)
design_index = {name: i for i, name in enumerate(design_names)}
random_final = al_mean[-1, design_index["random"]]
reached = np.flatnonzero(al_mean[:, design_index["active"]] <= random_final)
active_groups_to_match = int(n_groups_seen[reached[0]]) if reached.size else None
# Mean gap over the rounds after the common start, relative to the random design.
al_gain = {name: 100 * float(np.mean(1 - al_mean[1:, i] / al_mean[1:, design_index["random"]]))
           for name, i in design_index.items()}
glue("al_groups_final", int(n_groups_seen[-1]), display=False)
glue("al_initial", int(AL_INITIAL), display=False)
glue("al_per_round", int(AL_PER_ROUND), display=False)
glue("al_experiments", int(AL_EXPERIMENTS), display=False)
glue("al_candidates", int(AL_CANDIDATES), display=False)
glue("al_n_models", len(runs), display=False)
glue("al_seconds", al_seconds, display=False)
glue("al_gain_active", al_gain["active"], display=False)
glue("al_gain_neurons", al_gain["per-neuron term only"], display=False)
glue("al_neurons_clause", "The per-neuron part alone does even better" if al_gain["per-neuron term only"]
     > al_gain["active"] else "Most of the gain comes from the per-neuron part, which alone gains", display=False)
glue("al_gain_directions", al_gain["directions term only"], display=False)
glue("al_match_clause", f"the active design reaches it with {active_groups_to_match} groups"
     if active_groups_to_match is not None else "the active design does not reach it within these rounds",
     display=False)
glue("al_random_final", float(random_final), display=False)
glue("al_active_final", float(al_mean[-1, design_index["active"]]), display=False)
glue("al_random_unstimulated", float(al_unstimulated[-1, :, design_index["random"]].mean()), display=False)
glue("al_directions_unstimulated", float(al_unstimulated[-1, :, design_index["directions term only"]].mean()),
     display=False)


def unprobed_error(patterns: np.ndarray) -> float:
    """Held-out MSE above the noise floor of the true model whose network input response
    (the off-diagonal part of each B_s) is known only on the span of ``patterns``."""
    _, singular, vh = np.linalg.svd(patterns, full_matrices=False)
    basis = vh[singular > singular[0] * 1e-9]
    diagonal = np.einsum("sd,de->sde", np.diagonal(truth.B, axis1=1, axis2=2), np.eye(n_neurons))
    known_B = diagonal + (truth.B - diagonal) @ (basis.T @ basis)
    known = lrar.ARWeights(true_weights.A, torch.as_tensor(known_B, dtype=torch.float32, device=DEVICE),
                           true_weights.bias)
    return held_out_mse(known.predict(test_data.truncate(ORDER))) - truth_test


active_excess = al_mean[-1, design_index["active"]] - truth_test
unprobed_share = np.mean([unprobed_error(patterns_of[e, "active"]) for e in range(AL_EXPERIMENTS)]) / active_excess
glue("al_unprobed_pct", 100 * float(unprobed_share), display=False)

al_styles = {"random": (plotting.COLORS["data"], "o-"), "active": (plotting.COLORS["model"], "s-"),
             "per-neuron term only": (plotting.COLORS["alternative"], "^--"),
             "directions term only": ("#e377c2", "v:")}
fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.6))
for name, i in design_index.items():
    color, style = al_styles[name]
    axes[0].plot(n_groups_seen, al_mean[:, i], style, ms=4, color=color, label=name)
    axes[0].fill_between(n_groups_seen, al_mse[:, :, i].min(axis=1), al_mse[:, :, i].max(axis=1),
                         color=color, alpha=0.12, lw=0)
    axes[1].plot(n_groups_seen, al_unstimulated[:, :, i].mean(axis=1), style, ms=4, color=color, label=name)
axes[0].axhline(truth_test, color=plotting.COLORS["truth"], ls="--", lw=1, label="true model (noise floor)")
axes[0].set(xlabel="groups stimulated so far", ylabel="held-out MSE (a.u.²)", xticks=n_groups_seen,
            title="Held-out error as patterns accumulate")
axes[0].legend(fontsize=7)
axes[1].set(xlabel="groups stimulated so far", ylabel="neurons never stimulated", xticks=n_groups_seen,
            title=f"Coverage of the {n_neurons} neurons")
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# Averaged over the rounds after the common start and over {glue:text}`al_experiments`
# repeats of the experiment, the active design's held-out error is
# {glue:text}`al_gain_active:.1f` % below the random design's. Random choice reaches its
# final error after {glue:text}`al_groups_final` groups; {glue:text}`al_match_clause`.
# {glue:text}`al_neurons_clause` ({glue:text}`al_gain_neurons:.1f` %): it spreads the
# stimulation over every neuron (panel B), while random groups still leave about
# {glue:text}`al_random_unstimulated:.0f` neurons unstimulated at the end, whose direct
# responses no model can know. The directions part
# alone does *worse* than random ({glue:text}`al_gain_directions:.1f` %): chasing large
# projections on the estimated directions, it ignores coverage and leaves about
# {glue:text}`al_directions_unstimulated:.0f` neurons unstimulated. And the curves come
# together (final held-out MSE {glue:text}`al_active_final:.3f` active,
# {glue:text}`al_random_final:.3f` random). Much of what is left is out of any design's
# reach: the true model itself, told the network's response only along the patterns the
# active design stimulated, keeps {glue:text}`al_unprobed_pct:.0f` % of that design's final
# error above the noise floor. That part lies in input directions no pattern has probed
# yet, and a model cannot point at what it has never seen; only new patterns reduce it.
#
# This is a simplified, greedy design in the spirit of {cite}`wagenmaker2024active` (aim the
# trials at the parts of the low-rank model that are still uncertain), not their algorithm;
# they report up to a two-fold saving of data in some of their settings, and how much a
# design saves depends on how much of the error it can reach. The
# {glue:text}`al_n_models` models of each round (designs × repeats) trained as one batch;
# the whole section took {glue:text}`al_seconds:.0f` s.
#
# ## Exercises
#
# ### Exercise 1: why 6 times the noise?
#
# The threshold trades misses against false alarms. For multiples from 1 to 12, compute the
# fraction of directly stimulated pairs called responsive (`signal`, `baseline_noise`,
# `stimulated`) and the number of **false alarms**: pairs called responsive whose true
# noiseless response (`true_signal`) is smaller than their baseline noise. Plot both against
# the multiple.

# %% tags=["exercise"]
def detection_curve(multiples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, per multiple, the fraction of stimulated pairs detected and the false-alarm count."""
    # Your code: compare signal with multiple * baseline_noise for every multiple.
    ...


# %% tags=["solution", "hide-cell"]
def detection_curve(multiples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, per multiple, the fraction of stimulated pairs detected and the false-alarm count."""
    called = signal[None] > multiples[:, None, None] * baseline_noise  # (multiples, patterns, d)
    detected = called[:, stimulated].mean(axis=1)
    false_alarms = (called & (np.abs(true_signal) < baseline_noise)[None]).sum(axis=(1, 2))
    return detected, false_alarms


multiples = np.arange(1.0, 12.5, 0.5)
detected, false_alarms = detection_curve(multiples)
fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(multiples, 100 * detected, "o-", ms=3, color=plotting.COLORS["test"], label="stimulated pairs detected")
ax.set(xlabel="threshold (multiples of baseline noise)", ylabel="detected (%)", title="Misses against false alarms")
twin = ax.twinx()
twin.plot(multiples, false_alarms, "s-", ms=3, color=plotting.COLORS["data"], label="false alarms")
twin.set_ylabel("false alarms (pairs)", color=plotting.COLORS["data"])
ax.axvline(THRESHOLD, color="k", ls="--", lw=1)
twin.plot([], [], "o-", ms=3, color=plotting.COLORS["test"], label="stimulated pairs detected")
twin.legend(loc="center right", fontsize=8)
glue("exercise1_figure", fig, display=False)
plt.close(fig)

# %% [markdown]
# **Figure check.** False alarms vanish within a few multiples of the noise, well before
# the threshold reaches 6 (dashed line), while the fraction of stimulated pairs detected
# keeps falling as the threshold rises: a strict threshold keeps the labels clean at the
# price of missing weaker responses.
#
# ```{glue:figure} exercise1_figure
# :name: fig-lowrank-exercise-1
#
# Expected result of exercise 1: detections and false alarms against the threshold.
# ```
#
# ### Exercise 2: how many repeats does each model need?
#
# Refit least squares and the tuned low-rank model on the first 1, 2, ... repeats of every
# training group (the trials in time order) and plot the held-out MSE against the number of
# repeats. Train the low-rank models of all subset sizes as one batch: `lrar.compress`
# accepts one row mask per subset, and `lrar.train_batched` gives each model its own subset.

# %% tags=["exercise"]
repeat_index = np.zeros(len(data), dtype=int)  # which repeat of its group each row belongs to
for p in train_patterns:
    trials = np.flatnonzero(session.trial_pattern == p)
    for i, trial in enumerate(trials):
        repeat_index[trial_of_row == trial] = i + 1


def learning_curve(repeats: list[int]) -> dict[str, list[float]]:
    """Held-out MSE of least squares and of the low-rank model for each number of repeats."""
    # Your code: one training mask per entry of `repeats` (is_train & repeat_index <= n),
    # least_squares_ar on each subset, and one LowRankAR batch trained with train_batched.
    ...


# %% tags=["solution", "hide-cell"]
def learning_curve(repeats: list[int]) -> dict[str, list[float]]:
    """Held-out MSE of least squares and of the low-rank model for each number of repeats."""
    masks = torch.as_tensor(np.stack([is_train & (repeat_index <= n) for n in repeats]), device=DEVICE)
    subsets = lrar.compress(data_k, masks)
    starts = lrar.ridge_ar(data_k, [ridge_lambda], masks)
    model = lrar.LowRankAR.from_weights(fold_start(starts, 1), ranks=[best_rank] * len(repeats))
    lrar.train_batched(model, subsets, lambdas=best_lambda, lr=best_lr, steps=max(final_epochs, 1))
    low_rank_mse = lrar.mse(model(test_kd.x_lags, test_kd.u_lags).detach(), test_kd.target)
    ls_mse = [held_out_mse(lrar.least_squares_ar(data_k.rows(m)).predict(test_kd)) for m in masks]
    return {"least squares": ls_mse, "low rank, Adam": low_rank_mse.cpu().tolist()}


repeats = list(range(1, N_REPEATS + 1))
curve = learning_curve(repeats)
fig, ax = plt.subplots(figsize=(5.5, 3.2))
for name, values in curve.items():
    color, style = line_styles[name]
    ax.plot(repeats, values, "o" + style, color=color, label=name)
ax.axhline(truth_test, color=plotting.COLORS["truth"], ls="--", lw=1, label="true model")
ax.set(xlabel="repeats of each training group", ylabel="held-out MSE (a.u.²)", xticks=repeats,
       title="Learning curves")
ax.legend(fontsize=8)
glue("exercise2_figure", fig, display=False)
plt.close(fig)

# %% [markdown]
# **Figure check.** Least squares needs every repeat it can get and still ends far above the
# low-rank model, which is already close to its final error with fewer repeats. More repeats
# of the *same* groups never fix the extrapolation problem of the full model: only new
# patterns do, which is why Wagenmaker et al. choose the next patterns actively
# {cite}`wagenmaker2024active` (section 10).
#
# ```{glue:figure} exercise2_figure
# :name: fig-lowrank-exercise-2
#
# Expected result of exercise 2: held-out MSE against the number of repeats per group.
# ```
#
# ## 11. Your own recordings
#
# There is no public copy of the recordings of {cite}`wagenmaker2024active`. To run this
# chapter on your own experiment, give `load_photostim` two arrays of shape
# `(n_frames, n_neurons)`: the activity (e.g. ΔF/F) and the stimulation delivered to each
# neuron in each frame (zero elsewhere). The loader finds the trials (bouts of one pattern),
# the distinct patterns and a held-out set of them, and rejects arrays it cannot use with a
# message saying what to fix. Here we pass the simulated arrays as if they were yours, and
# then a copy with a missing value.

# %%
yours = load_photostim("user", arrays=(activity, stimulation), seed=SEED)
print(f"{yours.patterns.shape[0]} patterns, {yours.trial_onsets.size} trials, "
      f"{yours.stim_frames} stimulated frames per trial, held out: {yours.heldout_patterns.tolist()}")
broken = activity.copy()
broken[10, 3] = np.nan
try:
    load_photostim("user", arrays=(broken, stimulation))
except ValueError as error:
    print(f"ValueError: {error}")

# %% [markdown]
# The analysis reads `session.activity`, `session.stimulation`, `session.trial_onsets`,
# `session.trial_pattern`, `session.patterns`, `session.heldout_patterns` and
# `session.stim_frames`, which your session has too. It also compares with `truth`, the
# planted model, which a recording does not have (`session.truth` is `None`): to run the
# chapter on your data, load it in section 1 and remove what uses `truth` (the true
# responses and noise floor in the figures, and the Checks).
#
# ## Checks
#
# The chapter's scientific claims, asserted against the simulation's ground truth. They run
# at every scale and fail the book build if the science breaks.

# %%
scale = config.get_scale()
# The issue asks for 25 % at the default scale; a CPU spot check of the full scale (one
# model per rank, no tuning) gave 27 %, so its threshold keeps a margin.
min_improvement = {"smoke": 0.0, "default": 0.25, "full": 0.20}[scale]
assert improvement > min_improvement, (improvement, test_mse)
assert abs(best_rank - RANK) <= 1, (best_rank, RANK, grid_cv)
assert best_order == ORDER, (best_order, order_cv)
assert auroc["low rank, Adam"] > auroc["least squares"], auroc
assert test_mse["low rank, Adam"] < min(test_mse["ridge"], test_mse["full rank, Adam"]), test_mse
assert abs(direct_pct["low rank, Adam"] - 100) < abs(direct_pct["least squares"] - 100) \
    and direct_pct["least squares"] < 100, direct_pct
assert all(lr_curves[0, c] < lr_curves[0, c + 1] for c in range(0, len(lr_grid), 2)), \
    "the text says the SVD start begins nearer a good solution than the random one"
assert ls_train[ORDER] < truth_test < ls_test[ORDER], (ls_train, truth_test, ls_test)
assert best_ridge_order < ORDER, ridge_cv  # the text: ridge's cross-validation prefers fewer lags
assert ridge_cv[ORDER].min() < ridge_cv[ORDER][0], ridge_cv  # ridge helps on the validation folds
assert test_mse["low rank, Adam"] > truth_test, (test_mse, truth_test)
assert responds[stimulated].mean() > 0.5 and (responds & (np.abs(true_signal) < baseline_noise)).sum() == 0
assert min(lr_curves[-1, [c for c, (rate, _) in enumerate(lr_grid) if rate == min(LEARNING_RATES)]]) \
    > lr_curves[:, best_lr_config].min(), "the text says the smallest learning rate has not converged"
# Section 10: the active design beats random choice, most of the gain from the per-neuron part.
assert al_gain["active"] > 0 and al_gain["per-neuron term only"] > 0.5 * al_gain["active"], al_gain
assert al_gain["directions term only"] < 0, al_gain
assert (al_unstimulated[-1, :, design_index["per-neuron term only"]] == 0).all(), al_unstimulated[-1]
assert 0 < al_unstimulated[-1, :, design_index["random"]].mean() \
    <= al_unstimulated[-1, :, design_index["directions term only"]].mean(), al_unstimulated[-1]
active_gap = al_mean[:, design_index["random"]] - al_mean[:, design_index["active"]]
assert active_gap[-1] < 0.5 * active_gap.max(), active_gap  # the curves come together
assert unprobed_share > 0.3, unprobed_share  # "much of what is left is out of any design's reach"
print("All checks passed.")

# %% [markdown]
# ## Summary
#
# - An AR model of photostimulation responses with full coupling matrices has
#   {glue:text}`n_full` parameters here. Least squares fits them to the noise, and it can
#   predict a new stimulation pattern only through its projection onto the patterns it has
#   seen.
# - Constraining each matrix to diagonal plus low rank cuts the parameters to
#   {glue:text}`n_low_rank` and lets the diagonal carry each neuron's direct response to any
#   new group: on held-out groups the tuned model improves the MSE by
#   {glue:text}`improvement:.0f` % over least squares, and predicts better which neurons respond.
# - Cross-validation on folds of whole stimulation groups tuned the order, the rank, the
#   penalty, the epochs, the learning rate and the initialization; it recovered the
#   planted order and a rank within one of the planted one.
# - A grid of models trains as one tensor computation: a leading model dimension in every
#   parameter, masks for ranks and orders, and each fold's rows compressed to their second
#   moments.
# - Choosing the next stimulation groups from the fitted model's uncertainty beat random
#   choice by {glue:text}`al_gain_active:.1f` % in held-out error, most of it from the
#   per-neuron part of the uncertainty; no design can aim at input directions no pattern has
#   probed.
#
# **What's next.** Chapter 4 tunes a generative model of population activity, the
# compositional RBM, over its sparsity penalty, with the same idea of training many models
# at once.
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
