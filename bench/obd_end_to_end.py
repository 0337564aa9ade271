"""Own logs, judged without a known truth, and checked against a randomised log (Open Bandit sample, campaign 'all').

The learner sees only the first half (by time) of the `bts` (Bernoulli Thompson sampling) log, read through the
package's data contract (`causal_llmrec.files`, treatment 'position': top slot vs lower slots). Each method scores every (user, item) pair;
its policy shows a user its top three items in slots 1-3. The policy's click rate is estimated off-policy from the
`bts` log (IPS, SNIPS, DR with bootstrap intervals) and then checked on the `random` log, whose uniform logging
makes IPS unbiased: a real check of the off-policy estimate, which must fall within the interval. The off-policy
estimate uses the second half of the bts log only (out of sample: the policy never trained on it).

    .venv/bin/python bench/obd_end_to_end.py [--seeds 0 1 2] [--n-boot 500]
"""
import argparse, json, os, sys, tempfile, time, warnings, platform
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import numpy as np, pandas as pd, torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from causal_llmrec.data import load_open_bandit
from causal_llmrec.files import load_data, write_open_bandit
from causal_llmrec.text import texts
from causal_llmrec.bert import CausalBert, predict
from causal_llmrec.bert_train import fit
from causal_llmrec import baselines as B
from causal_llmrec.recommenders import BASELINES
from causal_llmrec.evaluate import off_policy_value, ranking_policy, EvaluationWarning

OUT = ROOT/'bench'/'results'/'obd_end_to_end'


def write_files(policy:str, folder:Path):
    "The Open Bandit log as a user would export it (`causal_llmrec.files.write_open_bandit`: impressions, users, items, data spec); returns the log."
    write_open_bandit(folder, policy=policy)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); return load_open_bandit(policy, 'all')


