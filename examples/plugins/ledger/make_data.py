"""Writes src/synthloop_ledger/data/transactions.csv: a seeded demo ledger of journal entries,
some of which an audit flagged. Generated (not real): it exists to show the plugin working.

    python make_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ACCOUNTS = ["cash", "receivables", "payables", "revenue", "expenses", "payroll", "inventory",
            "suspense"]
COUNTERPARTIES = ["customer", "supplier", "employee", "bank", "related_party", "internal"]


def make(n: int = 1200, seed: int = 20240611) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    account = rng.choice(ACCOUNTS, n, p=[0.18, 0.16, 0.16, 0.14, 0.16, 0.08, 0.08, 0.04])
    counterparty = rng.choice(COUNTERPARTIES, n, p=[0.3, 0.3, 0.12, 0.12, 0.06, 0.1])
    manual = rng.random(n) < np.where(account == "suspense", 1.0, 0.22)
    hour = np.where(rng.random(n) < 0.85, rng.integers(8, 19, n), rng.integers(0, 24, n))
    weekend = rng.random(n) < 0.08
    days_to_period_end = rng.integers(0, 31, n)
    approver_level = np.where(manual, rng.integers(0, 4, n), rng.integers(1, 4, n))
    scale = {"cash": 900, "receivables": 2500, "payables": 2200, "revenue": 3000,
             "expenses": 700, "payroll": 4000, "inventory": 1800, "suspense": 1500}
    debit = np.array([rng.lognormal(np.log(scale[a]), 0.8) for a in account])
    round_amount = rng.random(n) < np.where(manual, 0.35, 0.08)
    debit = np.where(round_amount, np.round(debit, -2).clip(100), np.round(debit, 2))
    late = (hour < 7) | (hour > 20)
    risk = (-3.3 + 1.5 * manual + 1.3 * late + 0.9 * weekend + 1.1 * round_amount
            + 1.4 * (counterparty == "related_party") + 1.2 * (account == "suspense")
            + 0.9 * (days_to_period_end <= 2) - 0.6 * approver_level
            + 0.5 * (np.log(debit) > np.log(5000)))
    flagged = rng.random(n) < 1 / (1 + np.exp(-risk))
    return pd.DataFrame({
        "account": account, "counterparty": counterparty, "debit": debit, "credit": -debit,
        "hour": hour, "weekend": weekend, "manual": manual,
        "days_to_period_end": days_to_period_end, "approver_level": approver_level,
        "flagged": np.where(flagged, "yes", "no"),
    })


if __name__ == "__main__":
    out = Path(__file__).parent / "src" / "synthloop_ledger" / "data" / "transactions.csv"
    df = make()
    df.to_csv(out, index=False)
    print(f"wrote {out}: {len(df)} rows, {(df.flagged == 'yes').mean():.1%} flagged")  # noqa: T201
