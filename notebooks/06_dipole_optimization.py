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
# # 6 · Fitting a cortical column to an evoked dipole: tuning the tuner
#
# A tap on the finger leaves a signature in the MEG: a current dipole in primary
# somatosensory cortex that dips, rises and peaks again within a fifth of a second. The Human Neocortical
# Neurosolver (HNN) explains such evoked responses with a biophysical model of a cortical
# column driven by a sequence of inputs: a first "proximal" volley from the thalamus, a
# "distal" volley from higher cortex, and a second proximal volley that shapes the late peak
# {cite}`jones2009quantitative,neymotin2020human`. Its parameters were once tuned by hand.
# Here an optimizer tunes them, and the hyperparameters are the optimizer's own: which
# solver, how many simulations, how many trials per evaluation, where to start, and whether
# the data can tell the parameters apart at all.
#
# **Learning goals.** After this chapter you can
#
# - simulate hnn-core's cortical column with evoked drives and turn its output into a
#   dipole comparable with MEG (scaling, smoothing) {cite}`jas2023hnncore`;
# - write the `set_params` function, constraints and initial values of hnn-core's
#   `Optimizer`, and run it with the RMSE objective;
# - explain why each evaluation averages several trials, and what one trial does to the fit;
# - compare solvers (Bayesian optimization, CMA-ES, COBYLA) fairly, at the same budget and
#   from the same start, and use restarts to tell a local optimum from the answer;
# - read a 2-D slice of the objective to see which parameters the data identify;
# - spread simulations over your cores with hnn-core's joblib backend.
#
# **Prerequisites.** Python and NumPy; what an evoked response (ERP) and a current dipole
# are; the idea of minimizing an objective within bounds. No NEURON knowledge is needed.
#
# **Time to learn.** About 60 minutes, 20 more for the exercises.
#
# **Run time** (measured by `benchmarks/chapters.py`, see
# {doc}`../book/setup`):
# <!-- timings:dipole_optimization -->
# smoke 53 s (0.7 GB) · default 254 s (0.7 GB) · full: about 28 h, estimated, not run · on 2 CPU cores, peak memory in brackets
# <!-- /timings -->
#
# **Notebooks to download** (from the book):
# <a href="../_static/variants/attendee/06_dipole_optimization.ipynb" download>attendee</a>
# (exercises open, expected figures included) ·
# <a href="../_static/variants/presenter/06_dipole_optimization.ipynb" download>presenter</a>
# (all code, headings only).

# %% [markdown]
# ## Setup
#
# hnn-core simulates the column with NEURON. `import_hnn_core` imports both with NEURON's
# own graphics off (we never open NEURON windows; without a display NEURON would warn in
# every process it starts in) and returns what hnn-core printed while importing, which is a
# one-time survey invitation after installation.

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
import contextlib
import io
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.optimize
import scipy.stats
from course_utils.glue import glue

from course_utils import config, plotting
from course_utils.data import DataFetchError, load_evoked_dipole
from course_utils.simulate import dipole as dipole_sim
from course_utils.sweep import run_sweep
from course_utils.workshop import report

import_messages = dipole_sim.import_hnn_core()
from hnn_core import JoblibBackend, neymotin_2020_model  # noqa: E402
from hnn_core.dipole import Dipole  # noqa: E402
from hnn_core.optimization import Optimizer  # noqa: E402

plotting.use_course_style()
report(packages=("hnn-core", "NEURON", "cma", "scipy"))
if import_messages:
    print(f"hnn-core printed {len(import_messages)} lines while importing (its survey invitation).")

# %% tags=["parameters"]
SIZES = config.sizes("dipole_optimization")
MESH_SHAPE = SIZES["mesh_shape"]  # pyramidal cells per layer; (10, 10) is the full column
DT_MS = SIZES["dt_ms"]  # integration step of NEURON
N_TRIALS = SIZES["n_trials"]  # trials averaged per evaluation of the objective
BUDGET = SIZES["budget"]  # evaluations per solver run from the hand-tuned start
CMA_POPSIZE = SIZES["cma_popsize"]  # CMA-ES candidates per generation
N_RESTARTS = SIZES["n_restarts"]  # extra starting points
RESTART_BUDGET = SIZES["restart_budget"]  # evaluations per restart
POLISH_BUDGET = SIZES["polish_budget"]  # evaluations refining the best point
SLICE_GRID = SIZES["slice_grid"]  # points per axis of the 2-D RMSE slice
SWEEP_BACKEND = "serial"  # where the restarts run: "serial", "loky" or "dask" (section 5)
N_JOBS = os.cpu_count() or 1  # the cores this machine has
SEED = 2026
rng = config.seed_everything(SEED)  # also seeds NumPy's global state, which the Bayesian solver draws from
dict(SIZES, n_jobs=N_JOBS)

# %% [markdown]
# Every simulation below runs its trials in parallel on the {glue:text}`n_jobs` cores of
# this machine, through hnn-core's joblib backend (section 5 explains it):

# %%
parallel = JoblibBackend(n_jobs=N_JOBS)
glue("n_jobs", int(N_JOBS), display=False)

# %% [markdown]
# ## 1. The model, its drives, and a target whose answer we know
#
# hnn-core's column (`neymotin_2020_model`, formerly `jones_2009_model`) holds layer 2/3 and
# layer 5 pyramidal cells on a square grid, with inhibitory basket cells, all with their
# dendrites. Its **current dipole**, the sum of the currents flowing along the pyramidal
# cells' apical dendrites, is what MEG measures. Nothing happens until drives arrive; the
# evoked response is made by three **evoked drives**, each a volley of spikes at a Gaussian
# time (mean `mu`, standard deviation `sigma`, in ms) onto synapses of given weights (µS):

# %%
drive_table = pd.DataFrame(
    {
        name: {
            "location": spec["location"],
            "mu (ms)": spec["mu"],
            "sigma (ms)": spec["sigma"],
            "AMPA weight onto L5 pyramidal (µS)": spec["weights_ampa"]["L5_pyramidal"],
        }
        for name, spec in dipole_sim.ERP_DRIVES.items()
    }
).T
drive_table

# %% [markdown]
# These are the hand-tuned values of hnn-core's example {cite}`jas2023hnncore`. The second
# proximal drive, `evprox2`, is left open: its timing, its spread and its weight onto layer 5
# pyramidal cells are the three parameters we fit. Each drive comes from one artificial
# cell that contacts every cell of the column, so on each trial a drive arrives at one random
# time, drawn from its Gaussian; trials differ, and an evoked response is their average. As
# in hnn-core's example, the three drives share one random seed, so a trial's three volleys
# come early or late together.
#
# We use a **reduced column** of {glue:text}`mesh_x` × {glue:text}`mesh_y` pyramidal cells per
# layer (the full one has {glue:text}`full_mesh`) at an integration step of
# {glue:text}`dt_ms` ms, so that a simulation takes a fraction of a second. (The full scale
# uses hnn-core's default step, {glue:text}`full_dt_ms` ms; a coarser step moves spike times
# slightly, and since the target below is simulated with the same step, the fit stays
# self-consistent.) A smaller column gives a proportionally smaller dipole, so the scale factor that converts the model's dipole
# to the size of a human source (hnn-core's {glue:text}`full_scale:.0f` for the full column)
# grows by the ratio of cell counts, to {glue:text}`scale_factor:.0f`. The dipole is then
# smoothed with a {glue:text}`smooth_ms:.0f` ms Hamming window, as in HNN.
#
# The **target** is simulated: the same column with planted `evprox2` parameters (those of
# HNN's ERP tutorial), {glue:text}`n_trials` trials averaged, sampled like the MEG recording
# (about 600 Hz) and with white noise added. The target's trials use the same random drive
# times as the model's trials (the same `event_seed`), so that at the planted parameters the
# model reproduces the target up to the noise: what remains is the question of this chapter,
# can an optimizer find the parameters? Real data share no random numbers with the model; the
# last section loads the recording.

