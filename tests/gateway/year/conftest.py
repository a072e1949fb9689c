"""The seeded year (``tests.support.seeded_year``), built once for the whole session:
every end-to-end test of issue 17 reads it and none changes what it counts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.seeded_year import SeededYear, close, seed_year


@pytest.fixture(scope="session")
def year(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededYear]:
    seeded = seed_year(tmp_path_factory.mktemp("year"))
    yield seeded
    close(seeded)
