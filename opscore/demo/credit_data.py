"""A realistic, seeded credit-risk data set that works offline.

Named numeric and categorical features, missing values where real applications have them, and a
default probability driven by the features through a known logistic model, so a trained model has
something real to learn and drift on these features changes what it sees.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = "default"
EMPLOYMENT = ["salaried", "self_employed", "contractor", "retired", "unemployed"]
HOME = ["rent", "mortgage", "own"]
PURPOSE = ["debt_consolidation", "car", "home_improvement", "education", "business", "medical"]


def credit_applications(n_rows: int = 6_000, seed: int = 42, shift: float = 0.0) -> pd.DataFrame:
    """Loan applications with a binary ``default`` target.

    ``shift`` in [0, 1] moves the population the way a recession would (lower incomes, higher
    debt-to-income, more contractors), which the traffic simulator uses for drift episodes.
    """
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(41 - 3 * shift, 11, n_rows), 18, 85).round()
    employment = rng.choice(
        EMPLOYMENT, n_rows, p=_mix([0.58, 0.14, 0.12, 0.11, 0.05], [0.40, 0.16, 0.26, 0.10, 0.08], shift)
    )
    base_income = rng.lognormal(mean=10.9 - 0.25 * shift, sigma=0.45, size=n_rows)
    income = np.where(employment == "unemployed", base_income * 0.25, base_income).round(-2)
    home = rng.choice(HOME, n_rows, p=[0.42, 0.40, 0.18])
    purpose = rng.choice(PURPOSE, n_rows, p=[0.34, 0.18, 0.15, 0.12, 0.13, 0.08])
    loan_amount = np.clip(rng.gamma(2.2, 5_500 + 1_500 * shift, n_rows), 500, 80_000).round(-2)
    term = rng.choice([12, 24, 36, 48, 60], n_rows, p=[0.10, 0.20, 0.35, 0.15, 0.20])
    credit_score = np.clip(rng.normal(690 - 25 * shift, 55, n_rows), 300, 850).round()
    dti = np.clip(rng.beta(2.5, 6 - 2 * shift, n_rows) * 60, 0, 60).round(1)
    open_accounts = rng.poisson(6 + 2 * shift, n_rows)
    delinquencies = rng.poisson(0.3 + 0.4 * shift, n_rows)

    logit = (
        -1.9
        - 0.022 * (credit_score - 690)
        + 0.08 * (dti - 18)
        + 0.6 * np.log(loan_amount / np.maximum(income, 1_000) * 4 + 1e-3)
        + 0.8 * delinquencies
        - 0.025 * (age - 41)
        + np.select(
            [employment == "unemployed", employment == "contractor", employment == "self_employed"],
            [2.0, 0.8, 0.5],
            0.0,
        )
        + np.where(purpose == "business", 0.7, 0.0)
        + np.where(home == "own", -0.5, 0.0)
        + 0.02 * (term - 36)
    )
    default = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(int)

    frame = pd.DataFrame(
        {
            "age": age,
            "annual_income": income,
            "employment_type": employment,
            "home_ownership": home,
            "loan_purpose": purpose,
            "loan_amount": loan_amount,
            "loan_term_months": term.astype(float),
            "credit_score": credit_score,
            "debt_to_income": dti,
            "open_accounts": open_accounts.astype(float),
            "delinquencies_2y": delinquencies.astype(float),
            TARGET: default,
        }
    )
    # Missing where applicants skip questions: income and employment most often.
    for column, share in [("annual_income", 0.03), ("employment_type", 0.02), ("debt_to_income", 0.01)]:
        frame.loc[rng.random(n_rows) < share, column] = np.nan
    return frame


def _mix(normal: list[float], stressed: list[float], shift: float) -> list[float]:
    weights = np.array(normal) * (1 - shift) + np.array(stressed) * shift
    return list(weights / weights.sum())
