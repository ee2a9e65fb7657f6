"""Ground truth for chapter 3: a photostimulation experiment with planted low-rank dynamics.

A population of ``d`` neurons follows a stable autoregressive model of order ``k``,

.. math::

    x_{t+1} = v + \\sum_{s=0}^{k-1} \\left(A_s x_{t-s} + B_s u_{t-s}\\right) + \\varepsilon_t,
    \\qquad A_s = D_{A_s} + U_{A_s} V_{A_s}^\\top, \\quad B_s = D_{B_s} + U_{B_s} V_{B_s}^\\top,

with diagonal ``D`` and rank-``r`` factors ``U``, ``V`` (the model of Wagenmaker et al. 2024).
``u_t`` is the photostimulation pattern: groups of ``group_size`` neurons are stimulated
together for ``stim_frames`` frames at the start of each trial of ``trial_frames`` frames,
every group many times, in a random order. The recorded activity is ``x`` plus independent
observation (imaging) noise. Some groups are held out: a learner fits models on the others
and tests whether they predict responses to stimulation patterns they have never seen.

:func:`simulate_photostim`
    Runs the experiment; returns a :class:`PhotostimSimulation` with the true
    :class:`PhotostimDynamics` attached.
:func:`simulate_trial_block`
    Records trials of patterns chosen by the caller with given dynamics: the next block of
    an experiment whose patterns are designed as it goes (chapter 3's active learning).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from course_utils.validation import check_positive_ints

__all__ = ["PhotostimDynamics", "PhotostimSimulation", "simulate_photostim", "simulate_trial_block", "make_dynamics"]


@dataclass(frozen=True)
class PhotostimDynamics:
    """The true parameters of the autoregressive population model.

    Attributes
    ----------
    diag_A, diag_B
        Diagonals of the ``D`` matrices, shape ``(order, n_neurons)``: a neuron's own
        history (``diag_A``) and its direct response to being stimulated (``diag_B``).
    U_A, V_A, U_B, V_B
        Low-rank factors, shape ``(order, n_neurons, rank)``.
    bias
        Constant input ``v``, shape ``(n_neurons,)``.
    noise_std
        Standard deviation of the innovation noise ``epsilon`` (the activity the model
        cannot predict), per neuron and frame.
    obs_noise_std
        Standard deviation of the observation noise added to the recorded activity.
    """

    diag_A: np.ndarray
    U_A: np.ndarray
    V_A: np.ndarray
    diag_B: np.ndarray
    U_B: np.ndarray
    V_B: np.ndarray
    bias: np.ndarray
    noise_std: float
    obs_noise_std: float

    @property
    def order(self) -> int:
        """Number of past frames ``k`` the model uses."""
        return int(self.diag_A.shape[0])

    @property
    def n_neurons(self) -> int:
        """Number of neurons ``d``."""
        return int(self.diag_A.shape[1])

    @property
    def rank(self) -> int:
        """Rank ``r`` of the low-rank parts."""
        return int(self.U_A.shape[2])

    @property
    def A(self) -> np.ndarray:
        """Full dynamics matrices ``A_s``, shape ``(order, d, d)``."""
        return _compose(self.diag_A, self.U_A, self.V_A)

    @property
    def B(self) -> np.ndarray:
        """Full input matrices ``B_s``, shape ``(order, d, d)``."""
        return _compose(self.diag_B, self.U_B, self.V_B)

    def spectral_radius(self) -> float:
        """Largest absolute eigenvalue of the companion matrix (below 1: stable)."""
        return _spectral_radius(self.A)

    def baseline(self) -> np.ndarray:
        """Mean activity without stimulation, ``(I - sum_s A_s)^{-1} v``."""
        return np.linalg.solve(np.eye(self.n_neurons) - self.A.sum(axis=0), self.bias)

    def response(self, pattern: np.ndarray, n_frames: int, stim_frames: int) -> np.ndarray:
        """Noiseless response to stimulating ``pattern`` for ``stim_frames`` frames.

        Parameters
        ----------
        pattern
            Stimulation of each neuron, shape ``(n_neurons,)`` (1 for a target, 0 otherwise),
            or a batch of patterns, shape ``(n_patterns, n_neurons)``.
        n_frames
            Number of frames to return; frame 0 is the first stimulated frame.
        stim_frames
            Number of frames the stimulation lasts.

        Returns
        -------
        numpy.ndarray
            Activity relative to the baseline, shape ``(n_frames, n_neurons)`` (or
            ``(n_patterns, n_frames, n_neurons)``). Frame 0 is still at baseline: the
            stimulation of frame ``t`` shows from frame ``t + 1`` on.
        """
        patterns = np.asarray(pattern, dtype=float)
        single = patterns.ndim == 1
        patterns = np.atleast_2d(patterns)
        if patterns.shape[1] != self.n_neurons:
            raise ValueError(
                f"pattern must have {self.n_neurons} entries (one per neuron), got shape {patterns.shape}."
            )
        out = _run_dynamics(self.A, self.B, np.zeros(self.n_neurons), patterns, n_frames, stim_frames)
        return out[0] if single else out


@dataclass(frozen=True)
class PhotostimSimulation:
    """A simulated photostimulation experiment, one row per imaging frame.

    Attributes
    ----------
    activity
        Recorded activity (latent activity plus observation noise), shape
        ``(n_frames, n_neurons)``.
    stimulation
        Photostimulation pattern ``u`` delivered in each frame, shape ``(n_frames, n_neurons)``.
    trial_onsets
        First stimulated frame of each trial, shape ``(n_trials,)``, increasing.
    trial_group
        Which group each trial stimulated, shape ``(n_trials,)``.
    groups
        Neurons of each group, shape ``(n_groups, group_size)``.
    heldout_groups
        Indices of the groups whose trials form the held-out set.
    trial_frames, stim_frames
        Frames per trial and stimulated frames at the start of each trial.
    dynamics
        The true model.
    """

    activity: np.ndarray
    stimulation: np.ndarray
    trial_onsets: np.ndarray
    trial_group: np.ndarray
    groups: np.ndarray
    heldout_groups: np.ndarray
    trial_frames: int
    stim_frames: int
    dynamics: PhotostimDynamics

    @property
    def patterns(self) -> np.ndarray:
        """Stimulation pattern of each group (0/1), shape ``(n_groups, n_neurons)``."""
        patterns = np.zeros((self.groups.shape[0], self.activity.shape[1]))
        np.put_along_axis(patterns, self.groups, 1.0, axis=1)
        return patterns

    @property
    def is_heldout_trial(self) -> np.ndarray:
        """Whether each trial stimulated a held-out group, shape ``(n_trials,)``."""
        return np.isin(self.trial_group, self.heldout_groups)


def _compose(diag: np.ndarray, U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``D_s + U_s V_s^T`` for every lag ``s``."""
    return np.einsum("sd,de->sde", diag, np.eye(diag.shape[1])) + U @ np.swapaxes(V, 1, 2)


