"""Validation of causal_llmrec.matching against known answers.

Command (from the repository root):   .venv/bin/python bench/matching_validation.py [--reps 40]
1. Lalonde NSW experiment: R Matching's stored test outputs (tests/AbadieImbens.Rout.save, tests/DehejiaWahba.Rout.save),
   the M = 1, 4, 16, 64 grid (plain and bias-corrected) next to the experimental $1,794.
2. NSW treated + CPS controls: every estimator next to the experimental answer.
3. Cross-check with DoWhy and causalml (run in .bench-venv-matching) on the same data and the same propensity scores.
4. Semi-synthetic MovieLens world (causal_llmrec.data.simulate): bias, RMSE and 95% CI coverage over repeated draws as
   confounding grows.
Writes bench/results/matching_validation.md and .json."""
import argparse, json, os, subprocess, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
ROOT = Path(__file__).resolve().parents[1]; sys.path.insert(0, str(ROOT))
from causal_llmrec.matching import match, ipw, aipw, cem, load_lalonde, OverlapWarning
from causal_llmrec.data import simulate, SIM_CONFOUNDERS
warnings.simplefilter('ignore', OverlapWarning)
ap = argparse.ArgumentParser(); ap.add_argument('--reps', type=int, default=40); ap.add_argument('--n-users', type=int, default=150)
ap.add_argument('--gammas', nargs='+', type=float, default=[0.0, 1.0, 2.0])
args = ap.parse_args()
t_start = time.time()
out_md, out_js = [], {}
def md_table(df, digits=4):
    fmt = lambda v: (f"{v:.{digits}g}" if isinstance(v, (float, np.floating)) else str(v))
    return '\n'.join(['| ' + ' | '.join(map(str, df.columns)) + ' |', '|' + '---|' * len(df.columns)] +
                     ['| ' + ' | '.join(fmt(v) for v in r) + ' |' for r in df.itertuples(index=False)])

# 1. R Matching on the experimental sample
lal = load_lalonde('experimental'); lal['y'] = lal.re78 / 1000
X4 = ['age', 'educ', 're74', 're75']
R = [('ATE, X=age, M=1', dict(covariates=['age'], estimand='ATE'), 1.785191, 0.6867167),
     ('ATE, X=(age,educ,re74,re75), M=1', dict(covariates=X4, estimand='ATE'), 1.714407, 0.7401292),
     ('ATE, M=3', dict(covariates=X4, estimand='ATE', k=3), 1.536303, 0.6619304),
     ('ATT, M=1', dict(covariates=X4, estimand='ATT'), 1.726913, 0.8366296),
     ('ATC, M=1', dict(covariates=X4, estimand='ATC'), 1.705509, 0.8200959),
     ('ATE, Mahalanobis', dict(covariates=X4, estimand='ATE', method='mahalanobis'), 1.592617, 0.6847298),
     ('ATE, bias-adjusted Z=X', dict(covariates=X4, estimand='ATE', bias_adjust=True), 1.630915, 0.7452336),
     ('ATE, bias-adjusted Z=(married,age)', dict(covariates=X4, estimand='ATE', bias_adjust=True, bias_covariates=['marr', 'age']), 1.719687, 0.7436085),
     ('ATE, population variance', dict(covariates=X4, estimand='ATE', sample=False), 1.714407, 0.7433846),
     ('ATE, Var.calc=3', dict(covariates=X4, estimand='ATE', var_matches=3), 1.714407, 0.6962724)]
rows = []
for lab, kw, re_, rse in R:
    r = match(lal, 'treat', 'y', **(dict(method='scaled', bias_adjust=False, var_matches=0, sample=True, tie_tol=1e-5) | kw))
    rows.append(dict(specification=lab, ours=round(r.estimate, 6), R=re_, ours_se=round(r.se, 6), R_se=rse,
                     diff=f"{abs(r.estimate - re_):.1e} / {abs(r.se - rse):.1e}"))
