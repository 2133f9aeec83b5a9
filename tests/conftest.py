"""Shared fixtures, gathered from helper modules so that each area keeps its own."""

from tests._model_fixtures import *  # noqa: F403
from tests._runtime_fixtures import *  # noqa: F403
from tests._store_fixtures import *  # noqa: F403
