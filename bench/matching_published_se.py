"""The Abadie-Imbens (2016) standard error of propensity-score matching, next to Stata's and a peer's.

Command (from the repository root):   .venv/bin/python bench/matching_published_se.py
Needs the peers' venv of `bash bench/peers-matching.sh sensitivity` (StatsPAI, for its data file and its implementation).
A. Stata 18 `teffects psmatch` output published with StatsPAI's Stata parity tests, on the data those tests ran on:
   StatsPAI's NSW treated + PSID-1 controls (185 + 2,490), a SIMULATED replica, not the survey.
B. The real Lalonde data (causaldata): ours next to StatsPAI's implementation of the same formula (no published Stata
   standard error for these data was found; see the notes in the results file).
Writes bench/results/matching_published_se.md and .json."""
import json, os, subprocess, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
ROOT = Path(__file__).resolve().parents[1]; sys.path.insert(0, str(ROOT))
from causal_llmrec.matching import match, load_lalonde
from causal_llmrec.effects import OverlapWarning
warnings.simplefilter('ignore', OverlapWarning)
t0 = time.time(); load0 = os.getloadavg()[0]
peer = subprocess.run(['bash', str(ROOT / 'bench/peers-matching.sh'), 'sensitivity'], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
tmp = Path(tempfile.mkdtemp()); nsw_psid = tmp / 'nsw_psid_statspai.csv'
X7 = ['age', 'education', 'black', 'hispanic', 'married', 're74', 're75']
DW8 = ['age', 'educ', 'black', 'hisp', 'marr', 'nodegree', 're74', 're75']
MX = ['age', 'agesq', 'agecube', 'educ', 'edusq', 'marr', 'nodegree', 'black', 'hisp', 're74', 're75', 'u74', 'u75', 'interaction1']
exp = load_lalonde('experimental'); exp.to_csv(tmp / 'nsw_exp.csv', index=False)
cps = load_lalonde('cps')
cps['agesq'] = cps.age ** 2; cps['agecube'] = cps.age ** 3; cps['edusq'] = cps.educ ** 2; cps['interaction1'] = cps.educ * cps.re74
cps.to_csv(tmp / 'nsw_cps.csv', index=False)
JOBS = [  # name, csv, covariates, estimand, matches k, nn(h) of the variance = var_matches + 1
    ('NSW-PSID replica, ATT, k=1, nn(2)', nsw_psid, X7, 'ATT', 1, 2), ('NSW-PSID replica, ATT, k=1, nn(3)', nsw_psid, X7, 'ATT', 1, 3),
    ('NSW-PSID replica, ATE, k=1, nn(2)', nsw_psid, X7, 'ATE', 1, 2),
    ('NSW experimental, ATT, k=1, nn(2)', tmp / 'nsw_exp.csv', DW8, 'ATT', 1, 2), ('NSW experimental, ATE, k=1, nn(2)', tmp / 'nsw_exp.csv', DW8, 'ATE', 1, 2),
    ('NSW experimental, ATT, k=4, nn(5)', tmp / 'nsw_exp.csv', DW8, 'ATT', 4, 5),
    ('NSW treated + CPS, ATT, k=5, nn(2) (the Mixtape teffects specification)', tmp / 'nsw_cps.csv', MX, 'ATT', 5, 2),
]
jobs = [dict(name=n, csv=str(c), covariates=x, estimand=e, n_matches=k, ai_matches=h - 1, outcome='re78') for n, c, x, e, k, h in JOBS]
res = subprocess.run([peer, str(ROOT / 'bench/matching_peer_se.py'), str(nsw_psid), json.dumps(jobs)], capture_output=True, text=True)
if res.returncode: sys.exit('peer failed:\n' + res.stderr[-3000:])
peer_out = {r['job']: r for r in json.loads(res.stdout.strip().splitlines()[-1])}
ours = {}
for j in jobs:
    d = pd.read_csv(j['csv'])
    r = match(d, 'treat', 're78', covariates=j['covariates'], estimand=j['estimand'], k=j['n_matches'], var_matches=j['ai_matches'],
              ps_scale='probability', bias_adjust=False)
    ours[j['name']] = r
# Stata 18 MP output, published with StatsPAI's parity tests (see SOURCES)
STATA = {'NSW-PSID replica, ATT, k=1, nn(2)': ('S1', 2277.6907208768521, 621.79324512017217),
         'NSW-PSID replica, ATT, k=1, nn(3)': ('S2', None, 630.128055520342)}
rows = []
for j in jobs:
    n = j['name']; r = ours[n]; p = peer_out[n]
    if n in STATA:
        src, st_est, st_se = STATA[n]
        if st_est is not None:
            rows.append(dict(data=n, quantity='ATT estimate', reference=f'Stata 18 teffects psmatch [{src}]', reference_value=st_est,
                             ours=r.estimate, rel_diff=r.estimate / st_est - 1))
        rows.append(dict(data=n, quantity='AI (2016) standard error', reference=f'Stata 18 teffects psmatch [{src}]', reference_value=st_se,
                         ours=r.se, rel_diff=r.se / st_se - 1))
    rows.append(dict(data=n, quantity='estimate', reference=f"StatsPAI {p['statspai']} (peer)", reference_value=p['estimate'],
                     ours=r.estimate, rel_diff=r.estimate / p['estimate'] - 1))
    rows.append(dict(data=n, quantity='AI (2016) standard error', reference=f"StatsPAI {p['statspai']} (peer)", reference_value=p['se'],
                     ours=r.se, rel_diff=r.se / p['se'] - 1))
    rows.append(dict(data=n, quantity='AI (2006) standard error (score taken as known)', reference=f"StatsPAI {p['statspai']} (peer)",
                     reference_value=p['base_se'], ours=r.details.get('se_ai2006', float('nan')),
                     rel_diff=r.details.get('se_ai2006', float('nan')) / p['base_se'] - 1))
tab = pd.DataFrame(rows)
SOURCES = {
    'S1': "Stata 18 MP `teffects psmatch (re78) (treat age education black hispanic married re74 re75, logit), atet nneighbor(1)` "
          "(default vce(robust, nn(2))): e(b), e(V) stored in brycewang-stanford/StatsPAI tests/stata_parity/results/11_psm_Stata.json "
          "(do-file tests/stata_parity/11_psm.do, data tests/r_parity/data/11_psm.csv = sp.datasets.nsw_dw(), captured 2026-05)",
    'S2': "the same command with vce(robust, nn(3)), Stata 18 MP, quoted as STATA_TEFFECTS_SE_NN3 = 630.128055520342 in a StatsPAI "
          "test of its AI-2016 SE (tests/...psm...ai2016..., code-index file id 70854562742; captured 2026-09-22 per its comment)",
}
with np.errstate(all='ignore'): worst_stata = tab[tab.reference.str.startswith('Stata')].rel_diff.abs().max()
worst_peer = tab[tab.reference.str.contains('peer')].rel_diff.abs().max()
secs = time.time() - t0
notes = (f"**Summary.** Against Stata's own output (section A rows marked Stata) the largest relative difference is {worst_stata:.1e}; "
         f"against StatsPAI on every data set, {worst_peer:.1e}. StatsPAI's test notes attribute a 7e-8 gap to Stata's maximum-likelihood "
         "stopping rule for the logit (with Stata's own coefficients its formula reproduces e(V) to 1e-9). The estimator is 1:1 (or k:1) "
         "matching with replacement on the probability-scale score, ties kept (Stata's convention; `ps_scale='probability'`), "
         "and nn(h) of Stata's vce(robust, nn(h)) counts the unit itself: nn(h) is our `var_matches = h - 1`. Before this bench, "
         "`_ai2016_terms` estimated the same adjustment with other nonparametric pieces (conditional means that include the unit, "
         "no c1 term, d from score neighbours); on the replica it gave 624.92 for nn(2) (Stata 621.79) and 665.79 with "
         "var_matches=2 (Stata's nn(3): 630.13); it now follows the formulas of Stata's manual ([CAUSAL] teffects nnmatch, "
         "'PSM, ATE, and ATET variance adjustment'), with the neighbour-set conventions StatsPAI documents (same-arm sets count "
         "the unit itself; the ATT's d term uses the k nearest of the other arm in the raw covariates).\n\n"
         "**What was searched.** Published `teffects psmatch` standard errors on the real Lalonde data: the Mixtape's teffects "
         "do-files quote point estimates only (1725.082, 1758.837: matching_published.md); Stata's manual examples use the "
         "cattaneo2 birth-weight data; stored pages (sambuz slides, SSCC's teffects psmatch page, xiangao's blog) show outputs on "
         "other data. So the real-data rows (section B) compare with a peer, not with Stata.")
md = ["# Abadie-Imbens (2016) standard error: ours next to Stata 18 and StatsPAI\n",
      f"Command: `.venv/bin/python bench/matching_published_se.py` ({secs:.0f} s; 1-min load average {load0:.1f} at start, "
      f"{os.getloadavg()[0]:.1f} at end, {os.cpu_count()} cores)\n", notes + '\n',
      '| data | quantity | reference | reference value | ours | relative difference |', '|---|---|---|---|---|---|']
md += [f"| {r.data} | {r.quantity} | {r.reference} | {r.reference_value:.10g} | {r.ours:.10g} | {r.rel_diff:.1e} |" for r in tab.itertuples()]
md += ['\nSources:'] + [f"- [{k}] {v}" for k, v in SOURCES.items()]
(ROOT / 'bench/results/matching_published_se.md').write_text('\n'.join(md) + '\n')
(ROOT / 'bench/results/matching_published_se.json').write_text(json.dumps(dict(
    command='.venv/bin/python bench/matching_published_se.py', seconds=round(secs, 1), rows=tab.to_dict('records'), sources=SOURCES,
    max_rel_diff_stata=float(worst_stata), max_rel_diff_peer=float(worst_peer)), indent=1) + '\n')
print('\n'.join(md))
