"""Batched Hodgkin-Huxley neurons: one fixed-step integrator over many traces at once.

The four equations of Hodgkin and Huxley (1952) in the modern convention (resting potential
near -65 mV)::

    C_m dV/dt = I(t) - g_Na m^3 h (V - E_Na) - g_K n^4 (V - E_K) - g_L (V - E_L)
    dx/dt     = alpha_x(V) (1 - x) - beta_x(V) x,        x in {n, m, h}

:func:`simulate`
    Integrates every trace of a batch together with the classical fourth-order Runge-Kutta
    scheme at a fixed step, compiled by JAX into one loop (on a GPU when JAX has one). Each
    trace has its own maximal conductances ``g_K`` and ``g_Na``.
:func:`simulate_dataset`
    The protocol of the chapter: ``g_K ~ U(26, 46)``, ``g_Na ~ U(110, 130)`` mS/cm², 200 ms
    without input to settle, then 50 ms recorded at 0.01 ms with a 15 µA/cm² step from 10 ms.
:func:`reference_solve_ivp`
    The same model, one trace, through :func:`scipy.integrate.solve_ivp` at tight tolerance:
    the reference the tests and the benchmark compare :func:`simulate` with.
:func:`spike_times`, :func:`spike_features`, :func:`minmax_scale`
    Upward zero crossings, hand-crafted features (spike count, first-spike latency, spike
    amplitude, inter-spike interval) and the per-trace scaling to [0, 1].

Units: ms, mV, mS/cm², µA/cm², µF/cm².
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from course_utils.validation import check_numbers, check_positive_ints, check_positive_numbers

__all__ = [
    "HHParameters",
    "StepCurrent",
    "HHTraces",
    "rate_constants",
    "steady_state_gates",
    "simulate",
    "simulate_dataset",
    "sample_conductances",
    "reference_solve_ivp",
    "spike_times",
    "spike_features",
    "minmax_scale",
]


@dataclass(frozen=True)
class HHParameters:
    """Constants of the Hodgkin-Huxley model (the conductances are the defaults per trace).

    Attributes
    ----------
    c_m
        Membrane capacitance (µF/cm²).
    g_k, g_na, g_l
        Maximal potassium, sodium and leak conductances (mS/cm²).
    e_k, e_na, e_l
        Reversal potentials (mV).
    """

    c_m: float = 1.0
    g_k: float = 36.0
    g_na: float = 120.0
    g_l: float = 0.3
    e_k: float = -77.0
    e_na: float = 50.0
    e_l: float = -54.4


@dataclass(frozen=True)
class StepCurrent:
    """A current step of ``amplitude`` µA/cm² from ``start_ms`` (inclusive) to ``stop_ms``.

    Times count from the start of the recording (after any settling period).
    """

    amplitude: float
    start_ms: float
    stop_ms: float = math.inf

    def __post_init__(self) -> None:
        if not math.isfinite(self.amplitude):
            raise ValueError(f"The step amplitude must be finite, got {self.amplitude!r}.")
        if not (math.isfinite(self.start_ms) and self.start_ms >= 0 and self.stop_ms > self.start_ms):
            raise ValueError(
                f"The step needs 0 <= start_ms < stop_ms, got start_ms={self.start_ms!r}, stop_ms={self.stop_ms!r}."
            )

    def __call__(self, t_ms: float) -> float:
        """Return the current at time ``t_ms`` (µA/cm²)."""
        return self.amplitude if self.start_ms <= t_ms < self.stop_ms else 0.0


@dataclass(frozen=True)
class HHTraces:
    """Recorded traces of a batch of Hodgkin-Huxley neurons.

    Attributes
    ----------
    t_ms
        Sample times from the start of the recording, shape ``(n_samples,)``.
    v
        Membrane potential (mV), shape ``(n_traces, n_samples)``, float32.
    gates
        Gating variables ``n, m, h``, shape ``(n_traces, 3, n_samples)``, or ``None`` when
        they were not recorded.
    g_k, g_na
        Each trace's maximal conductances (mS/cm²), shape ``(n_traces,)``.
    current
        The injected current.
    dt_ms
        Integration step and sampling interval.
    settle_ms
        Time integrated without input before the recording started.
    """

    t_ms: np.ndarray
    v: np.ndarray
    gates: np.ndarray | None
    g_k: np.ndarray
    g_na: np.ndarray
    current: StepCurrent
    dt_ms: float
    settle_ms: float

    @property
    def n_traces(self) -> int:
        """Number of traces."""
        return int(self.v.shape[0])


# --------------------------------------------------------------------------- rates


def _x_over_one_minus_exp(x: Any) -> Any:
    """``x / (1 - exp(-x))`` with its removable singularity at 0 filled in (the limit is 1).

    Works on Python floats, NumPy arrays and JAX arrays (also inside :func:`jax.jit`). Near 0
    the formula is 0/0 and loses digits, so ``|x| < 1e-6`` uses the series
    ``1 + x/2 + x²/12`` instead. Floats are tested for first: the ``solve_ivp`` reference
    calls this once per right-hand side, and a JAX type check would dominate its cost.
    """
    if isinstance(x, (float, int)):
        if abs(x) < 1e-6:
            return 1.0 + x / 2 + x * x / 12
        return x / -math.expm1(-x)
    xp = np if isinstance(x, (np.ndarray, np.generic)) else jnp
    small = xp.abs(x) < 1e-6
    safe = xp.where(small, 1.0, x)
    return xp.where(small, 1.0 + x / 2 + x * x / 12, safe / -xp.expm1(-safe))


def _exp(x: Any) -> Any:
    """``exp`` for floats, NumPy arrays and JAX arrays."""
    if isinstance(x, (float, int)):
        return math.exp(x)
    return (np if isinstance(x, (np.ndarray, np.generic)) else jnp).exp(x)


def rate_constants(v: Any) -> tuple[Any, Any, Any, Any, Any, Any]:
    """Opening and closing rates (1/ms) of the gates at membrane potential ``v`` (mV).

    Parameters
    ----------
    v
        A float, NumPy array or JAX array of potentials.

    Returns
    -------
    tuple
        ``(alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h)``, each like ``v``.
        ``alpha_n`` at -55 mV and ``alpha_m`` at -40 mV take their limits (0.1 and 1.0)
        instead of 0/0.
    """
    alpha_n = 0.1 * _x_over_one_minus_exp((v + 55.0) / 10.0)  # = 0.01 (V+55) / (1 - e^{-(V+55)/10})
    beta_n = 0.125 * _exp(-(v + 65.0) / 80.0)
    alpha_m = _x_over_one_minus_exp((v + 40.0) / 10.0)  # = 0.1 (V+40) / (1 - e^{-(V+40)/10})
    beta_m = 4.0 * _exp(-(v + 65.0) / 18.0)
    alpha_h = 0.07 * _exp(-(v + 65.0) / 20.0)
    beta_h = 1.0 / (1.0 + _exp(-(v + 35.0) / 10.0))
    return alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h


def steady_state_gates(v: Any) -> tuple[Any, Any, Any]:
    """Steady-state values ``alpha / (alpha + beta)`` of ``n, m, h`` at potential ``v`` (mV)."""
    a_n, b_n, a_m, b_m, a_h, b_h = rate_constants(v)
    return a_n / (a_n + b_n), a_m / (a_m + b_m), a_h / (a_h + b_h)


# --------------------------------------------------------------------------- batched RK4


def _derivatives(state: jax.Array, current: jax.Array, g_k: jax.Array, g_na: jax.Array, p: HHParameters) -> jax.Array:
    """Time derivatives of ``(V, n, m, h)`` for a state of shape ``(4, n_traces)``."""
    v, n, m, h = state
    a_n, b_n, a_m, b_m, a_h, b_h = rate_constants(v)
    i_ion = g_na * m**3 * h * (v - p.e_na) + g_k * n**4 * (v - p.e_k) + p.g_l * (v - p.e_l)
    return jnp.stack(
        [(current - i_ion) / p.c_m, a_n * (1 - n) - b_n * n, a_m * (1 - m) - b_m * m, a_h * (1 - h) - b_h * h]
    )


def _rk4_step(
    state: jax.Array, dt: float, current: jax.Array, g_k: jax.Array, g_na: jax.Array, p: HHParameters
) -> jax.Array:
    """One classical Runge-Kutta step; the current is constant over the step."""
    k1 = _derivatives(state, current, g_k, g_na, p)
    k2 = _derivatives(state + 0.5 * dt * k1, current, g_k, g_na, p)
    k3 = _derivatives(state + 0.5 * dt * k2, current, g_k, g_na, p)
    k4 = _derivatives(state + dt * k3, current, g_k, g_na, p)
    return state + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


@partial(jax.jit, static_argnames=("n_settle", "settle_dt_ms", "dt_ms", "n_rows", "params"))
def _integrate(
    g_k: jax.Array,
    g_na: jax.Array,
    step_currents: jax.Array,
    *,
    n_settle: int,
    settle_dt_ms: float,
    dt_ms: float,
    n_rows: int,
    params: HHParameters,
) -> jax.Array:
    """Settle, then record: returns the first ``n_rows`` of the state before each step.

    The whole integration is one compiled XLA loop: each RK4 step is fused into a few
    kernels over all traces, with no Python between steps. Shape ``(n_samples, n_rows, n)``.
    """
    v0 = jnp.full_like(g_k, -65.0)
    state = jnp.stack([v0, *steady_state_gates(v0)])
    no_input = jnp.zeros((), g_k.dtype)
    state = jax.lax.fori_loop(0, n_settle, lambda _, s: _rk4_step(s, settle_dt_ms, no_input, g_k, g_na, params), state)

    def record_then_step(s: jax.Array, current: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _rk4_step(s, dt_ms, current, g_k, g_na, params), s[:n_rows]

    _, recorded = jax.lax.scan(record_then_step, state, step_currents)
    return recorded


_DTYPES = ("float32", "float64")


def _jax_device(device: Any) -> jax.Device:
    """The JAX device for ``"cpu"``, ``"cuda"``/``"gpu"`` (or a torch device of those types)."""
    kind = str(getattr(device, "type", device)).split(":")[0].lower()
    if kind == "cpu":
        return jax.devices("cpu")[0]
    if kind in ("cuda", "gpu"):
        try:
            return jax.devices("gpu")[0]
        except RuntimeError as error:
            raise RuntimeError(
                "JAX sees no GPU here, so the simulator cannot run on it. Simulate on "
                "device='cpu' (10,000 traces take seconds on two cores), or install JAX's "
                "CUDA build (pip install 'jax[cuda12]') to use the GPU."
            ) from error
    raise ValueError(f"device must be 'cpu' or 'cuda' (or 'gpu'), got {device!r}.")


def _as_conductances(g_k: Any, g_na: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check and broadcast the per-trace conductances to two 1-D float arrays."""
    try:
        g_k_arr, g_na_arr = np.broadcast_arrays(
            np.atleast_1d(np.asarray(g_k, dtype=float)), np.atleast_1d(np.asarray(g_na, dtype=float))
        )
    except ValueError as error:
        raise ValueError(
            f"g_k and g_na must have the same length (one value per trace) or one of them "
            f"a scalar, got shapes {np.shape(g_k)} and {np.shape(g_na)}."
        ) from error
    if g_k_arr.ndim != 1 or g_k_arr.size == 0:
        raise ValueError(f"g_k and g_na must be scalars or 1-D arrays, got shape {g_k_arr.shape}.")
    for name, values in (("g_k", g_k_arr), ("g_na", g_na_arr)):
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"{name} must hold finite, non-negative conductances (mS/cm²).")
    return g_k_arr.copy(), g_na_arr.copy()


