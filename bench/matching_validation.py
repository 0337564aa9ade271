"""Validation of causal_llmrec.matching against known answers.

Command (from the repository root):   .venv/bin/python bench/matching_validation.py [--reps 40] [--published-only]
0. Published numbers for these data (Stata match/nnmatch/teffects outputs, the Mixtape's Stata and Python results), each next to the
   same specification run with our code; --published-only runs just this part (~30 s) and writes only matching_published.md.
1. Lalonde NSW experiment: R Matching's stored test outputs (tests/AbadieImbens.Rout.save, tests/DehejiaWahba.Rout.save),
   the M = 1, 4, 16, 64 grid (plain and bias-corrected) next to the experimental $1,794.
2. NSW treated + CPS controls: every estimator next to the experimental answer.
3. Cross-check with DoWhy and causalml (run in .bench-venv-matching) on the same data and the same propensity scores.
4. Semi-synthetic MovieLens world (causal_llmrec.data.simulate): bias, RMSE and 95% CI coverage over repeated draws as
   confounding grows.
Writes bench/results/matching_validation.md and .json, and bench/results/matching_published.md (section 0 alone)."""
import argparse, json, os, subprocess, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
ROOT = Path(__file__).resolve().parents[1]; sys.path.insert(0, str(ROOT))
from causal_llmrec.matching import match, cem, load_lalonde
from causal_llmrec.weighting import ipw, aipw, propensity_score
from causal_llmrec.effects import OverlapWarning
from causal_llmrec.data import simulate, SIM_CONFOUNDERS
warnings.simplefilter('ignore', OverlapWarning)
ap = argparse.ArgumentParser(); ap.add_argument('--reps', type=int, default=40); ap.add_argument('--n-users', type=int, default=150)
ap.add_argument('--gammas', nargs='+', type=float, default=[0.0, 1.0, 2.0])
ap.add_argument('--published-only', action='store_true', help='only the published-number table (a few seconds): writes bench/results/matching_published.md')
args = ap.parse_args()
t_start = time.time(); load_start = os.getloadavg()[0]
load_note = lambda: f'1-min load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end, {os.cpu_count()} cores'
out_md, out_js = [], {}
def md_table(df, digits=4):
    fmt = lambda v: (f"{v:.{digits}g}" if isinstance(v, (float, np.floating)) else str(v))
    return '\n'.join(['| ' + ' | '.join(map(str, df.columns)) + ' |', '|' + '---|' * len(df.columns)] +
                     ['| ' + ' | '.join(fmt(v) for v in r) + ' |' for r in df.itertuples(index=False)])

# Published numbers on the same data, with their sources (see bench/results/matching_published.md)
SEARCHED = ('Not found after a search of stored web pages, GitHub code/issues and documentation (queries on the paper titles, '
            '"Table 2", "Table 3", M = 1/4/16/64, "bias-adjusted", "1,794", CPS-1, nnmatch/teffects/psmatch2 logs, Mixtape, R Matching '
            'and MatchIt docs): Abadie & Imbens (2011, JBES, Table 2) and Dehejia & Wahba (2002, REStat, Table 3). Only the first page of '
            'the JBES article (text-id.123dok.com), of the Dehejia-Wahba discussion paper (dokumen.tips) and of the Stata Journal article '
            '(docslib.org) is stored, so their tables are not quoted. The Stata manual entries for teffects psmatch/nnmatch are stored only up to their '
            'syntax (stata.com/help.cgi, paperzz.com), so no manual example is quoted; the teffects examples we saw elsewhere use the '
            'cattaneo2/bweightex birth-weight data, not these data. The Abadie-Drukker-Herr-Imbens (2004) nnmatch numbers are quoted from '
            'a textbook write-up [B], not from the article.')

def _digits(s):  # decimals printed in a published number given as a string
    s = s.replace(',', '').lstrip('-$'); return len(s.split('.')[1]) if '.' in s else 0

