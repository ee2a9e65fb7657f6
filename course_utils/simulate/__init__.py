"""Ground-truth generators, one module per family of models.

- :mod:`course_utils.simulate.glm`: linear-maze place/speed neurons, a current-injection
  neuron (chapter 1).
- :mod:`course_utils.simulate.population`: head-direction neurons coupled on a sparse graph
  with known history and coupling filters (chapter 2).
- :mod:`course_utils.simulate.photostim`: a photostimulation experiment on a population with
  planted diagonal-plus-low-rank autoregressive dynamics (chapter 3).
- :mod:`course_utils.simulate.assemblies`: binary activity of neurons driven by planted,
  overlapping, persistent assemblies, split in time into train and test (chapter 4).
- :mod:`course_utils.simulate.dipole`: evoked dipoles of hnn-core's cortical column, a
  target with planted drive parameters, a cached RMSE objective (chapter 6).
- :mod:`course_utils.simulate.hodgkin_huxley`: batched Hodgkin-Huxley neurons (RK4 over all
  traces at once), a ``solve_ivp`` reference, spike features (chapter 5).

The generators know nothing of :mod:`course_utils.data`; the data loaders wrap their output.
"""