def _spectral_radius(A: np.ndarray) -> float:
    """Largest absolute eigenvalue of the companion matrix of ``A_0, ..., A_{k-1}``."""
    order, d, _ = A.shape
    companion = np.zeros((order * d, order * d))
    companion[:d] = np.concatenate(list(A), axis=1)
    companion[d:, :-d] = np.eye((order - 1) * d)
    return float(np.max(np.abs(np.linalg.eigvals(companion))))


def _run_dynamics(
    A: np.ndarray, B: np.ndarray, bias: np.ndarray, patterns: np.ndarray, n_frames: int, stim_frames: int
) -> np.ndarray:
    """Noiseless trajectories from zero for a batch of patterns stimulated on frames 0..stim-1."""
    order = A.shape[0]
    n_patterns, d = patterns.shape
    x = np.zeros((n_patterns, n_frames + order, d))  # ``order`` frames of zero history first
    u = np.zeros_like(x)
    u[:, order : order + stim_frames] = patterns[:, None, :]
    for t in range(order, n_frames + order - 1):
        drive = bias + sum(x[:, t - s] @ A[s].T + u[:, t - s] @ B[s].T for s in range(order))
        x[:, t + 1] = drive
    return x[:, order:]


def _orthonormal(rng: np.random.Generator, d: int, r: int) -> np.ndarray:
    """A random ``d x r`` matrix with orthonormal columns."""
    q, _ = np.linalg.qr(rng.standard_normal((d, r)))
    return q