def published_table():
    """Every published number we could source for these data, the same specification run with causal_llmrec.matching,
    and the difference. Deterministic point estimates only (no bootstrap)."""
    rows = []
    def add(source, sample, spec, pub, ours, note=''):
        p = float(pub.replace(',', '').replace('$', '')); unit = 10.0 ** -_digits(pub)
        rows.append(dict(source=source, sample=sample, specification=spec, published=pub, ours=ours, diff=ours - p,
                         within_last_digit=bool(abs(ours - p) <= unit * 0.5 + 1e-9), within_1_unit=bool(abs(ours - p) < unit), note=note))
    exp = load_lalonde('experimental'); exp['y'] = exp.re78 / 1000
    # (a) Imbens' Stata `match` log on lalonde_exper (Y = re78 in dollars): the same runs R Matching's tests replicate in $1000
    SM = 'A'
    kw0 = dict(method='scaled', bias_adjust=False, var_matches=0, sample=True, tie_tol=1e-5, estimand='ATE')
    for X, pub, pse in ((['age'], '1785.191', '686.7167'), (['age', 'educ', 're74', 're75'], '1714.407', '740.1292')):
        r = match(exp, 'treat', 're78', covariates=X, **kw0)
        add(SM, 'NSW experimental (445), Y = re78 in $', f'SATE, X = {"+".join(X)}, M=1, inverse-variance metric, homoskedastic SE; SE {pse}',
            pub, r.estimate, f'our SE {r.se:.4f}; residual = float32 earnings in causaldata (x1000 the 1e-6 of section 1)')
    # (b) nnmatch (Abadie, Drukker, Herr & Imbens 2004) on ldw_exper = the same 445 people, re78 in $1000, 9 covariates
    C9 = ['age', 'educ', 'black', 'hisp', 'marr', 're74', 're75', 'u74', 'u75']
    CQ = 'B'
    for lab, kw, pub in (('tc(att) m(4) robust(4)', dict(k=4, method='scaled', bias_adjust=False), '1.995'),
                         ('tc(att) m(4) robust(4) bias(bias)', dict(k=4, method='scaled', bias_adjust=True), '1.838'),
                         ('tc(att) m(4) robust(4) bias(bias) metric(maha)', dict(k=4, method='mahalanobis', bias_adjust=True), '1.796')):
        r = match(exp, 'treat', 'y', covariates=C9, estimand='ATT', var_matches=4, tie_tol=1e-5, **kw)
        add(CQ, 'ldw_exper (NSW experimental, 445), Y = re78/1000', f'nnmatch re78 t {" ".join(C9)}, {lab}', pub, r.estimate, f'our SE {r.se:.3f}')
    SL = 'C'
    r = match(exp, 'treat', 'y', covariates=C9, estimand='ATT', k=1, method='mahalanobis', bias_adjust=True, tie_tol=1e-5)
    add(SL, 'ldw_exper, Y = re78/1000', 'nnmatch ..., tc(att) m(1) metric(maha) bias(same 9 covariates)', '1.533125', r.estimate,
        'residual 3e-6 = causaldata stores earnings as float32 (same residual as section 1)')
    r = match(exp, 'treat', 'y', covariates=C9, estimand='ATT', k=1, method='mahalanobis', bias_adjust=False, tie_tol=1e-5)
    add(SL, 'ldw_exper, Y = re78/1000', 'same matches, no bias adjustment: the poster\'s own mean of re78_1 - mean(matched re78_0) from keep()',
        '1.554697', r.estimate, 'float32 residual as above; the stored post is cut off after "which is the value for \\"no"')
    # (c) Mixtape (Cunningham 2021, ch. 5): NSW treated + CPS, logit on the Mixtape covariates
    d = load_lalonde('cps')
    d['agesq'] = d.age ** 2; d['agecube'] = d.age ** 3; d['edusq'] = d.educ ** 2; d['interaction1'] = d.educ * d.re74
    MX = ['age', 'agesq', 'agecube', 'educ', 'edusq', 'marr', 'nodegree', 'black', 'hisp', 're74', 're75', 'u74', 'u75', 'interaction1']
    ps = propensity_score(d, 'treat', MX).to_numpy()
    global ps_cps; ps_cps = ps[d.treat.to_numpy() == 0]
    S = 'NSW treated (185) + CPS (15,992), Y = re78 in $'
    MT = 'D'
    hand = 'published value hand-copied into a comment, whole dollars (truncated)'
    for nz, pub in ((False, '-11,876'), (True, '-7,238')):
        r = ipw(d, 'treat', 're78', covariates=MX, propensity=ps, estimand='ATE', normalize=nz, clip=1e-15)
        add(MT, S, f'{"normalised (Hajek)" if nz else "non-normalised (Horvitz-Thompson)"} IPW, weights T/p and (1-T)/(1-p), logit on 14 Mixtape terms',
            pub, r.estimate, hand + '; the do-file calls it "ATT" but its weights estimate the ATE')
    k = (ps > 0.1) & (ps < 0.9); dk = d[k].copy()
    for nz, pub in ((False, '2,006'), (True, '1,806')):
        r = ipw(dk, 'treat', 're78', covariates=MX, propensity=ps[k], estimand='ATE', normalize=nz, clip=1e-15)
        add(MT, S + f', trimmed to 0.1 < p < 0.9 ({k.sum()} units, scores of the full-sample logit)',
            f'{"normalised" if nz else "non-normalised"} IPW as above', pub, r.estimate, hand)
    RW = 'E'
    for tol, note in ((0.0, 'our default (relative ties within 1e-9 only, tie_tol=0): agrees'), (1e-10, 'same scores with the former default absolute tie tolerance'), (1e-5, 'R Matching\'s tolerance')):
        r = match(d, 'treat', 're78', covariates=MX, propensity=ps, ps_scale='probability', k=5, bias_adjust=False, estimand='ATT', tie_tol=tol)
        cnt = r.pairs.groupby('unit').size()
        add(RW, S, f'teffects psmatch (re78) (treat <14 terms>, logit), atet nn(5)  [ours: tie_tol={tol:g}]', '1725.082', r.estimate,
            note + f'; our SE {r.se:.1f}; {int((cnt > 5).sum())} treated units get more than 5 matches (ties), {len(r.pairs)} pairs in all')
    pk = propensity_score(dk, 'treat', MX).to_numpy()  # teffects re-fits the logit on the trimmed sample
    for lab, pp, note in (('logit re-fitted on the trimmed sample', pk, 'as teffects does: agrees'),
                          ('full-sample scores', ps[k], 'differs: teffects re-estimates the propensity model on the estimation sample')):
        r = match(dk, 'treat', 're78', covariates=MX, propensity=pp, ps_scale='probability', k=5, bias_adjust=False, estimand='ATE', tie_tol=0)
        add(RW, S + ', trimmed to 0.1 < p < 0.9', f'teffects psmatch ..., ate nn(5)  [ours: {lab}]', '1758.837', r.estimate, note)
    dk['y'] = dk.re78 / 1000
    for est, pub in (('ATT', '2647'), ('ATE', '1611')):
        for lab, pp, note in (('re-fitted logit', pk, 'agrees'), ('full-sample scores', ps[k], 'differs (see above)')):
            r = ipw(dk, 'treat', 'y', covariates=MX, propensity=pp, estimand=est, clip=1e-15)
            add(RW, 'NSW treated + CPS, trimmed to 0.1 < p < 0.9, Y = re78/1000', f'teffects ipw (re78_scaled) (treat <14 terms>, logit), {est.lower()}  [ours x 1000: {lab}]',
                pub, 1000 * r.estimate, note + '; published in whole dollars')
    # (d) the Mixtape's Python notebook prints different numbers for "the same" analysis: reproduce them to show why
    cps0 = load_lalonde('cps'); nb = pd.concat([cps0[cps0.treat == 0], load_lalonde('experimental')], ignore_index=True)
    nb['educ_re74'] = nb.educ * nb.re74
    PX = ['age', 'educ', 'marr', 'nodegree', 'black', 'hisp', 're74', 're75', 'u74', 'u75', 'educ_re74']
    pn = propensity_score(nb, 'treat', PX).to_numpy(); T = nb.treat.to_numpy(); Y = nb.re78.to_numpy()
    NB = 'F'
    S2 = 'CPS + all 445 NSW people (NSW controls not dropped), patsy formula: age**2 = age, so no squares/cube'
    for nz, pub in ((False, '-11535.55'), (True, '-7044.80')):
        add(NB, S2, f'{"normalised" if nz else "non-normalised"} IPW (ATE weights)', pub,
            ipw(nb, 'treat', 're78', covariates=PX, propensity=pn, estimand='ATE', normalize=nz, clip=1e-15).estimate,
            'reproduces the notebook, i.e. its gap to the book is its sample and formula, not the estimator')
    kk = (pn >= .1) & (pn <= .9)
    add(NB, S2 + ', trimmed 0.1 <= p <= 0.9', 'non-normalised IPW', '2486.22',
        ipw(nb[kk], 'treat', 're78', covariates=PX, propensity=pn[kk], estimand='ATE', normalize=False, clip=1e-15).estimate, '')
    s1, s0 = (T / pn).sum(), ((1 - T) / (1 - pn)).sum()
    add(NB, S2 + ', trimmed', '"normalised" IPW whose normalisers are the untrimmed sums (a notebook bug), computed by hand', '423.62',
        (T * Y / pn)[kk].sum() / s1 - ((1 - T) * Y / (1 - pn))[kk].sum() / s0,
        'by hand, not our API: correctly normalised on the trimmed sample our ipw gives '
        f'{ipw(nb[kk], "treat", "re78", covariates=PX, propensity=pn[kk], estimand="ATE", clip=1e-15).estimate:.2f}')
    # (e) DoWhy's Lalonde notebook: Hajek IPW ATE on the DW experimental sample, sklearn LogisticRegression on 6 covariates
    from sklearn.linear_model import LogisticRegression
    c6 = ['nodegree', 'black', 'hisp', 'age', 'educ', 'marr']
    alt = {lab: ipw(exp, 'treat', 're78', covariates=c6, propensity=m, estimand='ATE', clip=0.05).estimate
           for lab, m in (('lbfgs', LogisticRegression()), ('liblinear', LogisticRegression(solver='liblinear')), ('MLE', 'logistic'))}
    add('G', 'NSW experimental (445, nswre74 files), Y = re78 in $', 'propensity_score_weighting, ATE, Hajek weights, scores clipped to [0.05, 0.95], '
        'sklearn LogisticRegression() on nodegr black hisp age educ married  [ours: sklearn 1.7 lbfgs]', '1634.9868359746906', alt['lbfgs'],
        f'NOT reproduced; same data and formula, other propensity fits: liblinear {alt["liblinear"]:.2f}, unpenalised MLE {alt["MLE"]:.2f} '
        '(clipping is inactive here). The L2-penalised logit on unscaled covariates depends on the solver; the sklearn/DoWhy versions '
        'that produced the published value are not recorded, so the gap stays unexplained')
    return pd.DataFrame(rows)

