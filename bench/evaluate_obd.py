"""Off-policy evaluation on the Open Bandit Dataset sample (Saito et al. 2021).

Estimate the click rate of one logged policy from the other policy's logs with IPS, SNIPS, DM and DR, and compare
with the on-policy click rate of the target policy's own log (the ground truth), for every campaign and both
directions. The DM and DR intervals are computed twice: with the reward model refitted in every bootstrap draw (the
default of `off_policy_value`) and held fixed (`refit=False`, the behaviour before), to show how far the fixed one
understates DM's uncertainty. Writes bench/results/evaluate_obd.md and .json.

    .venv/bin/python bench/evaluate_obd.py [--n-boot 1000] [--seed 0]
"""
import argparse, itertools, json, sys, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from evaluate_common import md_table, write_published
from causal_llmrec.data import load_open_bandit
from causal_llmrec.evaluate import EvaluationWarning
from causal_llmrec.ope import off_policy_value, bernoulli_ts_action_dist, obd_bts_prior, uniform_policy

OUT = Path(__file__).parent / 'results'


def logs(policy, campaign):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        d = load_open_bandit(policy, campaign)
    return d.interactions.join(d.users, on='user_id'), [c for c in d.users.columns if c.startswith('user_feature_')]


def run(n_boot, seed):
    rows, notes = [], []
    for camp in ('all', 'men', 'women'):
        rnd, uf = logs('random', camp); bts, _ = logs('bts', camp)
        n_items = int(rnd.item_id.nunique())
        a, b = obd_bts_prior(camp)
        bts_sim = bernoulli_ts_action_dist(a, b, len_list=3, n_sim=100_000, seed=seed)
        # sensitivity: the time-averaged action distribution of the bts log itself (its actions, not its clicks)
        freq = bts.groupby(['position', 'item_id']).size().rename('n').reset_index()
        freq['prob'] = freq.n / freq.groupby('position').n.transform('sum')
        settings = [
            ('random -> bts', rnd, bts, bts_sim, 'BTS re-simulated from the production prior (as OBP)', None),
            ('random -> bts', rnd, bts, freq[['item_id', 'position', 'prob']], 'action frequencies of the bts log (oracle)', None),
            ('bts -> random', bts, rnd, uniform_policy(sorted(rnd.item_id.unique())), 'uniform 1/n_items', None),
            ('bts -> random', bts, rnd, uniform_policy(sorted(rnd.item_id.unique())), 'uniform 1/n_items', 100.0),
        ]
        for direction, lg, truth_log, target, tname, clip in settings:
            for rm, refit in itertools.product(('logistic', 'mean'), (True, False)):
                with warnings.catch_warnings(record=True) as wl:
                    warnings.simplefilter('always', EvaluationWarning)
                    res = off_policy_value(lg, target, context=uf, reward_model=rm, clip=clip, n_boot=n_boot, seed=seed, refit=refit)
                err = res.relative_error(truth_log.outcome.values, seed=seed)
                tr = truth_log.outcome.values
                for est, r in err.iterrows():
                    e = res.estimates.loc[est]
                    rows.append(dict(campaign=camp, direction=direction, target=tname, reward_model=rm, refit=refit,
                                     clip=clip if clip else 'none', n_clipped=res.n_clipped, max_weight=round(res.max_weight, 1),
                                     ess=round(res.ess), estimator=est, estimate=e.value, ci_low=e.ci_low, ci_high=e.ci_high,
                                     truth=r.truth, truth_se=tr.std(ddof=1) / np.sqrt(len(tr)),
                                     rel_error=r.relative_error, rel_error_ci_low=r.ci_low, rel_error_ci_high=r.ci_high,
                                     n_items=n_items, unlogged_mass=round(res.unlogged_mass, 4)))
                notes += [f"{camp} {direction} ({tname}, {rm}, clip={clip}): {w.message}" for w in wl]
                print(f"{camp} {direction} {tname} {rm} clip={clip} refit={refit} done", flush=True)
    return pd.DataFrame(rows), notes


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--n-boot', type=int, default=1000); ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    cmd = '.venv/bin/python bench/evaluate_obd.py ' + ' '.join(sys.argv[1:])
    t0 = time.time(); df, notes = run(args.n_boot, args.seed); secs = time.time() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / 'evaluate_obd.json').write_text(json.dumps(dict(command=cmd, seconds=round(secs, 1), rows=df.to_dict('records'),
                                                          warnings=notes), indent=1, default=float))
    fmt = df.assign(estimate=df.apply(lambda r: f"{r.estimate:.5f} [{r.ci_low:.5f}, {r.ci_high:.5f}]", axis=1),
                    truth=df.apply(lambda r: f"{r.truth:.5f} ± {1.96 * r.truth_se:.5f}", axis=1),
                    rel_error=df.apply(lambda r: f"{r.rel_error:.3f} [{r.rel_error_ci_low:.3f}, {r.rel_error_ci_high:.3f}]", axis=1))
    lines = [f"# Off-policy evaluation on the Open Bandit Dataset sample", "", f"Command: `{cmd}` ({secs:.0f} s, 2 CPU cores)", ""]
    # summary: mean relative error per estimator (logistic reward model, main targets)
    main_rows = df[df.refit & (df.reward_model == 'logistic') & ~df.target.str.contains('oracle')]
    piv = main_rows.pivot_table(index=['direction', 'clip'], columns='estimator', values='rel_error', aggfunc='mean')
    best = main_rows.loc[main_rows.groupby(['campaign', 'direction', 'clip']).rel_error.idxmin()]
    lines += ["## Summary: relative error |estimate - truth| / truth, mean over the three campaigns (logistic reward model)", "",
              md_table(piv, digits=3), "", "Best estimator per setting:", "",
              md_table(best[['campaign', 'direction', 'clip', 'estimator', 'rel_error']], index=False, digits=3), ""]
    # the DM / DR intervals with the reward model held fixed vs refitted in every bootstrap draw
    dd = df[df.estimator.isin(['DM', 'DR'])].assign(width=lambda d: d.ci_high - d.ci_low,
                                                    covers=lambda d: (d.ci_low <= d.truth) & (d.truth <= d.ci_high))
    cov = dd.groupby(['estimator', 'reward_model', 'refit']).agg(settings=('covers', 'size'), covers_truth=('covers', 'sum'),
                                                                 mean_ci_width=('width', 'mean'), median_ci_width=('width', 'median'))
    cov = cov.rename(index={True: 'refitted', False: 'held fixed'}, level='refit')
    lines += ["## DM and DR intervals: reward model held fixed vs refitted in every bootstrap draw", "",
              "Does the 95% interval contain the truth (the target policy's own click rate)? Over every campaign, direction, "
              "target and clipping setting:", "", md_table(cov, digits=5), ""]
    for (camp, direction), g in fmt.groupby(['campaign', 'direction'], sort=False):
        lines += [f"## {camp}: {direction}", "",
                  md_table(g[['target', 'reward_model', 'refit', 'clip', 'n_clipped', 'max_weight', 'ess', 'estimator', 'estimate', 'truth', 'rel_error']], index=False), ""]
    if notes: lines += ["## Warnings raised", ""] + [f"- {n}" for n in sorted(set(notes))] + [""]
    (OUT / 'evaluate_obd.md').write_text("\n".join(lines))
    ours = main_rows[main_rows.direction == 'random -> bts'].set_index(['campaign', 'estimator'])
    cell = lambda c, e: f"{ours.loc[(c, e), 'rel_error']:.3f} [{ours.loc[(c, e), 'rel_error_ci_low']:.3f}, {ours.loc[(c, e), 'rel_error_ci_high']:.3f}]"
    ours_rows = "\n".join(f"| **ours**{' (`BTS re-simulated from the production prior`, ' + str(args.n_boot) + ' bootstrap replicates, reward model refitted in each, CI of the error)' if c == 'all' else ''} "
                          f"| small sample | {c} | {cell(c, 'DM')} | {cell(c, 'IPS')} | {cell(c, 'DR')} |" for c in ('all', 'men', 'women'))
    write_published(OUT / 'evaluate_obd.md', 'obd', ours_rows=ours_rows)
    print("\n".join(lines))


if __name__ == '__main__':
    main()
