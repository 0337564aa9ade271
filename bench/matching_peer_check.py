"""Peer side of bench/matching_validation.py (runs in .bench-venv-matching): DoWhy and causalml estimates on a CSV
with columns treat, y, the covariates and propensity_score. Prints one JSON object."""
import sys, json, warnings, logging
import numpy as np, pandas as pd
warnings.simplefilter('ignore'); logging.disable(logging.WARNING)
path, covs = sys.argv[1], sys.argv[2].split(',')
df = pd.read_csv(path)
out = {}
from causalml.match import NearestNeighborMatch
m = NearestNeighborMatch(replace=True, ratio=1, random_state=0, caliper=1e9).match(data=df, treatment_col='treat', score_cols=['propensity_score'])
out['causalml NN match on the score (ATT)'] = float(m.y[m.treat == 1].mean() - m.y[m.treat == 0].mean())
from dowhy import CausalModel
d2 = df.assign(treat=df.treat.astype(bool))
model = CausalModel(data=d2, treatment='treat', outcome='y', common_causes=covs)
ident = model.identify_effect(proceed_when_unidentifiable=True)
out['DoWhy propensity_score_matching (ATT)'] = float(model.estimate_effect(ident, method_name='backdoor.propensity_score_matching', target_units='att').value)
out['DoWhy propensity_score_weighting, normalised (ATT)'] = float(model.estimate_effect(
    ident, method_name='backdoor.propensity_score_weighting', target_units='att',
    method_params={'weighting_scheme': 'ips_normalized_weight'}).value)
out['DoWhy propensity_score_weighting, normalised (ATE)'] = float(model.estimate_effect(
    ident, method_name='backdoor.propensity_score_weighting', target_units='ate',
    method_params={'weighting_scheme': 'ips_normalized_weight'}).value)
out['DoWhy linear_regression (ATE)'] = float(model.estimate_effect(ident, method_name='backdoor.linear_regression').value)
print(json.dumps(out))