PUB_INTRO = ('Each row: a published number for these data, its source, and the same specification run with `causal_llmrec.matching` '
             '(`match`, `ipw`, `propensity_score`; nothing re-implemented except the one row marked "by hand"). '
             '`within_last_digit`: |ours - published| <= half a unit of the last printed digit; `within_1_unit`: < one unit (for numbers '
             'that were truncated rather than rounded). Experimental benchmark: $1,794.3 (difference in means, 185 treated vs 260 controls).')

SOURCES = {
    'A': 'Stata `match` (predecessor of nnmatch) log by G. Imbens, 3 Feb 2004, data lalonde_exper: emlab.berkeley.edu/users/imbens/stata7/lalonde_exper_v7_04feb2.smcl '
         '(stored page; the log continues past the two rows quoted, but the stored copy is cut off)',
    'B': 'nnmatch examples of Abadie, Drukker, Herr & Imbens (2004, Stata Journal 4:290-311; the do-file of the article is gvegayon/nnmatch2 nnmatch.do) '
         'as run in Chen Qiang\'s textbook and quoted at blog.csdn.net/weixin_44723899/article/details/103064188 (3 decimals)',
    'C': 'Statalist thread 226460 (statalist.org/forums/forum/general-stata-discussion/general/226460-how-to-caluclate-predicted-potential-outcomes-after-nnmatch-with-bias-correction), '
         'nnmatch on ldw_exper.dta (gvegayon/nnmatch2), output quoted by the poster',
    'D': 'Code repository of Cunningham, Causal Inference: The Mixtape (2021, ch. 5): results written in the comments of scunning1975/mixtape programs/ipw.do '
         '(propensity logit from programs/dw.do)',
    'E': 'Stata teffects, do-file "Mixtape Tape PSM Example" (Samuel Rowe, 17 May 2022, copyright Scott Cunningham; public GitHub file, id 7932222578 in the '
         'code index, repository not named there): same command as scunning1975/mixtape Do/teffects_nn.do; results written as comments',
    'F': 'Printed outputs of scunning1975/mixtape Python/Matching_and_Subclassification.ipynb (the Mixtape\'s Python port)',
    'G': 'DoWhy example notebook py-why/dowhy docs/source/example_notebooks/dowhy_lalonde_example.ipynb (comment "correct -> Causal Estimate is 1634.9868359746906")',
}