def _whole_steps(name: str, value: float, dt_ms: float) -> int:
    """Return ``value / dt_ms`` as an int, or raise if it is not a whole number of steps."""
    steps = round(value / dt_ms)
    if abs(steps * dt_ms - value) > 1e-9 * max(value, 1.0):
        raise ValueError(f"{name}={value} must be a whole multiple of the step {dt_ms} ms.")
    return steps


def _check_step(name: str, dt_ms: float, largest: float) -> None:
    """Raise unless ``0 < dt_ms <= largest``."""
    check_positive_numbers(unit="ms", **{name: dt_ms})
    if dt_ms > largest:
        raise ValueError(
            f"{name}={dt_ms} ms is too coarse: RK4 loses accuracy (or stability) on the HH "
            f"equations above {largest} ms here. Use 0.01 ms and downsample the traces afterwards."
        )


def _check_times(duration_ms: float, dt_ms: float, settle_ms: float, settle_dt_ms: float) -> tuple[int, int]:
    """Return the number of recorded samples and of settling steps; check the times."""
    _check_step("dt_ms", dt_ms, 0.05)
    _check_step("settle_dt_ms", settle_dt_ms, 0.1)
    check_positive_numbers(unit="ms", duration_ms=duration_ms)
    check_numbers(inclusive=True, unit="ms", settle_ms=settle_ms)
    return _whole_steps("duration_ms", duration_ms, dt_ms), _whole_steps("settle_ms", settle_ms, settle_dt_ms)


