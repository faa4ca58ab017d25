"""Stand-in estimators for fits in a child process, in a module of their own: a child unpickling one imports only
this (numpy and scikit-learn are loaded already), so its memory stays near its fork's and it may stay for the
next job (ml/child_main.py STAY_MAX_GROWTH_MB); the test modules would pull in far more."""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class SlowProbe(ClassifierMixin, BaseEstimator):
    """Its progress takes 0.5 s to read (as an MLP's loss curve is read), so its fit ends while the child's progress
    thread is reading it: that thread's last message comes up to half a second after the fit."""

    @property
    def loss_curve_(self) -> list[float]:
        time.sleep(0.5)
        return [1.0]

    def fit(self, X, y):
        time.sleep(0.1)
        self.classes_ = np.unique(y)
        return self
