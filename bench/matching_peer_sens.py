"""Peer side of bench/matching_sensitivity_published.py (runs in .bench-venv-matching-sens, made by `bash
bench/peers-matching.sh sensitivity`): writes PySensemakr's Darfur data to argv[1]; runs PySensemakr on the Darfur
regression of Cinelli & Hazlett (2020, section 5) and StatsPAI's Rosenbaum bounds (Wilcoxon signed rank) on the matched
pairs in the JSON file argv[2] ({name: [treated, control]}) at the Gammas of argv[3]. Prints one JSON object."""
import sys, json, warnings
warnings.simplefilter('ignore')
import numpy as np, statsmodels.formula.api as smf
import sensemakr as smkr, statspai as sp
d = smkr.load_darfur(); d.to_csv(sys.argv[1], index=False)
m = smf.ols('peacefactor ~ directlyharmed + age + farmer_dar + herder_dar + pastvoted + hhsize_darfur + female + village', data=d).fit()
s = smkr.Sensemakr(model=m, treatment='directlyharmed', benchmark_covariates=['female'], kd=[1, 2, 3])
out = dict(sensemakr={k: float(v) for k, v in s.sensitivity_stats.items()}, bounds=s.bounds.drop(columns=['treatment']).to_dict('list'),
           versions=dict(PySensemakr=getattr(smkr, '__version__', '0.0.8'), statspai=sp.__version__), rosenbaum={})
gammas = json.loads(sys.argv[3])
for name, (t, c) in json.loads(open(sys.argv[2]).read()).items():
    for zm in ('wilcox', 'pratt'):        # zeros dropped before ranking (rbounds::psens), or ranked first (StatsPAI's default)
        r = sp.rosenbaum_bounds(np.asarray(t, float), np.asarray(c, float), gamma_grid=gammas, zero_method=zm)
        out['rosenbaum'][f'{name}|{zm}'] = dict(gamma=list(map(float, r.gamma_grid)), p_upper=list(map(float, r.pvalue_upper)),
                                                p_lower=list(map(float, r.pvalue_lower)), n_pairs=int(r.n_pairs))
print(json.dumps(out))