# %%
SMOOTH_MS = 30.0  # Hamming window of HNN's ERP fits
with parallel:
    target = load_evoked_dipole(
        "simulated", mesh_shape=MESH_SHAPE, n_trials=N_TRIALS, dt=DT_MS, seed=SEED
    )
planted = dict(target.truth.params)
scale_factor = target.truth.scale_factor
target_dipole = Dipole(target.times, target.dipole)  # hnn-core's container
glue("mesh_x", int(MESH_SHAPE[0]), display=False)
glue("mesh_y", int(MESH_SHAPE[1]), display=False)
glue("dt_ms", float(DT_MS), display=False)
glue("full_scale", float(dipole_sim.FULL_COLUMN_SCALE), display=False)
glue("full_mesh", " × ".join(map(str, dipole_sim.FULL_COLUMN_MESH)), display=False)
glue("full_dt_ms", float(config.sizes("dipole_optimization", "full")["dt_ms"]), display=False)
glue("smooth_ms", SMOOTH_MS, display=False)
glue("scale_factor", float(scale_factor), display=False)
glue("n_trials", int(N_TRIALS), display=False)
glue("noise_sd", float(target.truth.noise_sd), display=False)
glue("planted_mu", float(planted["evprox2_mu"]), display=False)
glue("planted_sigma", float(planted["evprox2_sigma"]), display=False)
glue("planted_weight", float(planted["evprox2_ampa_L5_pyramidal"]), display=False)

# %% [markdown]
# Now the hand-tuned starting point of hnn-core's example: `evprox2` at
# {glue:text}`initial_mu:.0f` ms, {glue:text}`initial_sigma:.0f` ms of spread and a weight of
# {glue:text}`initial_weight:.1f` µS onto layer 5 pyramidal cells. `DipoleObjective` simulates a
# parameter set (every trial, scaled then smoothed), keeps the trials, and compares their
# average with the target; section 2 opens it up.


# %%
def set_params(net, params):
    """Add the three evoked drives to `net`, with `evprox2` from `params`."""
    dipole_sim.add_erp_drives(net, params)


constraints = {
    "evprox2_mu": (100.0, 150.0),  # ms
    "evprox2_sigma": (1.0, 20.0),  # ms
    "evprox2_ampa_L5_pyramidal": (0.01, 1.0),  # µS
}
initial_params = {
    "evprox2_mu": 120.0,
    "evprox2_sigma": 1.0,
    "evprox2_ampa_L5_pyramidal": 0.1,
}

net = neymotin_2020_model(mesh_shape=MESH_SHAPE)  # no drives: set_params adds them
objective = dipole_sim.DipoleObjective(
    net, set_params, target.times, target.dipole, n_trials=N_TRIALS, dt=DT_MS,
    scale_factor=scale_factor, smooth_ms=SMOOTH_MS,
)
with parallel:
    initial_rmse = objective(initial_params)
    initial_trials = objective.trials(initial_params)
trial_spread = float(np.max(np.ptp(initial_trials, axis=0)))
glue("trial_spread", trial_spread, display=False)
glue("initial_rmse", initial_rmse, display=False)
glue("initial_mu", initial_params["evprox2_mu"], display=False)
glue("initial_sigma", initial_params["evprox2_sigma"], display=False)
glue("initial_weight", initial_params["evprox2_ampa_L5_pyramidal"], display=False)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7.5, 3.6))
for k, trial in enumerate(initial_trials):
    ax.plot(objective.times, trial, color=plotting.COLORS["alternative"], lw=0.6, alpha=0.5,
            label="hand-tuned, single trials" if k == 0 else None)
ax.plot(objective.times, initial_trials.mean(axis=0), color=plotting.COLORS["alternative"],
        label=f"hand-tuned, average of {N_TRIALS} trials")
ax.plot(target.times, target.truth.clean, "--", color=plotting.COLORS["truth"],
        label="planted (before noise)")
ax.plot(target.times, target.dipole, ".", ms=4, color=plotting.COLORS["data"],
        label="target (planted + noise)")
bottom = ax.get_ylim()[0]
for name, spec in dipole_sim.ERP_DRIVES.items():
    mu = planted["evprox2_mu"] if spec["mu"] is None else spec["mu"]
    ax.axvline(mu, color="0.75", lw=0.8, zorder=0)
    ax.text(mu + 1, bottom, name, ha="left", va="bottom", fontsize=8, color="0.4")
ax.set(xlabel="time (ms)", ylabel="dipole (nAm)",
       title="Target and hand-tuned column (grey lines: mean drive times, planted)")
ax.legend(loc="lower right")
plt.show()

# %% [markdown]
# The hand-tuned column gets the first dip and rise right: those come from the first
# proximal and the distal drives, which we do not touch. Its late response comes too early
# and too weak, the part `evprox2` controls. Its RMSE to the target is
# {glue:text}`initial_rmse:.2f` nAm; the noise we added has a standard deviation of
# {glue:text}`noise_sd:.2f` nAm.
#
# Look at the single trials: they differ by up to {glue:text}`trial_spread:.1f` nAm, because
# each trial draws its own drive times. That is why every evaluation averages several trials.
#
# ## 2. `set_params`, constraints, the Optimizer and its objective
#
# hnn-core's `Optimizer` needs four things, all defined above:
#
# - a network without the fitted drives, and a **`set_params(net, params)`** function that
#   adds them with the values the optimizer proposes (ours rebuilds the three drives, with
#   `evprox2` from `params`);
# - **constraints**, a lower and upper bound per parameter (those of hnn-core's example);
# - **initial parameters**, here the hand-tuned values (without them the Optimizer starts
#   at the middle of each range);
# - an **objective**. The built-in `"dipole_rmse"` simulates `n_trials` trials, scales and
#   smooths each, averages them and returns the root-mean-square error to the target (after
#   resampling the simulation to the target's sampling).
#
# We pass our own objective instead, `DipoleObjective`, which does exactly that computation
# but keeps every simulated trial, so that later sections reuse simulations instead of
# running them again, and counts them. The Optimizer accepts any function with its
# objective's signature (`objective.hnn_obj_fun()` provides one). First, the check that both
# give the same number:

# %%
from hnn_core.optimization.general_optimization import _update_params  # noqa: E402
from hnn_core.optimization.objective_functions import _rmse_evoked  # noqa: E402

