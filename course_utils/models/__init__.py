"""Models the chapters use but do not teach line by line.

- :mod:`course_utils.models.glm_grid`: a grid of penalty strengths fitted as one nemos
  PopulationGLM (chapter 2).
- :mod:`course_utils.models.glm_convergence`: how far a penalized Poisson GLM fit is from its
  optimum, in nats (chapter 2).
- :mod:`course_utils.models.low_rank_ar`: closed-form, full-rank and diagonal-plus-low-rank
  autoregressive models, a grid of them trained as one (chapter 3).
- :mod:`course_utils.models.low_rank_tuning`: the cross-validated tuning of those models
  (chapter 3).
- :mod:`course_utils.models.stim_design`: choosing the next photostimulation patterns from a
  fitted low-rank model (chapter 3).
- :mod:`course_utils.models.crbm`: compositional RBMs with dReLU hidden units, trained many at
  once (chapter 4).
- :mod:`course_utils.models.crbm_evaluation`: the five statistics a cRBM is judged by, their
  nRMSE, and the match of hidden units with planted assemblies (chapter 4).
- :mod:`course_utils.models.vae`: dense and convolutional VAEs, and a stack of 1-D conv VAEs
  trained as one (chapter 5).
"""
