"""Ground-truth generators, one module per family of models.

- :mod:`course_utils.simulate.glm`: linear-maze place/speed neurons, a current-injection
  neuron (chapter 1).

The generators know nothing of :mod:`course_utils.data`; the data loaders wrap their output.
"""