# One process, so that the built-in's progress messages and loss reach redirect_stdout.
with JoblibBackend(n_jobs=1), contextlib.redirect_stdout(io.StringIO()):
    builtin_rmse = _rmse_evoked(
        initial_net=net, initial_params=initial_params, set_params=set_params,
        predicted_params=list(initial_params.values()), update_params=_update_params,
        obj_values=[], tstop=objective.tstop,
        obj_fun_kwargs=dict(target=target_dipole, n_trials=N_TRIALS, dt=DT_MS,
                            scale_factor=scale_factor, smooth_window_len=SMOOTH_MS),
    )
glue("builtin_rmse", builtin_rmse, display=False)
print(f"hnn-core's dipole_rmse: {builtin_rmse:.6f} nAm; ours: {initial_rmse:.6f} nAm")

# %% [markdown]
# ### Why several trials per evaluation
#
# With one drive cell, a trial's `evprox2` is one spike at time $t = \mu + \sigma z$, where
# $z$ is that trial's standard-normal draw. Fixed seeds keep $z$ the same from one evaluation
# to the next (without them the objective would change every time it is called), so with
# **one trial** the dipole depends on $\mu$ and $\sigma$ only through $\mu + \sigma z$: every
# pair on that line gives the same simulation, and the two parameters cannot be told apart.
# Worse, the fit adjusts them until that one random draw lands where the target's average
# peak is: it fits the noise of one trial, not the drive. With several trials the spikes
# spread as $\sigma$ says and their average moves with $\mu$, so both leave their own mark.
# The same holds for the real recording, an average of many trials: the model must be
# compared as an average too. Section 4 shows the difference on the objective itself, and
# exercise 1 fits with one trial.
#
# ### The run
#
# hnn-core's default solver is Bayesian optimization, as in its example: a Gaussian process
# models the objective from the points evaluated so far and proposes the next point
# {cite}`snoek2012practical`. It draws candidate points from NumPy's global random state,
# which the parameters cell seeded. The run evaluates the objective {glue:text}`budget`
# times, each with {glue:text}`n_trials` trials.

# %%
config.seed_everything(SEED)
start = len(objective.history)
optimizer = Optimizer(
    net, tstop=objective.tstop, constraints=constraints, set_params=set_params,
    initial_params=initial_params, solver="bayesian", obj_fun=objective.hnn_obj_fun(),
    max_iter=BUDGET - 1,  # the Bayesian solver evaluates the start, then max_iter points
)
tic = time.perf_counter()
with parallel, warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    optimizer.fit(target=target_dipole, n_trials=N_TRIALS)  # our objective holds both
main_seconds = time.perf_counter() - tic
gp_warnings = [w for w in caught if "length_scale" in str(w.message)]
for other in (w for w in caught if w not in gp_warnings):
    warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
main_history = objective.history[start:]
main_params = dipole_sim.DipoleObjective.as_params(optimizer.opt_params_)
main_rmse = objective.rmse(main_params)
glue("budget", int(BUDGET), display=False)
glue("main_evaluations", len(main_history), display=False)
glue("main_seconds", float(main_seconds), display=False)
glue("main_rmse", main_rmse, display=False)
glue("gp_warnings", len(gp_warnings), display=False)
print(f"{len(main_history)} evaluations in {main_seconds:.0f} s; "
      f"RMSE {initial_rmse:.2f} -> {main_rmse:.2f} nAm")

# %% [markdown]
# The run took {glue:text}`main_seconds:.0f` s for {glue:text}`main_evaluations`
# evaluations. Along the way scikit-learn warned {glue:text}`gp_warnings` times that the
# Gaussian process's length scale hit its lower bound. A surrogate with a vanishing length
# scale sees every evaluated point as unrelated to its neighbours and predicts nothing
# between them, so the solver proposes points almost at random: this budget is too small for
# this surrogate on this objective. (The warnings are
# collected, counted and not shown; any other warning would be shown.)
#
# ## 3. What the optimizer found
#
# The convergence plot is hnn-core's own (`Optimizer.plot_convergence`): the best RMSE so far,
# call by call (it draws `max_iter` of the run's {glue:text}`main_evaluations` calls). The
# dashed line is the RMSE of the planted parameters, what a perfect fit reaches: not zero,
# because of the noise.

# %%
with parallel:
    floor_rmse = objective.rmse(planted)
    main_average = objective.average(main_params)
glue("floor_rmse", floor_rmse, display=False)
glue("main_ratio", main_rmse / initial_rmse, display=False)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw=dict(width_ratios=[3, 2]))
axes[0].plot(target.times, target.dipole, ".", ms=4, color=plotting.COLORS["data"],
             label="target")
axes[0].plot(objective.times, initial_trials.mean(axis=0), color=plotting.COLORS["alternative"],
             label="initial (hand-tuned)")
axes[0].plot(objective.times, main_average, color=plotting.COLORS["model"], label="optimized")
axes[0].set(xlabel="time (ms)", ylabel="dipole (nAm)", title="Target, initial and optimized")
axes[0].legend(loc="lower right")
optimizer.plot_convergence(ax=axes[1], show=False)
axes[1].axhline(floor_rmse, ls="--", color=plotting.COLORS["truth"], label="planted parameters")
axes[1].set(xlabel="objective evaluations", ylabel="best RMSE so far (nAm)",
            title="Convergence (Bayesian solver)", ylim=(0, 1.1 * initial_rmse))
axes[1].xaxis.set_major_locator(plt.MaxNLocator(integer=True))
axes[1].legend()
plotting.label_panels(axes)
plt.show()

# %%
def parameter_table(runs: dict[str, dict[str, float]]) -> pd.DataFrame:
    """One row per parameter set, with its RMSE (nAm) to the target."""
    rows = {name: {**params, "RMSE (nAm)": objective.rmse(params)} for name, params in runs.items()}
    return pd.DataFrame(rows).T


with parallel:
    table = parameter_table(
        {"initial": initial_params, "Bayesian (hnn-core default)": main_params,
         "planted": planted}
    )
table.round(3)

# %% [markdown]
# The RMSE went from {glue:text}`initial_rmse:.2f` to {glue:text}`main_rmse:.2f` nAm
# ({glue:text}`main_ratio:.2f` of the initial), against
# {glue:text}`floor_rmse:.2f` nAm at the planted parameters. The table compares the
# parameters with the planted ones (`mu` {glue:text}`planted_mu:.2f` ms, `sigma`
# {glue:text}`planted_sigma:.2f` ms, weight {glue:text}`planted_weight:.3f` µS). Is what is
# left the solver's fault, the budget's, the starting point's, or the data's? The next
# section tunes the tuner.
#
# ## 4. Tuning the tuner
#
# ### COBYLA in hnn-core 0.6.1
#
# hnn-core also offers `solver="cobyla"`, SciPy's constrained simplex method
# {cite}`powell1994direct`. In version 0.6.1 it builds the bound constraints with a
# `lambda` inside a loop that captures the loop's last key, so every parameter gets the
# bounds of the *last* parameter. We can see it without a single simulation, by evaluating
# the constraint functions hnn-core builds at the planted parameters, which lie inside the
# bounds (each function must be ≥ 0 at a feasible point):