def design(data):
    "Numeric covariates per (user, item) pair: one-hot user and item features (levels as in the data)."
    U = pd.get_dummies(data.users.astype(str), prefix=[f'u{i}' for i in range(data.users.shape[1])], dtype=float)
    I = data.items.copy()
    num = [c for c in I.columns if pd.api.types.is_numeric_dtype(I[c])]
    I = pd.concat([I[num].astype(float), pd.get_dummies(I.drop(columns=num).astype(str), dtype=float)], axis=1)
    I.columns = [f'i_{c}' for c in I.columns]
    def feats(pairs):
        return pd.concat([U.reindex(pairs.user_id).reset_index(drop=True), I.reindex(pairs.item_id).reset_index(drop=True)], axis=1)
    return feats, list(U.columns) + list(I.columns)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--n-boot', type=int, default=500)
    ap.add_argument('--epsilons', type=float, nargs='+', default=[0.0, 0.5])
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args(); torch.set_num_threads(args.threads); t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp())
    raw_bts, raw_rnd = write_files('bts', tmp/'bts'), write_files('random', tmp/'random')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); bts = load_data(tmp/'bts')            # the data contract: check and load
    feats, cols = design(bts)
    cut = bts.interactions.timestamp.quantile(0.5)
    first = (bts.interactions.timestamp <= cut).to_numpy()
    pairs = bts.interactions[first].reset_index(drop=True)                 # training: the first half of the bts log
    train = pd.concat([pairs[['user_id', 'item_id', 'exposure', 'outcome']], feats(pairs)], axis=1)
    grid = pd.MultiIndex.from_product([bts.users.index, bts.items.index], names=['user_id', 'item_id']).to_frame(index=False)
    G = pd.concat([grid, feats(grid)], axis=1)
    ut, it = texts(bts, max_tokens=128)
    ctx = [c for c in raw_bts.users.columns]
    lb = raw_bts.interactions.join(raw_bts.users, on='user_id').reset_index(drop=True)[~first].reset_index(drop=True)   # held-out half
    lr = raw_rnd.interactions.join(raw_rnd.users, on='user_id').reset_index(drop=True)
    items = sorted(raw_bts.items.index)
    rows = []
    def evaluate(name, seed, score):
        sc = grid.assign(score=score)
        for eps in args.epsilons:
            for lg, which in ((lb, 'bts second half (off-policy)'), (lr, 'random (check)')):
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore', EvaluationWarning)
                    res = off_policy_value(lg, ranking_policy(sc, lg, actions=items, epsilon=eps), context=ctx, reward_model='logistic',
                                           n_boot=args.n_boot, seed=seed)
                for est, r in res.estimates.iterrows():
                    rows.append(dict(method=f'{name}, epsilon {eps:g}', seed=seed, log=which, estimator=est, value=r.value, ci_low=r.ci_low,
                                     ci_high=r.ci_high, ess=res.ess))
        print(f'{name} seed {seed} done ({time.perf_counter()-t0:.0f}s)', flush=True)
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        evaluate('random scores', seed, rng.random(len(grid)))
        pop = pairs.groupby('item_id').outcome.mean().reindex(grid.item_id).fillna(0).to_numpy() + 1e-9*rng.random(len(grid))
        evaluate('item click rate', seed, pop)
        gb = BASELINES['click_gb'](covariates=cols, random_state=seed).fit(train)
        evaluate('click_gb', seed, gb.predict(G))
        m = CausalBert.from_encoder(None, seed=seed, covariates=cols, inputs='covariates')
        fit(m, train, ut, it, strategy='cached', head_epochs=20, head_batch_size=256, patience=4, progress=False, seed=seed)
        p = predict(m, G, ut, it)
        evaluate('CausalBert covariates [Q1: click if on top]', seed, p.q1.to_numpy())
        evaluate('CausalBert covariates [tau: gain of the top slot]', seed, p.tau.to_numpy())
    R = pd.DataFrame(rows)
    # the check: does the off-policy interval from the bts log contain the random log's unbiased IPS estimate?
    chk = R[R.log == 'random (check)'].query("estimator == 'IPS'")[['method', 'seed', 'value', 'ci_low', 'ci_high']].rename(
        columns={'value': 'random_ips', 'ci_low': 'rnd_lo', 'ci_high': 'rnd_hi'})
    off = R[R.log != 'random (check)'].merge(chk, on=['method', 'seed'])
    off['covers'] = (off.ci_low <= off.random_ips) & (off.random_ips <= off.ci_high)
    off['overlap'] = (off.ci_low <= off.rnd_hi) & (off.rnd_lo <= off.ci_high)
    cmd = '.venv/bin/python bench/obd_end_to_end.py ' + ' '.join(sys.argv[1:])
    lines = ['# Own logs judged without truth: the Open Bandit sample, learned on `bts`, checked on `random`', '',
             f'Command: `{cmd}`', '', f'Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch threads {args.threads}; total {time.perf_counter()-t0:.0f} s.', '',
             'Every method is trained on the first half (by time) of the bts log only (read through `causal_llmrec.files` with treatment `position`); its policy shows each '
             'user its top 3 items in slots 1-3 (with epsilon > 0: a uniformly random item instead, with probability epsilon). The value is the click rate per impression. "off-policy" estimates it from the second half of the bts log '
             f'(bootstrap {args.n_boot}); the random log, logged uniformly (propensity 1/80 per slot), gives an unbiased IPS check. '
             f'Seeds {args.seeds} (model seeds; the logs are fixed).', '',
             f"Logged click rate: bts second half {lb.outcome.mean():.5f}, random {lr.outcome.mean():.5f} ({len(lb):,} and {len(lr):,} impressions; "
             f"{int(lb.outcome.sum())} and {int(lr.outcome.sum())} clicks).", '',
             '## Off-policy estimate (bts log) against the randomised check (random log, IPS), mean over seeds', '',
             '| method | estimator | off-policy value [95% CI] | random-log IPS [95% CI] | interval covers the check | intervals overlap |', '|---|---|---|---|---|---|']
    for (meth, est), g in off.groupby(['method', 'estimator'], sort=False):
        lines.append(f'| {meth} | {est} | {g.value.mean():.5f} [{g.ci_low.mean():.5f}, {g.ci_high.mean():.5f}] | {g.random_ips.mean():.5f} '
                     f'[{g.rnd_lo.mean():.5f}, {g.rnd_hi.mean():.5f}] | {int(g.covers.sum())} of {len(g)} | {int(g.overlap.sum())} of {len(g)} |')
    lines += ['', f"Over all methods and seeds the off-policy interval covers the randomised check in {int(off.covers.sum())} of {len(off)} cases "
              f"(IPS {int(off[off.estimator == 'IPS'].covers.sum())}/{int((off.estimator == 'IPS').sum())}, "
              f"SNIPS {int(off[off.estimator == 'SNIPS'].covers.sum())}/{int((off.estimator == 'SNIPS').sum())}, "
              f"DR {int(off[off.estimator == 'DR'].covers.sum())}/{int((off.estimator == 'DR').sum())}, "
              f"DM {int(off[off.estimator == 'DM'].covers.sum())}/{int((off.estimator == 'DM').sum())})."]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    Path(str(OUT) + '.md').write_text('\n'.join(lines) + '\n')
    json.dump(dict(command=cmd, seconds=time.perf_counter()-t0, rows=rows), open(str(OUT) + '.json', 'w'), indent=1, default=float)
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
