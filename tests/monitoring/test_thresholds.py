import pytest

from opscore.exceptions import BadInputError
from opscore.monitoring.thresholds import DistanceThreshold, Outcome, PValueThreshold


def test_p_value_threshold_flags_strictly_below() -> None:
    assert PValueThreshold(0.05).drifted(Outcome(3.0, 0.049))
    assert not PValueThreshold(0.05).drifted(Outcome(3.0, 0.05))
    assert not PValueThreshold(0.05).drifted(Outcome(3.0, None))


def test_distance_threshold_flags_at_or_above() -> None:
    assert DistanceThreshold(0.1).drifted(Outcome(0.1))
    assert not DistanceThreshold(0.1).drifted(Outcome(0.0999))


def test_only_p_value_thresholds_are_lowered_by_a_correction() -> None:
    assert PValueThreshold(0.05).scaled(0.5) == PValueThreshold(0.025)
    assert not hasattr(DistanceThreshold(0.1), "scaled")


@pytest.mark.parametrize("make", [lambda: PValueThreshold(0.0), lambda: PValueThreshold(1.0), lambda: DistanceThreshold(-0.1)])
def test_impossible_thresholds_are_refused(make) -> None:
    with pytest.raises(BadInputError):
        make()