# %%
from hnn_core.optimization.general_optimization import (  # noqa: E402
    _assemble_constraints_cobyla,
)

cobyla_constraints = _assemble_constraints_cobyla(constraints)
constraint_values = pd.DataFrame(
    [[c(list(planted.values())) for c in cobyla_constraints[2 * i: 2 * i + 2]]
     for i in range(len(constraints))],
    index=list(constraints), columns=["upper bound - x", "x - lower bound"],
)
n_violated = int((constraint_values < 0).to_numpy().sum())
glue("cobyla_violated", n_violated, display=False)
constraint_values.round(3)

# %% [markdown]
# {glue:text}`cobyla_violated` of the constraints call the planted point infeasible: `mu` and
# `sigma` are held to the weight's range. To watch what the solver then
# does, we hand the Optimizer a toy objective with no simulation inside, a bowl whose minimum
# is at the planted parameters:


# %%
low = np.array([bounds[0] for bounds in constraints.values()])
high = np.array([bounds[1] for bounds in constraints.values()])


def toy_objective(initial_net, initial_params, set_params, predicted_params, update_params,
                  obj_values, tstop, obj_fun_kwargs, best=None):
    """Squared distance to the planted parameters, each scaled by its range (no simulation)."""
    x = np.asarray(predicted_params, dtype=float)
    value = float(np.sum(((x - np.array(list(planted.values()))) / (high - low)) ** 2))
    obj_values.append(value)
    if best is not None and value < best["obj"]:
        best["obj"], best["params"] = value, list(x)
    toy_points.append(x)
    return value


toy_points = []
toy_run = Optimizer(net, tstop=objective.tstop, constraints=constraints, set_params=set_params,
                    initial_params=initial_params, solver="cobyla", obj_fun=toy_objective,
                    max_iter=60)
toy_run.fit()
cobyla_last = dict(zip(constraints, toy_points[-1]))
glue("cobyla_last_mu", float(cobyla_last["evprox2_mu"]), display=False)
glue("cobyla_last_sigma", float(cobyla_last["evprox2_sigma"]), display=False)
glue("cobyla_result_mu", float(toy_run.opt_params_[0]), display=False)
print("last point asked:", np.round(toy_points[-1], 3), "| returned:", np.round(toy_run.opt_params_, 3))

# %% [markdown]
# On a bowl it could not miss, hnn-core's COBYLA ends by asking for `mu` =
# {glue:text}`cobyla_last_mu:.2f` ms and `sigma` = {glue:text}`cobyla_last_sigma:.2f` ms,
# both held to the weight's range (`mu` far outside its own), and returns the best point it
# saw, `mu` = {glue:text}`cobyla_result_mu:.2f` ms, near its start. It is not a fair
# competitor, so we leave it out and call SciPy's COBYLA ourselves, through our objective,
# with correct bounds.
# One more change: we express each parameter as a fraction of its range, so that a step of
# 0.1 means the same thing for `mu` (ms) and for the weight (µS). Solvers with a single step
# size or length scale (COBYLA's trust region, the Gaussian process's kernel) need that.
#
# ### Three solvers, one start, one budget
#
# From the hand-tuned start, with {glue:text}`budget` evaluations each:
#
# - **Bayesian** (hnn-core's default): the run of section 2;
# - **CMA-ES** (hnn-core's `solver="cma"`, which needs the `cma` package): an evolution
#   strategy that samples a population around a mean and adapts its covariance
#   {cite}`hansen2001completely`; {glue:text}`cma_popsize` candidates per generation, an
#   initial step of a quarter of each range;
# - **COBYLA** (SciPy, correct bounds, parameters scaled to [0, 1], first step a quarter of
#   each range); it stops early once its steps shrink below a tolerance.


# %%
def to_params(unit: np.ndarray) -> dict[str, float]:
    """Parameters from fractions of their ranges (clipped to the bounds)."""
    return dict(zip(constraints, low + np.clip(unit, 0.0, 1.0) * (high - low)))


def to_unit(params: dict[str, float]) -> np.ndarray:
    return (np.array([params[name] for name in constraints]) - low) / (high - low)


def run_cobyla(start_params: dict[str, float], budget: int, step: float = 0.25) -> list:
    """SciPy's COBYLA on the scaled parameters, first step `step` (a fraction of each
    range); returns the evaluations it made."""
    first = len(objective.history)
    scipy.optimize.minimize(
        lambda unit: objective(to_params(unit)), to_unit(start_params), method="COBYLA",
        bounds=[(0.0, 1.0)] * len(constraints),
        options=dict(maxiter=budget, rhobeg=step, tol=1e-3),
    )
    return objective.history[first:]