for c in ('age', 'educ', 're74', 're75'): lal[c + 'sq'] = lal[c] ** 2
DW = ['age', 'agesq', 'educ', 'educsq', 'black', 'hisp', 'marr', 'nodegree', 're74', 're74sq', 're75', 're75sq', 'u74', 'u75']
for tol in (1e-5, 1e-10):
    r = match(lal, 'treat', 're78', covariates=DW, ps_scale='probability', bias_adjust=False, var_matches=0, tie_tol=tol)
    rows.append(dict(specification=f'DehejiaWahba.R: PS 1:1 ATT (tie_tol={tol:g})', ours=round(r.estimate, 1), R=2153.3,
                     ours_se=round(r.se, 1), R_se=825.4, diff=f"{abs(r.estimate - 2153.3):.2g} / {abs(r.se - 825.4):.2g}"))
t1 = pd.DataFrame(rows)
out_md += ['## 1. R `Matching` test outputs on the Dehejia-Wahba NSW sample', '',
           'R numbers: `Matching` 4.x `tests/AbadieImbens.Rout.save` (Y = re78/1000, `sample=TRUE`, `Var.calc=0` unless stated) and '
           '`tests/DehejiaWahba.Rout.save` (Y = re78). Ours with `tie_tol=1e-5` (R\'s distance tolerance). '
           'All agree to R\'s printed digits; the ~1e-6 residuals come from causaldata storing earnings as float32. '
           'The propensity-score case agrees only with R\'s tie tolerance: with exact ties only it moves by $12 (different ties averaged).', '',
           md_table(t1, digits=7), '']
out_js['R_matching'] = t1.to_dict('records')
COV = ['age', 'educ', 'black', 'hisp', 'marr', 'nodegree', 're74', 're75', 'u74', 'u75']
grid = []
for M in (1, 4, 16, 64):
    for ba in (False, True):
        r = match(lal, 'treat', 're78', covariates=COV, method='scaled', k=M, bias_adjust=ba)
        grid.append(dict(M=M, estimator='bias-corrected' if ba else 'plain', estimate=round(r.estimate, 1), se=round(r.se, 1)))
exp = lal.re78[lal.treat == 1].mean() - lal.re78[lal.treat == 0].mean()
t2 = pd.DataFrame(grid)
out_md += ['## 1b. Experimental sample, covariate matching (scaled metric, 10 covariates, ATT), M = 1, 4, 16, 64', '',
           f'Experimental difference in means: {exp:.1f}. The grid is that of Abadie & Imbens (2011, Table 2); their table was not '
           'available to us, so no published number is quoted for it.', '', md_table(t2), '']
out_js['M_grid'] = t2.to_dict('records')

# 2. CPS comparison
cps = load_lalonde('cps'); cps['y'] = cps.re78
for c in ('age', 'educ', 're74', 're75'): cps[c + 'sq'] = cps[c] ** 2
ests = {
    'naive difference in means': None,
    'PS 1:1, probability scale, R conventions (DW logit)': lambda: match(cps, 'treat', 'y', covariates=DW, ps_scale='probability', bias_adjust=False, var_matches=0, tie_tol=1e-5),
    'PS 1:1 logit, bias-corrected': lambda: match(cps, 'treat', 'y', covariates=DW, bias_covariates=COV),
    'PS 1:1 logit, no replacement, caliper 0.2 SD': lambda: match(cps, 'treat', 'y', covariates=DW, bias_covariates=COV, replace=False, caliper=0.2),
    'PS 1:1 logit, Crump trimming': lambda: match(cps, 'treat', 'y', covariates=DW, bias_covariates=COV, trim='crump'),
    'covariates (scaled) M=4, bias-corrected': lambda: match(cps, 'treat', 'y', covariates=COV, method='scaled', k=4),
    'Mahalanobis M=1, bias-corrected': lambda: match(cps, 'treat', 'y', covariates=COV, method='mahalanobis'),
    'Mahalanobis M=1, exact on black/hisp/u74/u75, bias-corrected': lambda: match(cps, 'treat', 'y', covariates=['age', 'educ', 're74', 're75', 'marr', 'nodegree'], method='mahalanobis', exact=['black', 'hisp', 'u74', 'u75']),
    'IPW ATT (normalised, DW logit)': lambda: ipw(cps, 'treat', 'y', covariates=DW, estimand='ATT'),
    'AIPW ATT (logit, linear outcome, 5 folds)': lambda: aipw(cps, 'treat', 'y', covariates=DW, estimand='ATT'),
    'AIPW ATT (gbm propensity and outcome, 5 folds)': lambda: aipw(cps, 'treat', 'y', covariates=COV, estimand='ATT', propensity='gbm', outcome_model='gbm'),
    'CEM ATT': lambda: cem(cps, 'treat', 'y', covariates=['age', 'educ', 'black', 'hisp', 'marr', 'nodegree', 're74', 're75'],
                           bins={'age': 8, 'educ': 6, 're74': [0, 1, 5000, 10000, 1e6], 're75': [0, 1, 5000, 10000, 1e6]}),
}
rows = []
for k, f in ests.items():
    if f is None:
        rows.append(dict(estimator=k, estimate=cps.y[cps.treat == 1].mean() - cps.y[cps.treat == 0].mean(), se=np.nan, ci='', discarded=0, variance=''))
        continue
    r = f(); rows.append(dict(estimator=k, estimate=r.estimate, se=r.se, ci=f"[{r.ci[0]:.0f}, {r.ci[1]:.0f}]",
                              discarded=int(sum(r.n_discarded.values())), variance=r.variance.split(';')[0][:60]))
