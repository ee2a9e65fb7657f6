"""Tests of the batched Hodgkin-Huxley simulator: rates, rest, and agreement with solve_ivp."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course_utils.simulate import hodgkin_huxley as hh

# Three parameter sets: both corners of the chapter's ranges and the classical values.
PARAMETER_SETS = [(26.0, 110.0), (36.0, 120.0), (46.0, 130.0)]


@pytest.fixture(scope="module")
def batched() -> hh.HHTraces:
    """The chapter's protocol for the three parameter sets, in one float64 batch, with the gates."""
    g_k, g_na = np.array(PARAMETER_SETS).T
    return hh.simulate(g_k, g_na, record_gates=True, dtype="float64")


@pytest.fixture(scope="module")
def reference() -> list[np.ndarray]:
    """The same traces by scipy's solve_ivp (DOP853, rtol = atol = 1e-10)."""
    return [hh.reference_solve_ivp(g_k, g_na) for g_k, g_na in PARAMETER_SETS]


# --------------------------------------------------------------------------- rates


def test_rates_at_rest_match_the_textbook_values():
    a_n, b_n, a_m, b_m, a_h, b_h = hh.rate_constants(-65.0)
    assert a_n == pytest.approx(0.1 / (math.e - 1))  # 0.01 (V+55) / (1 - exp(-(V+55)/10))
    assert b_n == pytest.approx(0.125)
    assert a_m == pytest.approx(2.5 / (math.exp(2.5) - 1))
    assert b_m == pytest.approx(4.0)
    assert a_h == pytest.approx(0.07)
    assert b_h == pytest.approx(1 / (1 + math.exp(3)))
    n, m, h = hh.steady_state_gates(-65.0)
    assert (n, m, h) == pytest.approx((0.3177, 0.0529, 0.5961), abs=1e-4)


@pytest.mark.parametrize("kind", ["float", "numpy", "jax"])
def test_removable_singularities_take_their_limits(kind):
    convert = {"float": float, "numpy": np.asarray, "jax": lambda v: jnp.asarray(v, dtype="float64")}[kind]
    with jax.enable_x64(True):
        a_n = hh.rate_constants(convert(-55.0))[0]
        a_m = hh.rate_constants(convert(-40.0))[2]
        assert float(a_n) == pytest.approx(0.1, rel=1e-12)
        assert float(a_m) == pytest.approx(1.0, rel=1e-12)
        # Continuous through the singular point (no spike of 0/0 or loss of digits next to it).
        for v0, index, limit in ((-55.0, 0, 0.1), (-40.0, 2, 1.0)):
            for dv in (1e-9, -1e-9, 1e-5, -1e-5):
                value = float(hh.rate_constants(convert(v0 + dv))[index])
                assert value == pytest.approx(limit * (1 + dv / 20), rel=1e-9)


