"""Models the chapters use but do not teach line by line.

- :mod:`course_utils.models.vae`: dense and convolutional VAEs, and a stack of 1-D conv VAEs trained as one (chapter 5).
"""