def pub_summary(tp):
    "What agrees and why the rest differs, with the numbers taken from the table."
    g = lambda src, sub: tp[(tp.source == src) & tp.specification.str.contains(sub, regex=False)].iloc[0]
    agree = tp[tp.within_1_unit | tp.note.str.contains('float32')]
    ties = [g('E', f'tie_tol={t}') for t in ('0]', '1e-10', '1e-05')]
    return ('**Summary.** Whenever we run the publisher\'s exact specification, every deterministic point estimate found is reproduced except DoWhy\'s [G]: '
            f'{len(agree)} of {len(tp)} rows agree to the printed digits, or to a unit of the last digit for numbers written by hand as '
            'truncated whole dollars, or up to 3e-6 (in $1000) for the earnings that causaldata stores as float32. '
            f'Of the other {len(tp) - len(agree)} rows, all but [G] are deliberate mis-specifications that show where a gap comes from: '
            f'(i) ties: Stata teffects psmatch averages exact ties only; with the same scores, the former default absolute tie tolerance (1e-10) gives '
            f'{ties[1].ours:.1f} and R Matching\'s (1e-5) {ties[2].ours:.1f} instead of {ties[0].published}, because more controls fall within the tolerance of the 5th neighbour (see the notes: '
            f'{(ps_cps < 1e-3).mean():.0%} of the CPS scores are below 0.001, so scores crowd together on the probability scale); '
            '(ii) teffects re-estimates the propensity model on the trimmed estimation sample; reusing the full-sample scores moves the '
            f'trimmed psmatch ATE by {g("E", "full-sample scores").ours - 1758.837:+.0f} and the trimmed IPW ATT/ATE by '
            f'{g("E", "att  [ours x 1000: full").ours - 2647:+.0f}/{g("E", "ate  [ours x 1000: full").ours - 1611:+.0f} dollars; '
            '(iii) the Mixtape\'s Python notebook [F] prints other numbers than its Stata code [D] for the "same" IPW; reproducing both '
            'exactly shows why: the notebook keeps the 260 NSW controls in the comparison group and its patsy formula turns age**2, age**3 '
            'and educ**2 into age and educ, and its trimmed "normalised" estimate divides by untrimmed sums. '
            'Scale: [A] is in dollars, section 1\'s R tests in $1000; both agree (the estimators are scale-equivariant). '
            'Labels: [D] calls its IPW numbers "ATT", but its weights T/p and (1-T)/(1-p) estimate the ATE; ours with estimand=\'ATE\' reproduces them.')