def make_dynamics(
    n_neurons: int,
    rank: int,
    order: int,
    *,
    seed: int | np.random.Generator,
    group_size: int = 10,
    recurrent_gain: float = 1.5,
    direct_gain: float = 5.0,
    indirect_gain: float = 1.5,
    noise_std: float = 1.0,
    obs_noise_std: float = 0.3,
    max_radius: float = 0.9,
) -> PhotostimDynamics:
    """Draw stable diagonal-plus-low-rank dynamics.

    Parameters
    ----------
    n_neurons, rank, order
        ``d``, ``r`` and ``k``.
    seed
        Seed, or a generator whose stream to continue.
    group_size
        Size of the stimulated groups, used to scale the indirect responses.
    recurrent_gain
        Largest singular value of the low-rank part of ``A_0`` (later lags are weaker).
        Random orthonormal ``U`` and ``V`` make the low-rank part nearly non-normal: it
        amplifies activity along ``U`` without destabilizing the dynamics.
    direct_gain
        Mean drive a stimulated neuron receives per stimulated frame (``diag_B[0]``).
    indirect_gain
        Root-mean-square drive, per frame, that stimulating a random group gives to the other
        neurons through the low-rank part of ``B_0``.
    noise_std, obs_noise_std
        Innovation and observation noise (standard deviations).
    max_radius
        The low-rank part of ``A`` is shrunk until the companion matrix's spectral radius
        is at most this value.

    Returns
    -------
    PhotostimDynamics
        The true model.
    """
    rng = np.random.default_rng(seed)
    d, r, k = n_neurons, rank, order
    diag_A = np.empty((k, d))
    diag_A[0] = rng.uniform(0.4, 0.7, d)
    for s in range(1, k):
        diag_A[s] = rng.uniform(-0.25, 0.0, d) / s
    lag_decay = 0.5 ** np.arange(k)  # later lags weigh less
    singular = np.linspace(1.0, 0.7, r)
    U_A = np.empty((k, d, r))
    V_A = np.empty((k, d, r))
    for s in range(k):
        scale = np.sqrt(recurrent_gain * lag_decay[s] * singular)
        U_A[s] = _orthonormal(rng, d, r) * scale
        V_A[s] = _orthonormal(rng, d, r) * scale
    for _ in range(50):
        if _spectral_radius(_compose(diag_A, U_A, V_A)) <= max_radius:
            break
        U_A, V_A = U_A * 0.95, V_A * 0.95  # the low-rank part shrinks by 0.95**2 per round
    else:
        raise RuntimeError("Could not draw stable dynamics: lower recurrent_gain or the diagonal.")

    diag_B = np.empty((k, d))
    diag_B[0] = direct_gain * rng.uniform(0.75, 1.25, d)
    for s in range(1, k):
        diag_B[s] = 0.5 * diag_B[0] * 0.5 ** (s - 1)
    U_B = np.empty((k, d, r))
    V_B = np.empty((k, d, r))
    for s in range(k):
        U_B[s] = _orthonormal(rng, d, r) * np.sqrt(singular)
        V_B[s] = _orthonormal(rng, d, r) * np.sqrt(singular)
    # Scale the low-rank part of B so that a random group of `group_size` neurons drives the
    # others by `indirect_gain` (root mean square over neurons and groups) per frame.
    probe = np.zeros((64, d))
    for row in probe:
        row[rng.choice(d, size=min(group_size, d), replace=False)] = 1.0
    rms = np.sqrt(np.mean((probe @ (U_B[0] @ V_B[0].T).T) ** 2))
    scale = np.sqrt(indirect_gain / rms)
    per_lag = scale * np.sqrt(lag_decay)[:, None, None]
    U_B, V_B = U_B * per_lag, V_B * per_lag
    bias = rng.uniform(0.0, 0.3, d)
    return PhotostimDynamics(diag_A, U_A, V_A, diag_B, U_B, V_B, bias, float(noise_std), float(obs_noise_std))


