"""Scale-free training: ratings of any span are trained on in the units of one.

The defaults were chosen on ratings spanning 0.5-5 stars. A fit on ratings of
another span divides them by ``span / REFERENCE_SPAN`` (the model's
``rating_scale_``), trains, and maps the fitted arrays back to the ratings'
own units (each model's ``_unscaled``), so a linear rescaling of the ratings
rescales the model, its history and its fold-in.
"""

from __future__ import annotations

REFERENCE_SPAN = 4.5


def rating_scale(rating_range) -> float:
    """``span / REFERENCE_SPAN`` of the training ratings, or 1 for a single value."""
    low, high = rating_range
    span = float(high) - float(low)
    return span / REFERENCE_SPAN if span > 0 else 1.0


class TrainingViews:
    """The model's arrays in two units while a fit runs on rescaled ratings.

    Training updates the arrays of the training view (ratings divided by
    ``scale``); whenever anything outside training reads the model (validation,
    a callback, the end of the fit) it holds fresh arrays in the ratings' own
    units instead, and training gets its own back before the next epoch.
    """

    def __init__(self, model, scale: float, user_mean: float):
        self.model = model
        self.scale = scale
        self.user_mean = user_mean
        self.train_arrays = model._get_state()
        self.train_mean = model.global_mean_

    def training(self):
        self.model._set_state(self.train_arrays)
        self.model.global_mean_ = self.train_mean

    def user(self):
        self.model._set_state(self.model._unscaled(self.train_arrays, self.scale))
        self.model.global_mean_ = self.user_mean
