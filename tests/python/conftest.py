"""Fixtures of the Python suite: a fresh segment per test, named with the
pid so that parallel runs and other engineers' tests never meet."""

import itertools
import os

import pytest

import shmetrics
from shmetrics import REGISTRY

_seq = itertools.count()


@pytest.fixture
def segment():
    """A new segment, made the process's default; unlinked afterwards.
    Metric names registered during the test are forgotten afterwards."""
    name = '/shmet-py-%d-%d' % (os.getpid(), next(_seq))
    os.environ['SHMETRICS_SEGMENT'] = name
    seg = shmetrics.use_segment(name)
    yield seg
    REGISTRY._reset()
    try:
        shmetrics.unlink(name)
    except OSError:
        pass


def value(name, labels=None, segment=None):
    """One sample of the segment (every process summed)."""
    return REGISTRY.get_sample_value(name, labels, segment=segment)