def _make_groups(
    rng: np.random.Generator, d: int, group_size: int, n_groups: int, n_heldout: int
) -> tuple[np.ndarray, np.ndarray]:
    """Groups drawn from successive random permutations, so the training groups cover every
    neuron when there are enough of them; the held-out groups are the last ``n_heldout``."""
    n_train = n_groups - n_heldout
    order = np.concatenate([rng.permutation(d) for _ in range(-(-n_train * group_size // d) + 1)])
    train = [np.sort(order[i * group_size : (i + 1) * group_size]) for i in range(n_train)]
    # A group may repeat a neuron where two permutations meet: redraw those few.
    train = [g if np.unique(g).size == group_size else np.sort(rng.choice(d, group_size, replace=False)) for g in train]
    seen = {tuple(g) for g in train}
    heldout = []
    while len(heldout) < n_heldout:
        g = np.sort(rng.choice(d, group_size, replace=False))
        if tuple(g) not in seen:
            seen.add(tuple(g))
            heldout.append(g)
    groups = np.array(train + heldout, dtype=int).reshape(n_groups, group_size)
    return groups, np.arange(n_train, n_groups)


def simulate_photostim(
    n_neurons: int = 100,
    rank: int = 3,
    order: int = 2,
    *,
    n_groups: int = 32,
    n_heldout_groups: int = 8,
    group_size: int = 10,
    n_repeats: int = 4,
    trial_frames: int = 15,
    stim_frames: int = 3,
    lead_in_frames: int = 30,
    seed: int = 0,
    dynamics: PhotostimDynamics | None = None,
    **dynamics_options: float,
) -> PhotostimSimulation:
    """Simulate a two-photon photostimulation experiment with low-rank population dynamics.

    Parameters
    ----------
    n_neurons, rank, order
        Population size ``d``, planted rank ``r`` and autoregressive order ``k``.
    n_groups
        Number of distinct stimulation groups (patterns).
    n_heldout_groups
        How many of them form the held-out set (never used for fitting).
    group_size
        Neurons stimulated together in each group.
    n_repeats
        Trials per group.
    trial_frames
        Frames per trial; a new group is stimulated every ``trial_frames`` frames.
    stim_frames
        Stimulated frames at the start of each trial.
    lead_in_frames
        Unstimulated frames before the first trial (spontaneous activity).
    seed
        Seed of the random generator (dynamics, groups, trial order, noise).
    dynamics
        True dynamics to use instead of drawing them (``rank`` and ``order`` are then read
        from it).
    **dynamics_options
        Passed to :func:`make_dynamics` (``recurrent_gain``, ``direct_gain``,
        ``indirect_gain``, ``noise_std``, ``obs_noise_std``, ``max_radius``).

    Returns
    -------
    PhotostimSimulation
        Activity, stimulation, trial structure and the true dynamics.

    Raises
    ------
    ValueError
        On non-positive sizes, groups larger than the population, no training group left,
        a stimulation longer than a trial, or dynamics of another population size.
    """
    check_positive_ints(
        n_neurons=n_neurons,
        rank=rank,
        order=order,
        n_groups=n_groups,
        group_size=group_size,
        n_repeats=n_repeats,
        trial_frames=trial_frames,
        stim_frames=stim_frames,
    )
    if group_size > n_neurons:
        raise ValueError(f"group_size={group_size} exceeds n_neurons={n_neurons}.")
    if not 0 <= n_heldout_groups < n_groups:
        raise ValueError(
            f"n_heldout_groups must be between 0 and n_groups - 1 = {n_groups - 1}, got {n_heldout_groups}."
        )
    if stim_frames >= trial_frames:
        raise ValueError(f"stim_frames={stim_frames} must be shorter than trial_frames={trial_frames}.")
    if rank >= n_neurons:
        raise ValueError(f"rank={rank} must be below n_neurons={n_neurons} to be low rank.")
    rng = np.random.default_rng(seed)
    if dynamics is None:
        dynamics = make_dynamics(n_neurons, rank, order, seed=rng, group_size=group_size, **dynamics_options)
    elif dynamics.n_neurons != n_neurons:
        raise ValueError(f"dynamics are for {dynamics.n_neurons} neurons, not n_neurons={n_neurons}.")
    groups, heldout = _make_groups(rng, n_neurons, group_size, n_groups, n_heldout_groups)
    trial_group = rng.permutation(np.repeat(np.arange(n_groups), n_repeats))
    patterns = np.zeros((n_groups, n_neurons))
    np.put_along_axis(patterns, groups, 1.0, axis=1)
    stimulation, trial_onsets = _stimulation(patterns[trial_group], trial_frames, stim_frames, lead_in_frames)
    activity = _record(dynamics, stimulation, rng)
    return PhotostimSimulation(
        activity=activity,
        stimulation=stimulation,
        trial_onsets=trial_onsets,
        trial_group=trial_group,
        groups=groups,
        heldout_groups=heldout,
        trial_frames=int(trial_frames),
        stim_frames=int(stim_frames),
        dynamics=dynamics,
    )


def simulate_trial_block(
    dynamics: PhotostimDynamics,
    patterns: np.ndarray,
    n_repeats: int,
    *,
    seed: int | np.random.Generator,
    trial_frames: int = 15,
    stim_frames: int = 3,
    lead_in_frames: int = 30,
) -> tuple[np.ndarray, np.ndarray]:
    """Record a new block of trials: each pattern stimulated ``n_repeats`` times, in random order.

    The block starts from the baseline (``lead_in_frames`` unstimulated frames first), like a
    new recording of the same population, so blocks of an experiment designed as it goes
    can be simulated one at a time.

    Parameters
    ----------
    dynamics
        The true dynamics (e.g. ``simulate_photostim(...).dynamics``).
    patterns
        Stimulation patterns, shape ``(n_patterns, n_neurons)``, finite and non-negative
        (1 for a stimulated neuron, 0 otherwise).
    n_repeats
        Trials per pattern.
    seed
        Seed of the trial order and the noise, or a generator whose stream to continue (an
        experiment designed block by block draws each block from one generator).
    trial_frames, stim_frames, lead_in_frames
        As in :func:`simulate_photostim`.

    Returns
    -------
    activity, stimulation : numpy.ndarray
        Recorded activity and the stimulation delivered, each ``(n_frames, n_neurons)`` with
        ``n_frames = lead_in_frames + n_patterns * n_repeats * trial_frames``.

    Raises
    ------
    ValueError
        On patterns of the wrong shape, negative or non-finite values, non-positive sizes, or
        a stimulation longer than a trial.
    """
    rng = np.random.default_rng(seed)
    check_positive_ints(n_repeats=n_repeats, trial_frames=trial_frames, stim_frames=stim_frames)
    if (
        isinstance(lead_in_frames, bool)
        or not isinstance(lead_in_frames, (int, np.integer))
        or lead_in_frames < dynamics.order
    ):
        raise ValueError(
            f"lead_in_frames must be an integer of at least the order {dynamics.order}, got {lead_in_frames!r}."
        )
    if stim_frames >= trial_frames:
        raise ValueError(f"stim_frames={stim_frames} must be shorter than trial_frames={trial_frames}.")
    patterns = np.asarray(patterns, dtype=float)
    if patterns.ndim != 2 or patterns.shape[0] == 0 or patterns.shape[1] != dynamics.n_neurons:
        raise ValueError(f"patterns must have shape (n_patterns, {dynamics.n_neurons}), got {patterns.shape}.")
    if not np.isfinite(patterns).all() or (patterns < 0).any():
        raise ValueError("patterns must be finite and non-negative (1 for a stimulated neuron, 0 otherwise).")
    trial_pattern = rng.permutation(np.repeat(np.arange(patterns.shape[0]), n_repeats))
    stimulation, _ = _stimulation(patterns[trial_pattern], trial_frames, stim_frames, lead_in_frames)
    return _record(dynamics, stimulation, rng), stimulation


def _stimulation(
    trial_patterns: np.ndarray, trial_frames: int, stim_frames: int, lead_in_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stimulation of every frame for trials of the given patterns in this order, and the onsets."""
    n_trials, d = trial_patterns.shape
    trial_onsets = lead_in_frames + np.arange(n_trials) * trial_frames
    stimulation = np.zeros((lead_in_frames + n_trials * trial_frames, d))
    for onset, pattern in zip(trial_onsets, trial_patterns):
        stimulation[onset : onset + stim_frames] = pattern
    return stimulation, trial_onsets


def _record(dynamics: PhotostimDynamics, stimulation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The recorded activity: the noisy dynamics plus observation noise."""
    latent = _simulate_latent(dynamics, stimulation, rng)
    return latent + dynamics.obs_noise_std * rng.standard_normal(latent.shape)


def _simulate_latent(dynamics: PhotostimDynamics, stimulation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Run the noisy dynamics from the baseline through the whole stimulation sequence."""
    A, B, order = dynamics.A, dynamics.B, dynamics.order
    n_frames, d = stimulation.shape
    x = np.empty((n_frames, d))
    x[:order] = dynamics.baseline()
    noise = dynamics.noise_std * rng.standard_normal((n_frames, d))
    # Stacking the lags turns the k matrix products of each frame into one.
    A_stack = np.concatenate(list(A), axis=1).T  # (order * d, d)
    B_drive = sum(np.roll(stimulation, s, axis=0) @ B[s].T for s in range(order))
    B_drive[: order - 1] = 0.0  # np.roll wrapped the last frames around
    for t in range(order - 1, n_frames - 1):
        history = x[t - order + 1 : t + 1][::-1].reshape(-1)  # x_t, x_{t-1}, ...
        x[t + 1] = dynamics.bias + history @ A_stack + B_drive[t] + noise[t + 1]
    return x