def run_cma(start_params: dict[str, float], budget: int) -> list:
    """hnn-core's CMA-ES through our objective; returns the evaluations it made."""
    first = len(objective.history)
    cma_run = Optimizer(
        net, tstop=objective.tstop, constraints=constraints, set_params=set_params,
        initial_params=start_params, solver="cma", obj_fun=objective.hnn_obj_fun(),
        max_iter=max(1, budget // CMA_POPSIZE),  # generations of CMA_POPSIZE evaluations
    )
    with contextlib.redirect_stdout(io.StringIO()):  # cma prints a banner and a summary
        cma_run.fit(target=target_dipole, popsize=CMA_POPSIZE, sigma0=0.25, seed=SEED)
    return objective.history[first:]


with parallel:
    solver_runs = {
        "Bayesian": main_history,
        "CMA-ES": run_cma(initial_params, BUDGET),
        "COBYLA": run_cobyla(initial_params, BUDGET),
    }


def best_of(history: list) -> tuple[dict[str, float], float]:
    """The best evaluated parameters of a run and their RMSE."""
    return min(history, key=lambda item: item[1])


solver_best = {name: best_of(history) for name, history in solver_runs.items()}
glue("bayesian_rmse", solver_best["Bayesian"][1], display=False)
glue("cmaes_rmse", solver_best["CMA-ES"][1], display=False)
glue("cobyla_rmse", solver_best["COBYLA"][1], display=False)
glue("bayesian_mu", solver_best["Bayesian"][0]["evprox2_mu"], display=False)
glue("cmaes_mu", solver_best["CMA-ES"][0]["evprox2_mu"], display=False)
glue("cobyla_mu", solver_best["COBYLA"][0]["evprox2_mu"], display=False)
glue("cobyla_evaluations", len(solver_runs["COBYLA"]), display=False)
glue("cma_popsize", int(CMA_POPSIZE), display=False)
glue("cma_generations", max(1, BUDGET // CMA_POPSIZE), display=False)

# %% tags=["hide-input"]
solver_colors = {"Bayesian": plotting.COLORS["alternative"], "CMA-ES": plotting.COLORS["train"],
                 "COBYLA": plotting.COLORS["model"]}
fig, ax = plt.subplots(figsize=(6.5, 3.6))
for name, history in solver_runs.items():
    values = [value for _, value in history]
    ax.plot(np.arange(1, len(values) + 1), np.minimum.accumulate(values), "o-", ms=3,
            color=solver_colors[name], label=name)
ax.axhline(initial_rmse, ls=":", color=plotting.COLORS["data"], label="hand-tuned start")
ax.axhline(floor_rmse, ls="--", color=plotting.COLORS["truth"], label="planted parameters")
first_values = [history[0][1] for history in solver_runs.values()]
ax.set(xlabel="objective evaluations", ylabel="best RMSE so far (nAm)",
       title="Same start, same budget", ylim=(0, 1.1 * max(initial_rmse, *first_values)))
ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
ax.legend()
plt.show()

# %%
with parallel:
    table = parameter_table({name: params for name, (params, _) in solver_best.items()} | {"planted": planted})
table.round(3)

# %% [markdown]
# With the same budget, the best RMSE was {glue:text}`bayesian_rmse:.2f` nAm for the Bayesian
# solver, {glue:text}`cmaes_rmse:.2f` for CMA-ES and {glue:text}`cobyla_rmse:.2f` for COBYLA
# (which used {glue:text}`cobyla_evaluations` evaluations; CMA-ES ran
# {glue:text}`cma_generations` generations of {glue:text}`cma_popsize`). CMA-ES's first
# generation is spread around the start, so its curve can start above the hand-tuned RMSE;
# COBYLA's first steps probe each parameter in turn. Compare the `mu` each recovered
# ({glue:text}`bayesian_mu:.1f`, {glue:text}`cmaes_mu:.1f`, {glue:text}`cobyla_mu:.1f` ms)
# with the planted {glue:text}`planted_mu:.2f` ms, the weights with the planted one, and each
# best RMSE with the noise floor ({glue:text}`floor_rmse:.2f` nAm): short runs from one
# start show how each solver moves, not where the answer is.
#
# ### Restarts from several starting points
#
# A local solver finds the bottom of the valley it starts in. To learn whether there are
# other valleys, restart it from points spread over the box: {glue:text}`n_restarts` points
# of a Latin hypercube (each parameter's range cut into equal slices, each slice used once),
# COBYLA with {glue:text}`restart_budget` evaluations from each; the hand-tuned COBYLA run
# above ({glue:text}`cobyla_evaluations` evaluations) counts as one more. Restarts explore;
# once the most promising valley is known, a last local run refines its best point with small
# steps ({glue:text}`polish_budget` evaluations, first step a twentieth of each range).

# %%
starts = scipy.stats.qmc.LatinHypercube(d=len(constraints), seed=SEED).random(N_RESTARTS)
restart_runs = {"hand-tuned start": solver_runs["COBYLA"]}
restart_starts = {"hand-tuned start": initial_params}


def restart_from(unit: np.ndarray) -> list:
    """One COBYLA restart from a point given as fractions of the ranges; its evaluations."""
    with parallel:
        return run_cobyla(to_params(unit), RESTART_BUDGET)


# The restarts are independent: run_sweep runs them one after another here (each evaluation
# already keeps every core busy) or, with backend="dask", on the workers of a cluster.
restart_results = run_sweep(restart_from, [dict(unit=unit) for unit in starts],
                            backend=SWEEP_BACKEND, catch_errors=False)
for k, (unit, result) in enumerate(zip(starts, restart_results), start=1):
    restart_starts[f"restart {k}"] = to_params(unit)
    restart_runs[f"restart {k}"] = result.value
with parallel:
    # Explore, then exploit: refine the best point of every run so far.
    explored = {**{f"{name} (hand-tuned start)": best_of(history)
                   for name, history in solver_runs.items()},
                **{name: best_of(history) for name, history in restart_runs.items()}}
    polish_from_name, (polish_start, _) = min(explored.items(), key=lambda item: item[1][1])
    restart_starts["polish"] = polish_start
    restart_runs["polish"] = run_cobyla(polish_start, POLISH_BUDGET, step=0.05)
restart_best = {name: best_of(history) for name, history in restart_runs.items()}
tuned_params, tuned_rmse = restart_best["polish"]
explored_best = {name: best for name, best in restart_best.items() if name != "polish"}
# Spread of each parameter over the restarts' best points, as a fraction of its range.
restart_spread = {
    name: float(np.ptp([params[name] for params, _ in explored_best.values()]) / (hi - lo))
    for name, (lo, hi) in constraints.items()
}
glue("spread_mu", restart_spread["evprox2_mu"], display=False)
glue("spread_sigma", restart_spread["evprox2_sigma"], display=False)
glue("spread_weight", restart_spread["evprox2_ampa_L5_pyramidal"], display=False)
glue("n_restarts", int(N_RESTARTS), display=False)
glue("restart_budget", int(RESTART_BUDGET), display=False)
glue("polish_budget", int(POLISH_BUDGET), display=False)
glue("polish_from", polish_from_name, display=False)
glue("tuned_rmse", tuned_rmse, display=False)
glue("tuned_ratio", tuned_rmse / initial_rmse, display=False)
glue("tuned_mu", tuned_params["evprox2_mu"], display=False)
glue("tuned_sigma", tuned_params["evprox2_sigma"], display=False)
glue("tuned_weight", tuned_params["evprox2_ampa_L5_pyramidal"], display=False)
glue("tuned_mu_error", abs(tuned_params["evprox2_mu"] - planted["evprox2_mu"]), display=False)
with parallel:
    table = parameter_table({**{name: params for name, (params, _) in restart_best.items()},
                             "planted": planted})

# %% tags=["hide-input"]
axis_labels = {"evprox2_mu": "mu (ms)", "evprox2_sigma": "sigma (ms)",
               "evprox2_ampa_L5_pyramidal": "AMPA weight onto L5 pyramidal (µS)"}
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
values = np.array([value for _, value in restart_best.values()])
for ax, name in zip(axes, constraints):
    for row, (run, (params, value)) in enumerate(restart_best.items()):
        ax.annotate("", xy=(params[name], row), xytext=(restart_starts[run][name], row),
                    arrowprops=dict(arrowstyle="->", color="0.6", lw=0.8))
    points = ax.scatter([params[name] for params, _ in restart_best.values()],
                        np.arange(len(restart_best)), c=values, cmap="viridis_r",
                        vmin=floor_rmse, vmax=max(values.max(), floor_rmse * 1.01), zorder=3)
    ax.axvline(planted[name], ls="--", color=plotting.COLORS["truth"], label="planted")
    ax.set(xlim=constraints[name], xlabel=axis_labels[name], yticks=[])
axes[0].set(yticks=np.arange(len(restart_best)), yticklabels=list(restart_best))
axes[0].legend(loc="upper left", bbox_to_anchor=(0.0, -0.2))
fig.suptitle("COBYLA restarts: from the start (arrow tail) to the best point (dot)")
fig.colorbar(points, ax=axes, label="RMSE (nAm)", format="%.1f")
plotting.label_panels(axes)
plt.show()
table.round(3)

# %% [markdown]
# Different starts, different ends: as a fraction of each range, the restarts' best points
# spread over {glue:text}`spread_mu:.0%` for `mu`, {glue:text}`spread_sigma:.0%` for `sigma`
# and {glue:text}`spread_weight:.0%` for the weight. Spread like this means the objective
# has several valleys (a local solver stays in the one it starts in), or that a run was too
# short to reach the bottom; a single run cannot tell you which. Refining the best point so
# far (found by {glue:text}`polish_from`) gave the **tuned** estimate: RMSE
# {glue:text}`tuned_rmse:.2f` nAm ({glue:text}`tuned_ratio:.2f` of the initial, noise floor
# {glue:text}`floor_rmse:.2f`), `mu` = {glue:text}`tuned_mu:.2f` ms
# ({glue:text}`tuned_mu_error:.2f` ms from the planted value), `sigma` =
# {glue:text}`tuned_sigma:.2f` ms and weight {glue:text}`tuned_weight:.3f` µS.
#
# ### Identifiability: a 2-D slice of the objective
#
# Which parameters do the data pin down, and which trade off against each other? A slice
# of the objective answers it locally: fix `mu` at its planted value and evaluate the RMSE on
# a {glue:text}`slice_grid` × {glue:text}`slice_grid` grid of `sigma` and weight. Every point
# costs {glue:text}`n_trials` trials; the one-trial objective (the first trial of each point)
# comes for free from the cache, so the slice also shows what one trial per evaluation does.

# %%
slice_sigma = np.linspace(*constraints["evprox2_sigma"], SLICE_GRID)
slice_weight = np.linspace(*constraints["evprox2_ampa_L5_pyramidal"], SLICE_GRID)
slice_rmse = np.zeros((2, SLICE_GRID, SLICE_GRID))  # (all trials / one trial, weight, sigma)
with parallel:
    for i, weight in enumerate(slice_weight):
        for j, sigma in enumerate(slice_sigma):
            point = dict(planted, evprox2_sigma=sigma, evprox2_ampa_L5_pyramidal=weight)
            slice_rmse[0, i, j] = objective.rmse(point)
            slice_rmse[1, i, j] = objective.rmse(point, n_trials=1)
# The "flat" region: grid points within 25 % of the slice's minimum.
flat = slice_rmse <= 1.25 * slice_rmse.min(axis=(1, 2), keepdims=True)
flat_fraction = flat.mean(axis=(1, 2))
glue("slice_grid", int(SLICE_GRID), display=False)
glue("flat_fraction_all", float(flat_fraction[0]), display=False)
glue("flat_fraction_one", float(flat_fraction[1]), display=False)
best_cells = [np.unravel_index(surface.argmin(), surface.shape) for surface in slice_rmse]
glue("all_trials_sigma", float(slice_sigma[best_cells[0][1]]), display=False)
glue("all_trials_weight", float(slice_weight[best_cells[0][0]]), display=False)
glue("one_trial_sigma", float(slice_sigma[best_cells[1][1]]), display=False)
glue("one_trial_weight", float(slice_weight[best_cells[1][0]]), display=False)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
levels = np.linspace(slice_rmse.min(), np.quantile(slice_rmse, 0.9), 12)
for ax, surface, best, title in zip(axes, slice_rmse, best_cells, (
        f"{N_TRIALS} trials per evaluation", "1 trial per evaluation")):
    filled = ax.contourf(slice_sigma, slice_weight, surface, levels=levels, cmap="viridis",
                         extend="max")
    ax.contour(slice_sigma, slice_weight, surface, levels=[1.25 * surface.min()], colors="w",
               linewidths=1.2)
    ax.plot(planted["evprox2_sigma"], planted["evprox2_ampa_L5_pyramidal"], "x", ms=10, mew=2,
            color=plotting.COLORS["alternative"], label="planted")
    ax.plot(slice_sigma[best[1]], slice_weight[best[0]], "o", mfc="none", mec="w", ms=10,
            label="grid minimum")
    ax.set(xlabel="sigma (ms)", title=title)
axes[0].set_ylabel("AMPA weight onto L5 pyramidal (µS)")
axes[0].legend(loc="lower left", facecolor="0.9", frameon=True)
fig.colorbar(filled, ax=axes, label="RMSE (nAm)", format="%.1f")
fig.suptitle("RMSE with mu at its planted value (white line: 1.25 × each panel's minimum)")
plotting.label_panels(axes)
plt.show()

# %% [markdown]
# At the default and full scales (the checks assert what follows; the smoke scale's grid is
# too coarse to show it): with {glue:text}`n_trials` trials per evaluation (left), the
# region within 25 % of the minimum covers {glue:text}`flat_fraction_all:.0%` of the slice, and the grid minimum sits
# at `sigma` = {glue:text}`all_trials_sigma:.1f` ms and weight
# {glue:text}`all_trials_weight:.2f` µS, next to the planted point: once the timing is right,
# the spread and the strength of the volley leave distinct marks on the averaged dipole. With
# one trial per evaluation (right) that region covers {glue:text}`flat_fraction_one:.0%`
# of the slice (minimum at {glue:text}`one_trial_sigma:.1f` ms and
# {glue:text}`one_trial_weight:.2f` µS): one volley has no spread to measure, so `sigma` only
# moves its single arrival time, and different spreads and strengths fit that one draw
# about equally well. This is the one-trial overfitting of section 2, seen on the objective.
#
# A slice fixes the other parameters, so it shows trade-offs near one point only. The
# restarts show the global picture: runs that end far apart with similar RMSEs trade timing
# against spread and strength (an earlier, weaker volley can mimic part of a later, stronger
# one). Exercise 2 looks inside two different solutions, layer by layer.
#
# ## 5. Parallelism
#
# Each evaluation simulates {glue:text}`n_trials` independent trials: they can run at the
# same time. hnn-core's `JoblibBackend(n_jobs=...)`, used as a context manager around any
# simulation, sends trials to worker processes on one machine. We use as many as there are
# cores (`os.cpu_count()`, here {glue:text}`n_jobs`): more processes than cores only queue.
# The timing below simulates two new parameter sets, one with a single process and one on
# every core.

# %%
timing_points = [to_params(np.array([0.55, 0.45, 0.6])), to_params(np.array([0.6, 0.4, 0.55]))]
tic = time.perf_counter()
with JoblibBackend(n_jobs=1):
    objective.trials(timing_points[0])
one_process_s = time.perf_counter() - tic
tic = time.perf_counter()
with parallel:
    objective.trials(timing_points[1])
all_cores_s = time.perf_counter() - tic
glue("one_process_s", one_process_s, display=False)
glue("all_cores_s", all_cores_s, display=False)
glue("speedup", one_process_s / all_cores_s, display=False)
glue("n_simulations", int(objective.n_simulations), display=False)
print(f"one process: {one_process_s:.1f} s; {N_JOBS} processes: {all_cores_s:.1f} s")

# %% [markdown]
# One evaluation took {glue:text}`one_process_s:.1f` s in one process and
# {glue:text}`all_cores_s:.1f` s on {glue:text}`n_jobs` (a speed-up of
# {glue:text}`speedup:.1f`; on a machine that other work shares, less than the number of
# cores). So far this chapter has simulated {glue:text}`n_simulations` trials.
#
# For more cores than one machine has, or for the full column, hnn-core's `MPIBackend`
# (`with MPIBackend(n_procs=..., mpi_cmd="mpiexec"):`) splits each *trial's cells* over
# processes with NEURON's MPI support; it needs an MPI installation and `mpi4py`, which are
# not part of this course's environment. At the `full` scale (the full 10 × 10 column,
# finer time step, more trials and evaluations) each simulation costs many times more, and
# there are more of them. The run-time line at the top of this chapter gives the full run's
# time on 2 cores, estimated by `benchmarks/dipole_full.py` from timed full-scale
# simulations and a count of the chapter's simulations: plan for a many-core machine or a
# cluster.
#
# The restarts of section 4 are parallel at a coarser grain: each is a whole optimization
# that needs nothing from the others. They ran through `course_utils.sweep.run_sweep`, one
# after another (`SWEEP_BACKEND = "serial"`), because each evaluation already used every
# core. With a Dask cluster, connect a client and change one word; each restart then runs on
# a worker, and its evaluations come back with it:
#
# ```python
# from dask.distributed import Client
# client = Client("tcp://scheduler-address:8786")  # your cluster's scheduler
# SWEEP_BACKEND = "dask"
# ```
#
# The evaluations a remote restart made are returned to this notebook, but they are not
# added to the objective's cache here, so the count of simulations above leaves them out.
#
# ## Exercises
#
# ### Exercise 1: one trial per evaluation
#
# Fit with one trial per evaluation: run SciPy's COBYLA (as `run_cobyla` does, from the
# hand-tuned start, `BUDGET` evaluations) on `objective.rmse(params, n_trials=1)`.
# Then score the parameters it finds with all `N_TRIALS` trials, as you would score a model on
# held-out data, and compare with the `N_TRIALS`-trial COBYLA fit of section 4. Plot the
# target and both fits' `N_TRIALS`-trial averages.


# %% tags=["exercise"]
def one_trial_fit(start_params: dict[str, float], budget: int) -> dict[str, float]:
    """COBYLA on the one-trial RMSE (scaled parameters); return the best parameters."""
    # Your code: minimize lambda unit: objective.rmse(to_params(unit), n_trials=1) with
    # scipy.optimize.minimize(method="COBYLA", ...), keep the best point seen.
    ...


# %% tags=["solution", "hide-cell"]
def one_trial_fit(start_params: dict[str, float], budget: int) -> dict[str, float]:
    """COBYLA on the one-trial RMSE (scaled parameters); return the best parameters."""
    seen = []

    def one_trial_rmse(unit):
        params = to_params(unit)
        seen.append((params, objective.rmse(params, n_trials=1)))
        return seen[-1][1]

    scipy.optimize.minimize(one_trial_rmse, to_unit(start_params), method="COBYLA",
                            bounds=[(0.0, 1.0)] * len(constraints),
                            options=dict(maxiter=budget, rhobeg=0.25, tol=1e-3))
    return min(seen, key=lambda item: item[1])[0]


with parallel:
    one_trial_params = one_trial_fit(initial_params, BUDGET)
    scores = {
        "fit on 1 trial": (objective.rmse(one_trial_params, n_trials=1),
                           objective.rmse(one_trial_params)),
        f"fit on {N_TRIALS} trials": (objective.rmse(solver_best["COBYLA"][0], n_trials=1),
                                      solver_best["COBYLA"][1]),
    }
    one_trial_average = objective.average(one_trial_params)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw=dict(width_ratios=[3, 2]))
axes[0].plot(target.times, target.dipole, ".", ms=4, color=plotting.COLORS["data"], label="target")
axes[0].plot(objective.times, one_trial_average, color=plotting.COLORS["alternative"],
             label="fit on 1 trial")
axes[0].plot(objective.times, objective.average(solver_best["COBYLA"][0]),
             color=plotting.COLORS["model"], label=f"fit on {N_TRIALS} trials")
axes[0].set(xlabel="time (ms)", ylabel=f"dipole (nAm), average of {N_TRIALS} trials",
            title="Both fits, scored as averages")
axes[0].legend(loc="lower right")
positions = np.arange(len(scores))
axes[1].bar(positions - 0.2, [s[0] for s in scores.values()], 0.4, label="on the first trial",
            color=plotting.COLORS["train"])
axes[1].bar(positions + 0.2, [s[1] for s in scores.values()], 0.4,
            label=f"on {N_TRIALS} trials", color=plotting.COLORS["test"])
axes[1].set(xticks=positions, xticklabels=list(scores), ylabel="RMSE (nAm)",
            title="RMSE to the target", ylim=(0, 1.35 * max(max(v) for v in scores.values())))
axes[1].legend(loc="upper center", ncol=2)
plotting.label_panels(axes)
glue("exercise1_figure", fig, display=False)
glue("ex1_train", float(scores["fit on 1 trial"][0]), display=False)
glue("ex1_test", float(scores["fit on 1 trial"][1]), display=False)
glue("ex1_mu", float(one_trial_params["evprox2_mu"]), display=False)
glue("ex1_sigma", float(one_trial_params["evprox2_sigma"]), display=False)
plt.close(fig)
if config.get_scale() != "smoke":  # the figure check's claim: fitted to one trial, worse on all trials
    assert scores["fit on 1 trial"][1] > solver_best["COBYLA"][1], scores

# %% [markdown]
# **Figure check.** Scored on the one trial it was fitted on, the one-trial fit reaches
# {glue:text}`ex1_train:.2f` nAm; averaged over all trials its RMSE is
# {glue:text}`ex1_test:.2f` nAm, against {glue:text}`cobyla_rmse:.2f` nAm for the fit on all
# trials (same solver, start and budget). It ended at `mu` = {glue:text}`ex1_mu:.1f` ms and
# `sigma` = {glue:text}`ex1_sigma:.1f` ms: compare them with the fit on all trials and with
# the planted values. A fit is judged by its score on trials it did not see.
#
# ```{glue:figure} exercise1_figure
# :name: fig-dipole-exercise-1
#
# Expected result of exercise 1: a fit on one trial and a fit on all trials, scored on both.
# ```
#
# ### Exercise 2: which layer makes the late peak?
#
# The best point from the hand-tuned start and the planted parameters fit the target with
# different drives (and different RMSEs). hnn-core records the dipole of each layer
# (`dipole.data["L2"]`, `dipole.data["L5"]`; `"agg"` is their sum). For both parameter sets,
# simulate `N_TRIALS` trials (a copy of `net`, `set_params`, then `simulate_dipole` with
# `tstop=objective.tstop` and `dt=DT_MS`), scale and smooth each trial as the objective does,
# average them with `average_dipoles`, and plot the layer 2/3 and layer 5 dipoles. Which
# layer carries the late peak in each?


# %% tags=["exercise"]
def layer_dipoles(params: dict[str, float]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Times (ms) and the trial-averaged dipole of each layer ("L2", "L5", "agg") in nAm."""
    # Your code: from hnn_core import simulate_dipole, average_dipoles; copy net, apply
    # set_params, simulate, dipole.scale(scale_factor).smooth(SMOOTH_MS) for each trial.
    ...


# %% tags=["solution", "hide-cell"]
from hnn_core import average_dipoles, simulate_dipole  # noqa: E402


def layer_dipoles(params: dict[str, float]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Times (ms) and the trial-averaged dipole of each layer ("L2", "L5", "agg") in nAm."""
    column = net.copy()
    set_params(column, params)
    trials = simulate_dipole(column, tstop=objective.tstop, dt=DT_MS, n_trials=N_TRIALS,
                             verbose=False)
    for trial in trials:
        trial.scale(scale_factor).smooth(SMOOTH_MS)
    average = average_dipoles(trials)
    return average.times, {layer: average.data[layer] for layer in ("L2", "L5", "agg")}


hand_start_name, (hand_start_best, _) = min(solver_best.items(), key=lambda item: item[1][1])
with parallel:
    layers = {f"best from the hand-tuned start ({hand_start_name})": layer_dipoles(hand_start_best),
              "planted": layer_dipoles(planted)}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
late_l5 = {}
for ax, (name, (times, data)) in zip(axes, layers.items()):
    ax.plot(target.times, target.dipole, ".", ms=3, color=plotting.COLORS["data"], label="target")
    ax.plot(times, data["agg"], color=plotting.COLORS["truth"], label="aggregate")
    ax.plot(times, data["L2"], color=plotting.COLORS["train"], label="layer 2/3")
    ax.plot(times, data["L5"], color=plotting.COLORS["test"], label="layer 5")
    ax.set(xlabel="time (ms)", title=name)
    late_l5[name] = float(data["L5"][times >= 100.0].max())
axes[0].set_ylabel("dipole (nAm)")
axes[0].legend(loc="upper left")
plotting.label_panels(axes)
glue("exercise2_figure", fig, display=False)
glue("ex2_l5_hand", late_l5[next(iter(layers))], display=False)
glue("ex2_l5_planted", late_l5["planted"], display=False)
plt.close(fig)

# %% [markdown]
# **Figure check.** After 100 ms the layer 5 dipole peaks at {glue:text}`ex2_l5_hand:.1f` nAm
# for the best point from the hand-tuned start and at {glue:text}`ex2_l5_planted:.1f` nAm for
# the planted parameters; compare how much of the late peak each layer carries. Only the sum
# reaches the MEG sensor: data that separate the layers (laminar recordings, or spikes) would
# tell such solutions apart even where their sums agree.
#
# ```{glue:figure} exercise2_figure
# :name: fig-dipole-exercise-2
#
# Expected result of exercise 2: layer 2/3 and layer 5 dipoles of two parameter sets.
# ```
#
# ## On real data
#
# The recording behind this chapter is HNN's example: the source-localized MEG dipole after
# a threshold-level tap to the middle finger, averaged over the trials in which the tap was
# detected {cite}`jones2007neural`. It is downloaded once and verified by its checksum;
# without network the cell says so in one line and the chapter goes on (pre-download with
# `python -m course_utils fetch evoked_dipole`). Your own recording works the same way,
# `load_evoked_dipole("my_dipole.txt")`, from a text file of two columns: time (ms) and
# dipole (nAm).

# %%
try:
    real = load_evoked_dipole(source="real")
except DataFetchError as error:
    real = None
    print(f"Real data skipped: {error.summary}")

if real is not None:
    real_dipole = Dipole(real.times, real.dipole)
    from hnn_core.dipole import _rmse  # noqa: E402

    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(real.times, real.dipole, ".", ms=4, color=plotting.COLORS["data"], label="MEG")
    for name, params, color in (("hand-tuned", initial_params, plotting.COLORS["alternative"]),
                                ("tuned on the simulated target", tuned_params,
                                 plotting.COLORS["model"])):
        average = objective.average(params)  # cached: no new simulation
        error_nam = _rmse(Dipole(objective.times, average), real_dipole, tstop=objective.tstop)
        ax.plot(objective.times, average, color=color, label=f"{name} (RMSE {error_nam:.1f} nAm)")
    ax.set(xlabel="time (ms)", ylabel="dipole (nAm)", title="The recording and the reduced column")
    ax.legend(loc="lower right")
    plt.show()

# %% [markdown]
# To fit the recording, pass `real_dipole` as the target of a new `DipoleObjective` (or of
# the Optimizer's built-in `"dipole_rmse"`) and run the same solvers; with the reduced column
# the scale factor is a guess, so fit it too or use the full column at the `full` scale.
#
# ## Checks
#
# The chapter's claims, asserted against the planted truth. They run at every scale and fail
# the book build if the science breaks; the smoke scale's runs are too short to find the
# answer, so the claims about the answer are checked at the default and full scales.

# %%
scale = config.get_scale()
assert abs(builtin_rmse - initial_rmse) <= 1e-9 * initial_rmse, (builtin_rmse, initial_rmse)
assert n_violated > 0, "hnn-core's cobyla constraints now accept the planted point: update section 4"
assert len(main_history) == BUDGET, len(main_history)
assert gp_warnings, "the Gaussian process no longer collapses: update section 2"
assert main_rmse <= initial_rmse and tuned_rmse <= min(v for _, v in explored.values()), (
    initial_rmse, main_rmse, tuned_rmse)
if scale != "smoke":
    assert tuned_rmse <= 0.5 * initial_rmse, (tuned_rmse, initial_rmse)
    assert abs(tuned_params["evprox2_mu"] - planted["evprox2_mu"]) <= 3.0, tuned_params
    # The slice: all trials pin sigma and weight near the truth; one trial leaves them loose.
    assert flat_fraction[1] > flat_fraction[0], flat_fraction
    sigma_step, weight_step = np.diff(slice_sigma)[0], np.diff(slice_weight)[0]
    assert abs(slice_sigma[best_cells[0][1]] - planted["evprox2_sigma"]) <= sigma_step
    assert abs(slice_weight[best_cells[0][0]] - planted["evprox2_ampa_L5_pyramidal"]) <= weight_step
print("All checks passed.")

# %% [markdown]
# ## Summary
#
# - hnn-core's column turns three evoked drives into a dipole; scaled to the column's size
#   and smoothed, it compares with MEG. Fitting the second proximal drive lowered the RMSE
#   from {glue:text}`initial_rmse:.2f` to {glue:text}`tuned_rmse:.2f` nAm (noise floor
#   {glue:text}`floor_rmse:.2f`), with `mu` {glue:text}`tuned_mu_error:.2f` ms from the truth.
# - The optimizer has hyperparameters too. The solver matters: hnn-core's Bayesian solver
#   lost its Gaussian process's length scale here and searched almost at random, and its
#   COBYLA is broken in 0.6.1. Scale parameters to comparable ranges, compare solvers
#   at the same budget and from the same start, and average several trials per evaluation,
#   or the fit chases one trial's noise.
# - Short runs from one start can stop far from the answer; restarts from spread-out points
#   reveal other valleys, and a short local run refines the best.
# - A low RMSE is not identifiability: a slice of the objective shows which parameters the
#   data pin down near a solution, restarts show which solutions compete.
# - Simulations dominate the cost: cache and reuse them, run trials in parallel on your
#   cores (`JoblibBackend`), and use MPI for the full column.
#
# **What's next.** This is the last chapter. The same questions, which knobs, chosen how,
# checked against what, run through every chapter of the course: go back to any of them
# with a solver comparison or a restart in mind.
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
