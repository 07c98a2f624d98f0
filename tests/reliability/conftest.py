"""Fixtures of the reliability tests."""

import pytest

from .helpers import small_data


@pytest.fixture
def data():
    return small_data()