def simulate(
    g_k: float | Sequence[float] | np.ndarray = 36.0,
    g_na: float | Sequence[float] | np.ndarray = 120.0,
    *,
    current: StepCurrent = StepCurrent(15.0, 10.0),
    duration_ms: float = 50.0,
    dt_ms: float = 0.01,
    settle_ms: float = 200.0,
    settle_dt_ms: float = 0.1,
    params: HHParameters = HHParameters(),
    record_gates: bool = False,
    device: Any = "cpu",
    dtype: str = "float32",
) -> HHTraces:
    """Integrate a batch of Hodgkin-Huxley neurons, one trace per pair ``(g_k, g_na)``.

    Every trace starts at -65 mV with its gates at their steady state there, is integrated
    for ``settle_ms`` without input (to reach its own resting state), then recorded for
    ``duration_ms`` while ``current`` is injected. All traces advance together, and the whole
    integration is compiled by JAX into one loop whose steps act on a ``(4, n_traces)``
    state: no Python runs between steps, which is what makes it fast on a CPU. The first call
    for a given number of traces and samples compiles (about a second or two); the
    compilation is cached for the rest of the session.

    Parameters
    ----------
    g_k, g_na
        Maximal K and Na conductances (mS/cm²), one per trace (or a scalar shared by all).
    current
        The injected current; its times count from the start of the recording. Its edges
        should fall on the time grid (the current is taken at the middle of each step).
    duration_ms
        Length of the recording; ``duration_ms / dt_ms`` samples are returned.
    dt_ms
        Integration step and sampling interval of the recording (at most 0.05 ms).
    settle_ms
        Time integrated without input before recording.
    settle_dt_ms
        Step of the settling period (at most 0.1 ms). Settling only has to reach the resting
        state, a fixed point that RK4 keeps exactly at any stable step, and the path there
        is smooth, so a coarser step than the recording's costs nothing in accuracy (the
        tests compare the result with ``solve_ivp``) and saves most of the run time.
    params
        The other constants of the model (its ``g_k`` and ``g_na`` are not used).
    record_gates
        Also return ``n, m, h`` (four times the memory of the voltage alone).
    device
        ``"cpu"`` (default) or ``"cuda"``/``"gpu"`` (a torch device of those types works
        too); the GPU needs JAX's CUDA build, a CUDA build of torch is not enough.
    dtype
        ``"float32"`` (default) or ``"float64"``, the floating-point type of the
        integration; the recorded traces are float32 either way. float32 stays within a few
        hundredths of a mV and 1e-3 ms (spike times) of a tight ``solve_ivp`` reference;
        float64 within 0.002 mV, at about twice the cost (``benchmarks/hodgkin_huxley.py``
        measures both).

    Returns
    -------
    HHTraces
        The recorded voltage (and gates), sample times, and each trace's conductances.

    Raises
    ------
    ValueError
        On conductances that are negative, NaN or of mismatched lengths; on times that are not
        positive or not whole multiples of their step; on too coarse a step; on an unknown
        dtype or device; or if the integration produced NaN (parameters far outside the
        physiological range).
    RuntimeError
        If ``device`` asks for a GPU that JAX does not see.
    """
    g_k_arr, g_na_arr = _as_conductances(g_k, g_na)
    n_samples, n_settle = _check_times(duration_ms, dt_ms, settle_ms, settle_dt_ms)
    dtype_name = str(dtype)
    if dtype_name not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}.")
    target = _jax_device(device)
    step_currents = np.array([current((k + 0.5) * dt_ms) for k in range(n_samples)])
    with jax.enable_x64(dtype_name == "float64"), jax.default_device(target):
        inputs = (jnp.asarray(a, dtype=dtype_name) for a in (g_k_arr, g_na_arr, step_currents))
        recorded = _integrate(
            *inputs,
            n_settle=n_settle,
            settle_dt_ms=float(settle_dt_ms),
            dt_ms=float(dt_ms),
            n_rows=4 if record_gates else 1,
            params=params,
        )
        traces = np.asarray(recorded, dtype=np.float32).transpose(2, 1, 0)
    if not np.all(np.isfinite(traces)):
        raise ValueError(
            "The integration produced NaN or inf: check that the conductances and the current "
            "are in a physiological range."
        )
    return HHTraces(
        t_ms=np.arange(n_samples) * dt_ms,
        v=traces[:, 0],
        gates=traces[:, 1:] if record_gates else None,
        g_k=g_k_arr,
        g_na=g_na_arr,
        current=current,
        dt_ms=float(dt_ms),
        settle_ms=float(settle_ms),
    )