def test_rate_forms_agree_across_floats_arrays_jax_and_the_batched_rhs():
    v = np.linspace(-100.0, 60.0, 321)  # passes through -55 and -40 exactly
    from_floats = np.array([hh.rate_constants(float(x)) for x in v]).T
    from_numpy = np.array(hh.rate_constants(v))
    np.testing.assert_allclose(from_numpy, from_floats, rtol=1e-12)
    with jax.enable_x64(True):
        from_jax = np.array([np.asarray(r) for r in hh.rate_constants(jnp.asarray(v))])
        # The right-hand side of the integrator, traced by jit as in the integration.
        state = jnp.asarray(np.stack([v, np.full_like(v, 0.3), np.full_like(v, 0.1), np.full_like(v, 0.6)]))
        g = jnp.full((v.size,), 36.0)
        derivatives = jax.jit(hh._derivatives, static_argnames="p")
        rhs = np.asarray(derivatives(state, jnp.asarray(0.0), g, jnp.full_like(g, 120.0), p=hh.HHParameters()))
    np.testing.assert_allclose(from_jax, from_floats, rtol=1e-12)
    a_n, b_n, a_m, b_m, a_h, b_h = from_floats
    np.testing.assert_allclose(rhs[1], a_n * 0.7 - b_n * 0.3, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rhs[2], a_m * 0.9 - b_m * 0.1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rhs[3], a_h * 0.4 - b_h * 0.6, rtol=1e-10, atol=1e-12)
    i_ion = 120 * 0.1**3 * 0.6 * (v - 50) + 36 * 0.3**4 * (v + 77) + 0.3 * (v + 54.4)
    np.testing.assert_allclose(rhs[0], -i_ion, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- against solve_ivp


def test_resting_potential_is_near_minus_65_mv(batched, reference):
    for trace, ref in zip(batched.v, reference):
        assert -67.0 < trace[0] < -63.0
        assert trace[0] == pytest.approx(ref[0, 0], abs=1e-3)
    assert batched.v[1, 0] == pytest.approx(-65.0, abs=0.1)  # the classical parameters


def test_voltage_matches_solve_ivp_at_tight_tolerance(batched, reference):
    for trace, ref in zip(batched.v, reference):
        assert np.max(np.abs(trace - ref[0])) < 2e-3  # mV, over spikes of 100 mV (float32 storage)


def test_gates_match_solve_ivp(batched, reference):
    for gates, ref in zip(batched.gates, reference):
        assert np.max(np.abs(gates - ref[1:])) < 1e-5


def test_spike_times_match_solve_ivp(batched, reference):
    for trace, ref in zip(batched.v, reference):
        ours = hh.spike_times(trace, batched.t_ms)[0]
        theirs = hh.spike_times(ref[0], batched.t_ms)[0]
        assert ours.size == theirs.size >= 1
        np.testing.assert_allclose(ours, theirs, atol=1e-4)  # ms
        assert np.all(ours > batched.current.start_ms)  # no spike before the step


def test_float32_default_stays_close(reference):
    g_k, g_na = np.array(PARAMETER_SETS).T
    traces = hh.simulate(g_k, g_na)  # float32, the default
    for trace, ref in zip(traces.v, reference):
        assert np.max(np.abs(trace - ref[0])) < 0.02  # mV
        ours, theirs = (hh.spike_times(v, traces.t_ms)[0] for v in (trace, ref[0]))
        np.testing.assert_allclose(ours, theirs, atol=1e-3)  # ms


def test_a_trace_does_not_depend_on_the_batch_it_is_simulated_in():
    g_k, g_na = np.array(PARAMETER_SETS).T
    short = dict(current=hh.StepCurrent(15.0, 1.0), duration_ms=6.0, settle_ms=5.0)
    alone = np.concatenate([hh.simulate(a, b, **short).v for a, b in PARAMETER_SETS])
    together = hh.simulate(g_k, g_na, **short)
    assert np.ptp(together.v) > 50  # a spike happened
    np.testing.assert_allclose(alone, together.v, atol=1e-3)  # vector and scalar kernels may round apart


def test_a_step_that_ends_lets_the_neuron_return_to_rest():
    current = hh.StepCurrent(10.0, 10.0, 50.0)
    traces = hh.simulate(
        36.0, 120.0, current=current, duration_ms=60.0, settle_ms=0.0, record_gates=True, dtype="float64"
    )
    reference = hh.reference_solve_ivp(36.0, 120.0, current=current, duration_ms=60.0, settle_ms=0.0)
    assert np.max(np.abs(traces.v[0] - reference[0])) < 2e-3
    spikes = hh.spike_times(traces.v[0], traces.t_ms)[0]
    assert spikes.size >= 3 and np.all((spikes > 10.0) & (spikes < 52.0))
    assert traces.gates.shape == (1, 3, 6000)


# --------------------------------------------------------------------------- dataset and analysis


def test_dataset_shapes_ranges_and_seed():
    data = hh.simulate_dataset(4, seed=3, duration_ms=5.0, settle_ms=1.0)
    assert data.v.shape == (4, 500) and data.t_ms.shape == (500,)
    assert data.v.dtype == np.float32 and data.gates is None
    assert np.all((data.g_k >= 26) & (data.g_k <= 46)) and np.all((data.g_na >= 110) & (data.g_na <= 130))
    again = hh.sample_conductances(4, seed=3)
    np.testing.assert_array_equal(again[0], data.g_k)
    assert not np.array_equal(hh.sample_conductances(4, seed=4)[0], data.g_k)


def test_spike_features_on_a_hand_made_trace():
    t = np.arange(0.0, 50.0, 0.5)
    v = np.full(t.size, -65.0)
    for start, peak in ((12.0, 40.0), (22.0, 30.0), (34.0, 35.0)):  # three triangular spikes
        v[(t >= start) & (t < start + 1.5)] = peak
    features = hh.spike_features(np.stack([v, np.full(t.size, -65.0)]), t, stimulus_start_ms=10.0)
    assert features["spike_count"].tolist() == [3.0, 0.0]
    times = hh.spike_times(v, t)[0]
    np.testing.assert_allclose(times, [11.5 + 0.5 * 65 / 105, 21.5 + 0.5 * 65 / 95, 33.5 + 0.5 * 65 / 100])
    assert features["first_spike_latency_ms"][0] == pytest.approx(times[0] - 10.0)
    assert features["mean_isi_ms"][0] == pytest.approx((times[2] - times[0]) / 2)
    assert features["spike_amplitude_mv"][0] == pytest.approx(np.mean([40, 30, 35]) + 65.0)
    assert np.isnan(features["first_spike_latency_ms"][1]) and np.isnan(features["mean_isi_ms"][1])


def test_spike_at_the_very_end_of_a_trace_is_counted():
    t = np.arange(10.0)
    v = np.array([-65, -65, -65, -65, -65, -65, -65, -65, 10, 20], dtype=float)
    features = hh.spike_features(v, t, 0.0)
    assert features["spike_count"][0] == 1 and features["spike_amplitude_mv"][0] == pytest.approx(85.0)


def test_minmax_scale():
    scaled = hh.minmax_scale(np.array([[1.0, 3.0, 2.0], [-5.0, 5.0, 0.0]]))
    np.testing.assert_allclose(scaled, [[0, 1, 0.5], [0, 1, 0.5]])
    with pytest.raises(ValueError, match="constant"):
        hh.minmax_scale(np.ones((2, 5)))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(g_k=[30.0, 40.0], g_na=[120.0, 120.0, 120.0]), "same length"),
        (dict(g_k=np.nan), "finite"),
        (dict(g_k=-1.0), "non-negative"),
        (dict(dt_ms=0.2), "too coarse"),
        (dict(dt_ms=0.0), "positive"),
        (dict(duration_ms=50.005), "whole multiple"),
        (dict(settle_ms=-1.0), "non-negative"),
        (dict(dtype="float16"), "dtype"),
        (dict(device="tpu"), "device"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        hh.simulate(**{"duration_ms": 1.0, "settle_ms": 0.0, **kwargs})


def test_bad_steps_and_traces_are_refused():
    with pytest.raises(ValueError, match="start_ms < stop_ms"):
        hh.StepCurrent(10.0, 20.0, 10.0)
    with pytest.raises(ValueError, match="NaN"):
        hh.spike_times(np.array([0.0, np.nan, 1.0]), np.arange(3.0))
    with pytest.raises(ValueError, match="t_ms"):
        hh.spike_times(np.zeros((2, 5)), np.arange(4.0))
    with pytest.raises(ValueError, match="n_traces"):
        hh.sample_conductances(0, seed=1)


def _jax_has_gpu() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


@pytest.mark.skipif(_jax_has_gpu(), reason="JAX has a GPU here: the request succeeds")
def test_a_gpu_that_is_not_there_gives_advice_instead_of_a_silent_cpu_run():
    with pytest.raises(RuntimeError, match="no GPU.*device='cpu'"):
        hh.simulate(36.0, 120.0, duration_ms=1.0, settle_ms=0.0, device="cuda")
