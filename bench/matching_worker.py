"""One benchmark cell of bench/matching_speed.py: run TOOL's JOB on the data file and print one JSON line.
Runs under .venv (tool 'ours') or the peers venv ('causalml', 'dowhy', 'sklearn', 'numpy'); both read the same .npz file.
The call runs once untimed (warm-up: page faults, lazy imports) and then once timed; a warm-up over 10 s is the timing."""
import sys, json, time, resource, warnings
import numpy as np, pandas as pd
warnings.simplefilter('ignore')
tool, job, path = sys.argv[1:4]
z = np.load(path)
X, t, y, ps = z['X'], z['t'], z['y'], z['ps']
cov = [f'x{i}' for i in range(X.shape[1])]
df = pd.DataFrame(X, columns=cov); df['t'] = t; df['y'] = y; df['ps'] = ps
note = ''
# imports are outside the timed region
if tool == 'ours':
    from causal_llmrec.matching import match
    if job == 'maha': import torch
elif tool == 'causalml': from causalml.match import NearestNeighborMatch
elif tool == 'dowhy':
    from dowhy import CausalModel
    from dowhy.causal_estimators.distance_matching_estimator import DistanceMatchingEstimator
elif tool == 'sklearn': from sklearn.neighbors import NearestNeighbors
def run():
    note = ''
    if tool == 'ours':
        from causal_llmrec.matching import match
        if job == 'ps_repl':
            est = match(df, 't', 'y', covariates=[], propensity=ps, ps_scale='probability', bias_adjust=False, var_matches=0, tie_tol=0).estimate
            note = 'score only (covariates=[]), like the peers'
        elif job == 'ps_repl_full':
            # tie_tol=0 (today's default; ties within the relative tie_rtol=1e-9 only): the former absolute tolerance (1e-10 on squared
            # standardised distances) counted every control within ~1e-5 SD as a tie, ~4 matches per unit at n=1e6, ~40 at 1e7
            r = match(df, 't', 'y', covariates=cov, propensity=ps, ps_scale='probability', bias_adjust=True, tie_tol=0); est = r.estimate
            note = f'bias-corrected + AI SE (J={r.details["var_matches"]}), tie_tol=0: se={r.se:.4g}, {r.details["matches_per_unit_mean"]:.2f} matches/unit'
        elif job == 'ps_norepl':
            est = match(df, 't', 'y', covariates=[], propensity=ps, ps_scale='probability', replace=False, order='largest',
                        bias_adjust=False, var_matches=0).estimate
            note = 'greedy, largest score first; score only'
        elif job == 'maha':
            est = match(df, 't', 'y', covariates=cov, method='mahalanobis', bias_adjust=False, var_matches=0, tie_tol=0).estimate
    elif tool == 'causalml':
        from causalml.match import NearestNeighborMatch
        m = NearestNeighborMatch(replace=(job == 'ps_repl'), ratio=1, random_state=0, caliper=1e9, n_jobs=-1)
        out = m.match(data=df, treatment_col='t', score_cols=['ps'])
        est = out.y[out.t == 1].mean() - out.y[out.t == 0].mean()
        note = 'random order (shuffle=True)' if job == 'ps_norepl' else ''
    elif tool == 'dowhy':
        import dowhy
        from dowhy import CausalModel
        import logging; logging.disable(logging.WARNING)
        d2 = df.assign(t=df.t.astype(bool)).rename(columns={'ps': 'propensity_score'})
        model = CausalModel(data=d2, treatment='t', outcome='y', common_causes=cov)
        ident = model.identify_effect(proceed_when_unidentifiable=True)
        if job == 'ps_repl':
            est = model.estimate_effect(ident, method_name='backdoor.propensity_score_matching', target_units='att').value
            note = 'uses the given propensity_score column; also computes the ATC direction'
        elif job == 'maha':
            VI = np.linalg.inv(np.cov(X, rowvar=False))
            from dowhy.causal_estimators.distance_matching_estimator import DistanceMatchingEstimator
            dm = DistanceMatchingEstimator(ident, distance_metric='mahalanobis')
            dm.distance_metric_params = {'metric_params': {'VI': VI}}     # dowhy 0.14 drops VI passed through method_params
            dm.fit(d2)
            est = dm.estimate_effect(d2, target_units='att').value
            note = 'ball tree, Mahalanobis metric'
    elif tool == 'numpy':
        # a bare sorted search: sort the controls' scores, binary-search every treated score, take the nearer neighbour
        c, q = ps[t == 0], ps[t == 1]
        o = np.argsort(c); s = c[o]; pos = np.searchsorted(s, q)
        L = np.clip(pos - 1, 0, len(s) - 1); R = np.clip(pos, 0, len(s) - 1)
        j = np.where(np.abs(q - s[L]) <= np.abs(s[R] - q), L, R)
        est = y[t == 1].mean() - y[t == 0][o[j]].mean()
        note = 'argsort + searchsorted, no ties or checks'
    elif tool == 'sklearn':
        from sklearn.neighbors import NearestNeighbors
        L = np.linalg.cholesky(np.linalg.inv(np.cov(X, rowvar=False)))
        W = X @ L
        nn = NearestNeighbors(n_neighbors=1, algorithm='kd_tree', n_jobs=-1).fit(W[t == 0])
        d, j = nn.kneighbors(W[t == 1])
        est = y[t == 1].mean() - y[t == 0][j[:, 0]].mean()
        note = 'KD-tree on whitened covariates'
    else:
        raise SystemExit(f'unknown tool {tool}')

    return est, note

rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c0 = time.process_time(); t0 = time.perf_counter(); est, note = run()                # warm-up (the timing if it is long)
first, cfirst = time.perf_counter() - t0, time.process_time() - c0
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss                            # peak RSS growth of the (first) call
if first > 10: sec, cpu = first, cfirst
else:
    c0 = time.process_time(); t0 = time.perf_counter(); est, note = run()
    sec, cpu = time.perf_counter() - t0, time.process_time() - c0
# cpu_s: CPU seconds of the process (all its threads) during the timed call: less sensitive than seconds to other load
print(json.dumps(dict(tool=tool, job=job, seconds=sec, cpu_s=cpu, peak_mb=max(rss1 - rss0, 0) / 1024, estimate=float(est), note=note)))