def published_md(tp):
    t = tp.copy(); t['ours'] = t.ours.map(lambda v: f'{v:.6f}' if abs(v) < 10 else f'{v:.3f}'); t['diff'] = t['diff'].map(lambda v: f'{v:.2g}')
    return md_table(t) + '\n\nSources:\n' + '\n'.join(f'- [{k}] {v}' for k, v in SOURCES.items())

cmd = '.venv/bin/python bench/matching_validation.py ' + ' '.join(sys.argv[1:])
tp = published_table()
pub_text = lambda secs: (f"# Matching estimators: published numbers for the Lalonde / Dehejia-Wahba data next to ours\n\n"
                         f"Command: `{cmd.strip()}` ({secs:.0f} s; {load_note()})\n\n{PUB_INTRO}\n\n{pub_summary(tp)}\n\n{published_md(tp)}\n\n{SEARCHED}\n")
if args.published_only:
    open(ROOT / 'bench/results/matching_published.md', 'w').write(pub_text(time.time() - t_start)); print(pub_text(time.time() - t_start)); sys.exit(0)
out_md += ['## 0. Published estimates for these data next to ours', '', PUB_INTRO, '', pub_summary(tp), '', published_md(tp), '', SEARCHED, '']
out_js['published'] = tp.to_dict('records')

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
C9 = ['age', 'educ', 'black', 'hisp', 'marr', 're74', 're75', 'u74', 'u75']  # the nnmatch covariates of Abadie et al. (2004)
grid = []
for M in (1, 4, 16, 64):
    for ba in (False, True):
        r = match(lal, 'treat', 're78', covariates=C9, method='scaled', k=M, bias_adjust=ba)
        grid.append(dict(M=M, estimator='bias-corrected' if ba else 'plain', estimate=round(r.estimate, 1), se=round(r.se, 1)))
