"""The maturity chart draws the scorecard's own levels, one bar per area, its next step on hover."""

from __future__ import annotations

from opscore.operations.maturity import AREAS, LEVELS, maturity_scorecard
from opscore.views.maturity_plots import LEVEL_COLOURS, maturity_chart


def test_one_bar_per_area_at_its_level(served):
    card = maturity_scorecard(served).to_df()
    fig = maturity_chart(card)
    bar = fig.data[0]
    assert list(bar.y) == list(AREAS)
    assert list(bar.x) == [LEVELS.index(level) + 1 for level in card["level"]]
    assert list(bar.text) == list(card["level"])
    assert list(bar.marker.color) == [LEVEL_COLOURS[level] for level in card["level"]]
    # The next step of each area is what the hover says to do.
    monitoring = list(AREAS).index("monitoring")
    assert bar.customdata[monitoring][0].replace("<br>", " ") == card.loc[monitoring, "next_step"]
    assert list(fig.layout.xaxis.ticktext) == list(LEVELS) and "maturity" in fig.layout.title.text.lower()


def test_an_empty_workspace_draws_every_area_at_basic(workspace):
    fig = maturity_chart(maturity_scorecard(workspace).to_df())
    assert set(fig.data[0].x) == {1} and set(fig.data[0].text) == {"basic"}


def test_an_empty_scorecard_says_so():
    import pandas as pd

    fig = maturity_chart(pd.DataFrame(columns=["area", "level", "score", "evidence", "next_step"]))
    assert not fig.data and "no area scored" in fig.layout.annotations[0].text
