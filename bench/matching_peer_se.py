"""Peer side of bench/matching_published_se.py (runs in .bench-venv-matching-sens, made by `bash bench/peers-matching.sh
sensitivity`): writes StatsPAI's NSW-PSID file (sp.datasets.nsw_dw(), a simulated replica: the data its Stata parity
tests ran `teffects psmatch` on) to argv[1], then runs StatsPAI's Abadie-Imbens (2016) standard error on each job of the
JSON list in argv[2] (csv, covariates, estimand, n_matches, ai_matches) and prints one JSON list of results."""
import sys, json, warnings
import pandas as pd
warnings.simplefilter('ignore')
import statspai as sp
sp.datasets.nsw_dw().to_csv(sys.argv[1], index=False)
out = []
for job in json.loads(sys.argv[2]):
    d = pd.read_csv(job['csv'])
    fit = sp.match(d, y=job['outcome'], treat='treat', covariates=job['covariates'], method='nearest', distance='propensity',
                   estimand=job['estimand'], n_matches=job['n_matches'], ai_matches=job['ai_matches'], se_method='abadie_imbens_2016')
    c = fit.model_info.get('ai2016_components', {})
    out.append(dict(job=job['name'], estimate=float(fit.estimate), se=float(fit.se),
                    base_se=float(c.get('base_se', float('nan'))), statspai=sp.__version__))
print(json.dumps(out))