exp = lal.re78[lal.treat == 1].mean() - lal.re78[lal.treat == 0].mean()
t2 = pd.DataFrame(grid)
out_md += ['## 1b. Experimental sample, covariate matching (inverse-variance metric, ATT), M = 1, 4, 16, 64', '',
           f'Experimental difference in means: {exp:.1f}. Covariates: the 9 of the nnmatch examples (Abadie, Drukker, Herr & Imbens 2004: '
           'age, educ, black, hisp, married, re74, re75, u74, u75); the M = 4 rows reproduce their published nnmatch numbers (section 0: '
           '1.995 and 1.838 in $1000). The M grid is that of Abadie & Imbens (2011, Table 2), whose table could not be retrieved '
           '(section 0), so the other rows have no published counterpart here. SE: Abadie-Imbens with J = 2 variance matches.', '', md_table(t2), '']
out_js['M_grid'] = t2.to_dict('records')

# 2. CPS comparison
cps = load_lalonde('cps'); cps['y'] = cps.re78
for c in ('age', 'educ', 're74', 're75'): cps[c + 'sq'] = cps[c] ** 2
ests = {
    'naive difference in means': None,
    'PS 1:1, probability scale, R conventions (DW logit)': lambda: match(cps, 'treat', 'y', covariates=DW, ps_scale='probability', bias_adjust=False, var_matches=0, tie_tol=1e-5),
    'PS 1:1 logit, bias-corrected': lambda: match(cps, 'treat', 'y', covariates=DW, bias_adjust=True, bias_covariates=COV),
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
           f'Experimental ATT: {exp:.1f}. Published estimates for these data (Stata teffects psmatch/ipw via the Mixtape) '
           'are in section 0, with the Mixtape\'s own specification; Dehejia & Wahba (2002, Table 3) could not be retrieved.', '', md_table(t3.round(1)), '']
out_js['cps'] = t3.to_dict('records')

# 3. peers on the same data and scores
peer_py = subprocess.run(['bash', str(ROOT / 'bench/peers-matching.sh')], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
peer_py = str(ROOT / peer_py) if not os.path.isabs(peer_py) else peer_py
from causal_llmrec.weighting import propensity_score
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
               'match PS logit 1:1, plain (the default; AI 2016 SE)': lambda: match(fr, 'exposure', 'outcome', covariates=SIM_CONFOUNDERS),
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

text = f"# Matching estimators: validation against known answers\n\nCommand: `{cmd}` ({time.time() - t_start:.0f} s; {load_note()})\n\n" + '\n'.join(out_md)
open(ROOT / 'bench/results/matching_validation.md', 'w').write(text)
open(ROOT / 'bench/results/matching_published.md', 'w').write(pub_text(time.time() - t_start))
json.dump(out_js, open(ROOT / 'bench/results/matching_validation.json', 'w'), indent=1, default=float)
print(text)
