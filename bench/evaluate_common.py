"""Helpers shared by the bench/evaluate_*.py scripts (no third-party table formatter needed)."""
import numpy as np
import pandas as pd


def md_table(df: pd.DataFrame, index: bool = True, digits: int = 4) -> str:
    "A DataFrame as a GitHub Markdown table."
    d = df.reset_index() if index else df
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return '' if np.isnan(v) else f"{v:.{digits}f}"
        return str(v)
    cols = [str(c) if not isinstance(c, tuple) else ' '.join(map(str, c)) for c in d.columns]
    out = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    out += ['| ' + ' | '.join(fmt(v) for v in row) + ' |' for row in d.itertuples(index=False)]
    return '\n'.join(out)