def sample_conductances(
    n_traces: int,
    *,
    seed: int,
    g_k_range: tuple[float, float] = (26.0, 46.0),
    g_na_range: tuple[float, float] = (110.0, 130.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``g_K`` and ``g_Na`` independently and uniformly from their ranges.

    Returns
    -------
    tuple of numpy.ndarray
        ``(g_k, g_na)``, each of shape ``(n_traces,)``.
    """
    check_positive_ints(n_traces=n_traces)
    for name, (low, high) in (("g_k_range", g_k_range), ("g_na_range", g_na_range)):
        if not 0 <= low <= high:
            raise ValueError(f"{name} must be (low, high) with 0 <= low <= high, got {(low, high)}.")
    rng = np.random.default_rng(seed)
    return rng.uniform(*g_k_range, size=n_traces), rng.uniform(*g_na_range, size=n_traces)


def simulate_dataset(
    n_traces: int = 10_000,
    *,
    seed: int = 0,
    g_k_range: tuple[float, float] = (26.0, 46.0),
    g_na_range: tuple[float, float] = (110.0, 130.0),
    current: StepCurrent = StepCurrent(15.0, 10.0),
    duration_ms: float = 50.0,
    dt_ms: float = 0.01,
    settle_ms: float = 200.0,
    settle_dt_ms: float = 0.1,
    device: Any = "cpu",
    dtype: str = "float32",
) -> HHTraces:
    """Simulate the chapter's dataset: random ``g_K``, ``g_Na`` and one step response each.

    Parameters
    ----------
    n_traces
        Number of traces (10,000 in the original study: 8,000 to train, 2,000 to test).
    seed
        Seed of the conductance draws (the simulation itself is deterministic).
    g_k_range, g_na_range
        Uniform ranges of the conductances (mS/cm²).
    current, duration_ms, dt_ms, settle_ms, settle_dt_ms, device, dtype
        As in :func:`simulate`.

    Returns
    -------
    HHTraces
        ``n_traces`` voltage traces of ``duration_ms / dt_ms`` samples with their conductances.
    """
    g_k, g_na = sample_conductances(n_traces, seed=seed, g_k_range=g_k_range, g_na_range=g_na_range)
    return simulate(
        g_k,
        g_na,
        current=current,
        duration_ms=duration_ms,
        dt_ms=dt_ms,
        settle_ms=settle_ms,
        settle_dt_ms=settle_dt_ms,
        device=device,
        dtype=dtype,
    )


# --------------------------------------------------------------------------- reference


def reference_solve_ivp(
    g_k: float = 36.0,
    g_na: float = 120.0,
    *,
    current: StepCurrent = StepCurrent(15.0, 10.0),
    duration_ms: float = 50.0,
    dt_ms: float = 0.01,
    settle_ms: float = 200.0,
    params: HHParameters = HHParameters(),
    method: str = "DOP853",
    rtol: float = 1e-10,
    atol: float = 1e-10,
) -> np.ndarray:
    """One trace of the same protocol as :func:`simulate`, by :func:`scipy.integrate.solve_ivp`.

    The integration is split at the edges of the current step, so the adaptive solver never
    steps across a discontinuity. Its right-hand side works on Python floats, as a
    hand-written loop over traces would.

    Returns
    -------
    numpy.ndarray
        States ``V, n, m, h`` at the sample times of :func:`simulate`, shape ``(4, n_samples)``.

    Raises
    ------
    RuntimeError
        If the solver fails.
    """
    from scipy.integrate import solve_ivp

    g_k_arr, g_na_arr = _as_conductances(g_k, g_na)
    if g_k_arr.size != 1:
        raise ValueError("reference_solve_ivp integrates one trace: pass scalar g_k and g_na.")
    gk, gna = float(g_k_arr[0]), float(g_na_arr[0])
    n_samples, _ = _check_times(duration_ms, dt_ms, settle_ms, dt_ms)
    p = params

    def rhs(_t: float, y: np.ndarray, amplitude: float) -> list[float]:
        v, n, m, h = y
        a_n, b_n, a_m, b_m, a_h, b_h = rate_constants(float(v))
        i_ion = gna * m**3 * h * (v - p.e_na) + gk * n**4 * (v - p.e_k) + p.g_l * (v - p.e_l)
        return [(amplitude - i_ion) / p.c_m, a_n * (1 - n) - b_n * n, a_m * (1 - m) - b_m * m, a_h * (1 - h) - b_h * h]

    def run(y0: np.ndarray, t0: float, t1: float, amplitude: float, t_eval: np.ndarray | None):
        solution = solve_ivp(rhs, (t0, t1), y0, method=method, rtol=rtol, atol=atol, t_eval=t_eval, args=(amplitude,))
        if not solution.success:
            raise RuntimeError(f"solve_ivp failed: {solution.message}")
        return solution

    y = np.array([-65.0, *steady_state_gates(-65.0)])
    if settle_ms > 0:
        y = run(y, 0.0, settle_ms, 0.0, None).y[:, -1]
    t_samples = np.arange(n_samples) * dt_ms
    edges = sorted({0.0, duration_ms, *(e for e in (current.start_ms, current.stop_ms) if 0 < e < duration_ms)})
    out = np.empty((4, n_samples))
    for t0, t1 in zip(edges[:-1], edges[1:]):
        inside = (t_samples >= t0 - 1e-9) & (t_samples < t1 - 1e-9)
        solution = run(y, t0, t1, current(0.5 * (t0 + t1)), np.append(t_samples[inside], t1))
        out[:, inside] = solution.y[:, :-1]
        y = solution.y[:, -1]
    return out


# --------------------------------------------------------------------------- analysis


def _check_traces(v: Any, name: str = "v") -> np.ndarray:
    """Return ``v`` as a finite 2-D float array ``(n_traces, n_samples)``."""
    array = np.asarray(v, dtype=float)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(f"{name} must have shape (n_traces, n_samples) with n_samples >= 2, got {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf.")
    return array


def spike_times(v: Any, t_ms: Any, threshold_mv: float = 0.0) -> list[np.ndarray]:
    """Times of the upward crossings of ``threshold_mv``, interpolated between samples.

    Parameters
    ----------
    v
        Voltage traces, shape ``(n_traces, n_samples)`` (or one trace, ``(n_samples,)``).
    t_ms
        Sample times, shape ``(n_samples,)``.
    threshold_mv
        Crossing level; 0 mV is crossed by every HH spike and by nothing else.

    Returns
    -------
    list of numpy.ndarray
        The spike times of each trace (ms).
    """
    v = _check_traces(v)
    t = np.asarray(t_ms, dtype=float)
    if t.shape != (v.shape[1],):
        raise ValueError(f"t_ms must have shape ({v.shape[1]},) to match v, got {t.shape}.")
    rows, cols = np.nonzero((v[:, :-1] < threshold_mv) & (v[:, 1:] >= threshold_mv))
    before, after = v[rows, cols], v[rows, cols + 1]
    times = t[cols] + (threshold_mv - before) / (after - before) * (t[cols + 1] - t[cols])
    return np.split(times, np.searchsorted(rows, np.arange(1, v.shape[0])))


def spike_features(v: Any, t_ms: Any, stimulus_start_ms: float, threshold_mv: float = 0.0) -> dict[str, np.ndarray]:
    """Hand-crafted features of each trace, as an electrophysiologist would measure them.

    Parameters
    ----------
    v
        Voltage traces (mV), shape ``(n_traces, n_samples)``.
    t_ms
        Sample times, shape ``(n_samples,)``.
    stimulus_start_ms
        Onset of the current step, from which the latency is measured.
    threshold_mv
        Spike detection level (upward crossings).

    Returns
    -------
    dict of numpy.ndarray
        Each of shape ``(n_traces,)``: ``"spike_count"``; ``"first_spike_latency_ms"`` from
        the stimulus onset; ``"spike_amplitude_mv"``, the mean over spikes of the peak minus
        the potential just before the stimulus; ``"mean_isi_ms"``, the mean inter-spike
        interval. Latency and amplitude are NaN without spikes, the ISI with fewer than two.
    """
    v = _check_traces(v)
    t = np.asarray(t_ms, dtype=float)
    times = spike_times(v, t, threshold_mv)
    n_traces = v.shape[0]
    count = np.array([s.size for s in times], dtype=float)
    latency = np.array([s[0] - stimulus_start_ms if s.size else np.nan for s in times])
    isi = np.array([np.diff(s).mean() if s.size > 1 else np.nan for s in times])
    # Peak of each spike: the maximum between its upward and its downward crossing.
    above = v >= threshold_mv
    rows_up, cols_up = np.nonzero(~above[:, :-1] & above[:, 1:])
    rows_down, cols_down = np.nonzero(above[:, :-1] & ~above[:, 1:])
    n_samples = v.shape[1]
    flat_up = rows_up * n_samples + cols_up + 1
    flat_down = rows_down * n_samples + cols_down + 1
    trace_end = (rows_up + 1) * n_samples
    next_down = np.minimum(np.searchsorted(flat_down, flat_up), flat_down.size - 1)
    stops = flat_down[next_down] if flat_down.size else trace_end
    stops = np.minimum(stops, trace_end)  # no downward crossing left in this trace: its end
    amplitude = np.full(n_traces, np.nan)
    if flat_up.size:
        bounds = np.column_stack([flat_up, stops]).ravel()
        padded = np.append(v.ravel(), 0.0)  # reduceat needs every bound < len: a spike may end the trace
        peaks = np.maximum.reduceat(padded, bounds)[::2]
        onset = int(np.clip(np.searchsorted(t, stimulus_start_ms) - 1, 0, n_samples - 1))
        baseline = v[:, onset]
        sums = np.bincount(rows_up, weights=peaks - baseline[rows_up], minlength=n_traces)
        has_spikes = count > 0
        amplitude[has_spikes] = sums[has_spikes] / count[has_spikes]
    return {
        "spike_count": count,
        "first_spike_latency_ms": latency,
        "spike_amplitude_mv": amplitude,
        "mean_isi_ms": isi,
    }


def minmax_scale(v: Any) -> np.ndarray:
    """Scale each trace to [0, 1]: ``(v - min) / (max - min)`` along the last axis.

    Raises
    ------
    ValueError
        If a trace is constant (nothing to scale) or holds NaN.
    """
    v = _check_traces(v)
    low = v.min(axis=1, keepdims=True)
    span = v.max(axis=1, keepdims=True) - low
    if np.any(span == 0):
        raise ValueError("A trace is constant: min-max scaling is undefined for it.")
    return ((v - low) / span).astype(np.float32)