t3 = pd.DataFrame(rows); t3['minus_experimental'] = t3.estimate - exp; t3['covers_1794'] = t3.ci.apply(lambda s: '' if not s else str(float(s[1:-1].split(',')[0]) < exp < float(s[1:-1].split(',')[1])))
out_md += ['## 2. NSW treated (185) vs CPS-1 controls (15,992): every estimator next to the experimental answer', '',
           f'Experimental ATT: {exp:.1f}. Published estimates for these data (Dehejia & Wahba 2002; Stata teffects psmatch) '
           'could not be retrieved in this session and are not quoted.', '', md_table(t3.round(1)), '']
out_js['cps'] = t3.to_dict('records')

# 3. peers on the same data and scores
peer_py = subprocess.run(['bash', str(ROOT / 'bench/peers-matching.sh')], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
peer_py = str(ROOT / peer_py) if not os.path.isabs(peer_py) else peer_py
from causal_llmrec.matching import propensity_score
rows = []
for name, d, covs in (('experimental', lal, COV), ('CPS', cps, COV)):
    d = d.copy(); d['y'] = d.re78
    ps = propensity_score(d, 'treat', covs).to_numpy()
    tmp = Path(tempfile.mkdtemp()) / 'd.csv'
    d.assign(propensity_score=ps)[['treat', 'y', 'propensity_score'] + covs].to_csv(tmp, index=False)
    peer = json.loads(subprocess.run([peer_py, str(ROOT / 'bench/matching_peer_check.py'), str(tmp), ','.join(covs)],
                                     capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    ours = {
        'causalml NN match on the score (ATT)': match(d, 'treat', 'y', covariates=covs, propensity=ps, ps_scale='probability', bias_adjust=False, var_matches=0, tie_tol=0).estimate,
        'DoWhy propensity_score_matching (ATT)': match(d, 'treat', 'y', covariates=covs, propensity=ps, ps_scale='probability', bias_adjust=False, var_matches=0, tie_tol=0).estimate,
        'DoWhy propensity_score_weighting, normalised (ATT)': ipw(d, 'treat', 'y', covariates=covs, propensity=ps, estimand='ATT', clip=1e-12).estimate,
        'DoWhy propensity_score_weighting, normalised (ATE)': ipw(d, 'treat', 'y', covariates=covs, propensity=ps, estimand='ATE', clip=1e-12).estimate,
        'DoWhy linear_regression (ATE)': aipw(d, 'treat', 'y', covariates=covs, estimand='ATE', n_folds=1).estimate,
    }
    same_as_peer = {  # our estimator configured like the peer where it differs by a convention
        'DoWhy propensity_score_weighting, normalised (ATT)': ipw(d, 'treat', 'y', covariates=covs, propensity=ps, estimand='ATT', clip=0.05).estimate,
        'DoWhy propensity_score_weighting, normalised (ATE)': ipw(d, 'treat', 'y', covariates=covs, propensity=ps, estimand='ATE', clip=0.05).estimate}
    for k, v in peer.items():
        rows.append(dict(data=name, peer=k, peer_estimate=v, ours=ours[k], diff=ours[k] - v,
                         ours_with_peer_convention=same_as_peer.get(k, np.nan)))
t4 = pd.DataFrame(rows)
out_md += ['## 3. Cross-check with DoWhy and causalml (same data, same propensity scores from our logit on the 10 covariates)', '',
           'Ours: 1:1 matching on the probability score with exact ties only (`tie_tol=0`), no bias correction, against the peers\' '
           'nearest-neighbour matching; normalised IPW with the same scores (no clipping) against DoWhy\'s `ips_normalized_weight`. '
           'The last row is not the same method: DoWhy\'s linear regression is a single regression with a treatment dummy, ours is '
           'AIPW with per-arm linear outcome models (no cross-fitting), so they differ by design when effects are heterogeneous. '
           'Why the matching rows differ: the Lalonde covariates are discrete for many people (zero earnings, same age and schooling), so '
           'many propensity scores are exactly tied; we average all tied controls (R Matching\'s convention), causalml and DoWhy keep one '
           'arbitrary neighbour. On continuous data (bench/results/matching_speed.md) the three estimates are identical. '
           'Why IPW differs on the CPS: DoWhy clips propensity scores to [0.05, 0.95] by default; ours with clip=0.05 '
           '(`ours_with_peer_convention`) reproduces DoWhy exactly.', '',
           md_table(t4.round(3)), '']
out_js['peers'] = t4.to_dict('records')

# 4. semi-synthetic world
rows = []
for g in args.gammas:
    for s in range(args.reps):
        w = simulate(n_users=args.n_users, confounding=g, seed=1000 + s)
        fr = w.frame(); att = w.att
        res = {'naive': None,
               'match PS logit 1:1, bias-corrected (AI SE)': lambda: match(fr, 'exposure', 'outcome', covariates=SIM_CONFOUNDERS),
               'match Mahalanobis k=4, bias-corrected (AI SE)': lambda: match(fr, 'exposure', 'outcome', covariates=SIM_CONFOUNDERS, method='mahalanobis', k=4),
               'match PS 1:1, Otsu-Rai bootstrap': lambda: match(fr, 'exposure', 'outcome', covariates=SIM_CONFOUNDERS, se='bootstrap', n_boot=300, seed=s),
               'IPW ATT (normalised)': lambda: ipw(fr, 'exposure', 'outcome', covariates=SIM_CONFOUNDERS, estimand='ATT'),
               'AIPW ATT (5-fold)': lambda: aipw(fr, 'exposure', 'outcome', covariates=SIM_CONFOUNDERS, estimand='ATT')}
        for k, f in res.items():
            if f is None:
                rows.append(dict(gamma=g, rep=s, estimator=k, err=w.naive - att, covered=np.nan)); continue
            r = f(); rows.append(dict(gamma=g, rep=s, estimator=k, err=r.estimate - att, covered=float(r.ci[0] <= att <= r.ci[1]), se=r.se))
sim = pd.DataFrame(rows)
t5 = sim.groupby(['gamma', 'estimator'], sort=False).agg(bias=('err', 'mean'), rmse=('err', lambda e: float(np.sqrt((e ** 2).mean()))),
                                                          coverage=('covered', 'mean'), mean_se=('se', 'mean'), sd_err=('err', 'std')).reset_index()
out_md += [f'## 4. Semi-synthetic MovieLens world: ATT over {args.reps} draws per confounding strength', '',
           f'`simulate(n_users={args.n_users}, confounding=gamma, seed=1000+rep)` ({args.n_users * 40:,} user-item pairs per draw); '
           'truth = the world\'s ATT (mean of the true per-pair effects over the exposed pairs); adjustment set = SIM_CONFOUNDERS. '
           f'coverage = share of 95% intervals containing the truth (Monte Carlo SE about {np.sqrt(.95*.05/args.reps):.3f} at {args.reps} draws); mean_se vs sd_err compares '
           'the reported SE with the spread of the errors.', '', md_table(t5.round(4)), '']
out_js['semi_synthetic'] = t5.to_dict('records')

cmd = '.venv/bin/python bench/matching_validation.py ' + ' '.join(sys.argv[1:])
text = f"# Matching estimators: validation against known answers\n\nCommand: `{cmd}` ({time.time() - t_start:.0f} s)\n\n" + '\n'.join(out_md)
open(ROOT / 'bench/results/matching_validation.md', 'w').write(text)
json.dump(out_js, open(ROOT / 'bench/results/matching_validation.json', 'w'), indent=1, default=float)
print(text)
