"""CausalBert against the recommender and uplift baselines on the Sato et al. (ECIR 2021) MovieLens-100K world,
out of sample, over several seeds, with cold-start slices.

For each seed s: `sato_world(n_users=N, seed=s)` logs every user x item pair (exposure from rank-based propensities,
outcome from the potential outcomes; truth mu0, mu1, tau), and `cold_start_split(world, item_frac=.2, user_frac=.2,
val_frac=.1, test_frac=.2, seed=s)` holds whole users and items out of training. Every method trains on the train pairs
only. Each baseline of `causal_llmrec.baselines` is tuned with the same budget (--budget settings: its defaults, then
settings drawn from its grid) by the validation CDCG@10 (the truth on the validation pairs); CausalBert is NOT tuned
(one fixed setting). Test users rank their test candidates (all their test pairs of a slice, the test slice of the
catalogue, as Sato et al. rank the catalogue); the scores are the causal precision CP@10 and CP@100, CDCG@10, CDCG
over the whole list (`causal_llmrec.evaluate.causal_ranking_metrics`) and the normalised true-uplift gain
(model - random)/(oracle - random) of the top-10 (`true_uplift_at_k`), on the warm, cold-item, cold-user and all
test pairs separately.

    .venv/bin/python bench/sato_bench.py [--n-users 300] [--seeds 0 1 2] [--budget 3] [--threads 2]
    .venv/bin/python bench/sato_bench.py --n-users 60 --seeds 0 --budget 1 --head-epochs 2 --out /tmp/sato_smoke  # smoke

Writes bench/results/sato_bench.md and .json (with the command).
"""
import argparse, json, os, sys, time, warnings, platform
from pathlib import Path
_thr = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == '--threads'), '2')
os.environ.setdefault('OMP_NUM_THREADS', _thr); os.environ.setdefault('MKL_NUM_THREADS', _thr)
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import numpy as np, pandas as pd, torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from causal_llmrec.worlds import sato_world, cold_start_split, SATO_COVARIATES
from causal_llmrec.text import texts
from causal_llmrec.bert import CausalBert, predict
from causal_llmrec.bert_train import fit
from causal_llmrec import baselines as B
from causal_llmrec.recommenders import BASELINES
from causal_llmrec.evaluate import causal_ranking_metrics, true_uplift_at_k, EvaluationWarning

BASE_METHODS = ['popularity', 'bpr', 'click_gb', 'ulbpr', 'ulrmf', 'dlce', 'cause', 'cubn', 'cibn',
                'logistic_t', 't_learner_gb', 'x_learner_gb', 'dr_learner_gb']
ID_BASED = ['popularity', 'bpr', 'ulbpr', 'ulrmf', 'dlce', 'cause', 'cubn', 'cibn']   # scores from user / item ids
VARIANTS = ['both', 'text', 'covariates']
SLICES = ['all', 'warm', 'cold item', 'cold user', 'cold both']
METRICS = ['CP@10', 'CP@100', 'CDCG@10', 'CDCG', 'gain@10']


def log(*a): print(f'[{time.strftime("%H:%M:%S")}]', *a, flush=True)


def metrics(frame:pd.DataFrame, score:np.ndarray, seed:int)->dict:
    "CP@10, CP@100, CDCG@10, CDCG and the normalised top-10 true-uplift gain of each user's ranking of its rows of frame."
    sc = frame[['user_id', 'item_id']].assign(score=np.asarray(score, float))
    eff = frame[['user_id', 'item_id', 'tau']]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', EvaluationWarning)
        c = causal_ranking_metrics(sc, eff, k=[10, 100], seed=seed)
        g = true_uplift_at_k(sc, eff, k=10, seed=seed)['share_of_oracle']
    return {'CP@10': c['CP@10'], 'CP@100': c['CP@100'], 'CDCG@10': c['CDCG@10'], 'CDCG': c['CDCG'], 'gain@10': float(g),
            'users': int(c['users']), 'pairs': len(frame)}


def val_cdcg10(val:pd.DataFrame, score:np.ndarray)->float:
    "The tuning rule, the same for every baseline: validation CDCG@10 against the truth."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', EvaluationWarning)
        return float(causal_ranking_metrics(val[['user_id', 'item_id']].assign(score=score), val[['user_id', 'item_id', 'tau']],
                                            k=10, full=False)['CDCG@10'])


def run_seed(seed:int, args, shared)->tuple:
    t0 = time.perf_counter()
    w = sato_world(n_users=args.n_users, seed=seed)
    sp = cold_start_split(w, item_frac=.2, user_frac=.2, val_frac=.1, test_frac=.2, seed=seed)
    fr = w.frame().reset_index(drop=True)
    fr['outcome'] = fr.outcome.astype(int); fr['propensity'] = w.data.interactions.propensity.to_numpy()
    tau = w.truth.tau.to_numpy(); mu1 = w.truth.mu1.to_numpy()
    tr = fr.iloc[sp.rows('train')].reset_index(drop=True)                      # no truth columns in training
    va = fr.iloc[sp.rows('val')].assign(tau=tau[sp.rows('val')]).reset_index(drop=True)
    te_rows = sp.rows('test')
    te = fr.iloc[te_rows].assign(tau=tau[te_rows], mu1=mu1[te_rows], slice=sp.pairs.slice.to_numpy()[te_rows]).reset_index(drop=True)
    slices = {'all': np.ones(len(te), bool)}
    for s in SLICES[1:]:
        m = (te.slice == s).to_numpy()
        if m.any(): slices[s] = m
    log(f'seed {seed}: world {w.n_users} users x {w.n_items} items ({w.info["build_s"]}s); train {len(tr):,} '
        f'(exposed {int(tr.exposure.sum()):,}), val {len(va):,}, test {len(te):,} pairs '
        + ', '.join(f'{s} {int(m.sum()):,}' for s, m in slices.items() if s != 'all'))
    rows, timing = [], []
    ut, it = texts(w.data)                                                     # user text = the user's rated films

    def add(method, score_name, kind, score, info):
        for s, m in slices.items():
            rows.append(dict(seed=seed, method=method, score=score_name, kind=kind, slice=s, **metrics(te[m], score[m], seed), **info))

    rng = np.random.default_rng(seed)
    add('oracle', 'true tau', 'reference', te.tau.to_numpy(), {})
    add('oracle click', 'true mu1', 'reference', te.mu1.to_numpy(), {})
    add('random', 'uniform', 'reference', rng.random(len(te)), {})
    te_x = te.drop(columns=['tau', 'mu1', 'slice'])                            # what the models see at test time
    for name in args.methods:
        cls = BASELINES[name]; t1 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            res = B.tune(cls, tr, va, val_cdcg10, budget=args.budget, seed=seed, covariates=SATO_COVARIATES)
            t2 = time.perf_counter(); s = res.model.predict(te_x); score_s = time.perf_counter() - t2
        info = dict(tune_s=time.perf_counter() - t1 - score_s, fit_s=res.model.fit_seconds_, score_s=score_s,
                    val_cdcg10=res.best_score, params=json.dumps(res.best_params, default=str))
        add(name, cls.score_kind, 'ID' if name in ID_BASED else 'covariates', s, info)
        a = rows[-len(slices)]
        log(f'seed {seed} {name:<14} tune {info["tune_s"]:6.1f}s ({args.budget} settings), best {res.best_params} '
            f'val CDCG@10 {res.best_score:.4f}; test all CP@10 {a["CP@10"]:.4f} CDCG {a["CDCG"]:.4f}')
    for inputs in args.variants:
        t1 = time.perf_counter()
        covs = None if inputs == 'text' else SATO_COVARIATES
        if args.encoder_steps and inputs != 'covariates':
            m = CausalBert.from_encoder(None, seed=seed, covariates=covs, inputs=inputs)    # a fresh encoder to fine-tune
        else:
            torch.manual_seed(seed)
            m = CausalBert(shared.encoder, shared.tokenizer, encoder_name=shared.cfg['encoder_name'], covariates=covs, inputs=inputs)
        r = fit(m, tr, ut, it, strategy='cached', encoder_steps=args.encoder_steps if inputs != 'covariates' else 0,
                batch_size=32, head_epochs=args.head_epochs, head_batch_size=args.head_batch_size, patience=3, progress=False,
                seed=seed, device=args.device)
        fit_s = time.perf_counter() - t1
        t2 = time.perf_counter(); p = predict(m, te_x, ut, it); score_s = time.perf_counter() - t2
        info = dict(fit_s=fit_s, score_s=score_s, train_pairs=r.n_train + r.n_val, epochs_run=r.epochs_run, head_steps=r.head_steps,
                    encoder_steps=r.encoder_steps, head_pairs_per_s=r.head_pairs_per_s, fit_pairs_per_s=(r.n_train + r.n_val)/fit_s,
                    score_pairs_per_s=len(te)/score_s, kept_logistic_start='kept the start' in r.note, params=r.note)
        for col, sc in (('tau', 'uplift tau'), ('q1', 'click head Q1')):
            add(f'CausalBert {inputs}', sc, 'text' if inputs != 'covariates' else 'covariates', p[col].to_numpy(), info)
        timing.append(dict(seed=seed, variant=inputs, **{k: v for k, v in info.items() if k != 'params'}))
        a = rows[-2*len(slices)]
        log(f'seed {seed} CausalBert {inputs:<10} fit {fit_s:6.1f}s ({r.epochs_run} head epochs, {r.head_pairs_per_s:,.0f} pairs/s), '
            f'score {score_s:.1f}s ({len(te)/score_s:,.0f} pairs/s); test all CP@10 {a["CP@10"]:.4f} CDCG {a["CDCG"]:.4f}')
    log(f'seed {seed} done in {time.perf_counter() - t0:.0f}s')
    return rows, timing, dict(seed=seed, n_users=w.n_users, n_items=w.n_items, train=len(tr), val=len(va), test=len(te),
                              cold_users=len(sp.cold_users), cold_items=len(sp.cold_items), ate=w.ate, att=w.att,
                              test_slices={s: int(m.sum()) for s, m in slices.items()})


def label(r): return f"{r['method']} [{r['score']}]"


def report(R:pd.DataFrame, T:pd.DataFrame, worlds:list, args, seconds:float)->str:
    cmd = '.venv/bin/python bench/' + Path(__file__).name + ' ' + ' '.join(sys.argv[1:])
    R = R.assign(label=R.apply(label, axis=1))
    lines = ['# CausalBert vs baselines on the Sato et al. MovieLens-100K world (out of sample, cold start)', '',
             f'Command: `{cmd}`', '',
             f'Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch threads {args.threads}, device {args.device}; '
             f'total {seconds:.0f} s.', '',
             f'Worlds: `sato_world(n_users={args.n_users}, seed=s)` for seeds {args.seeds} (all 1,682 items; rank-based logging, '
             '100 recommendations per user on average); `cold_start_split(item_frac=0.2, user_frac=0.2, val_frac=0.1, '
             'test_frac=0.2, seed=s)`. Every method trains on the train pairs only (with the logged propensity column). '
             f'Baselines: tuned with the same budget ({args.budget} settings: defaults first, then random draws from each '
             'grid) by validation CDCG@10 against the truth, covariates `SATO_COVARIATES`. CausalBert: **not tuned** '
             f'(shipped MiniLM, {args.encoder_steps} encoder steps{" (frozen)" if not args.encoder_steps else ""}, '
             f'{args.head_epochs} head epochs of batch {args.head_batch_size}, patience 3); user texts list the '
             "user's rated films (the history the world's potential outcomes were fitted on), item texts title, year, "
             'genres, popularity.', '',
             "Each test user ranks all its test pairs of a slice (warm: user and item seen in training; cold item: item never in "
             "training; cold user: user never in training; all: every test pair of the user). Metrics "
             "(`causal_llmrec.evaluate.causal_ranking_metrics`, Sato et al.): CP@k = mean true tau of the top k, CDCG@k = "
             "sum of tau/log2(1+rank) over the top k, CDCG over the whole list, averaged over users; gain@10 = (model - random)/"
             "(oracle - random) of the summed true tau of the top 10 (`true_uplift_at_k`). Mean (sd) over seeds.", '']
    lines += ['| seed | users x items | train / val / test pairs | cold users / items | test pairs: warm, cold item, cold user, cold both | ATE |',
              '|---|---|---|---|---|---|']
    for wd in worlds:
        ts = wd['test_slices']
        lines.append(f"| {wd['seed']} | {wd['n_users']} x {wd['n_items']} | {wd['train']:,} / {wd['val']:,} / {wd['test']:,} | "
                     f"{wd['cold_users']} / {wd['cold_items']} | " + ', '.join(f"{ts.get(s, 0):,}" for s in SLICES[1:]) + f" | {wd['ate']:+.4f} |")
    g = R.groupby(['slice', 'label'])
    mean, sd = g[METRICS].mean(), g[METRICS].std()
    for s in [s for s in SLICES if s in set(R.slice)]:
        order = mean.loc[s].sort_values('CDCG', ascending=False).index
        lines += ['', f'## Test slice: {s}', '', '| method [score] | kind | ' + ' | '.join(METRICS) + ' |', '|---|---|' + '---|'*len(METRICS)]
        kinds = R.drop_duplicates('label').set_index('label').kind
        for lab in order:
            lines.append(f'| {lab} | {kinds[lab]} | ' + ' | '.join(f'{mean.loc[(s, lab), m]:.4f} ({sd.loc[(s, lab), m]:.4f})'
                                                                  if np.isfinite(sd.loc[(s, lab), m]) else f'{mean.loc[(s, lab), m]:.4f}'
                                                                  for m in METRICS) + ' |')
    # head-to-head: CausalBert both [uplift tau] against the named baselines, per seed
    cb = 'CausalBert both [uplift tau]'
    if cb in set(R.label):
        piv = R.pivot_table(index=['slice', 'seed'], columns='label', values=['CP@10', 'CDCG'])
        lines += ['', f'## Head to head: {cb} against each baseline (seeds won / seeds, mean difference)', '']
        rivals = [l for l in mean.index.get_level_values(1).unique() if not l.startswith(('CausalBert', 'oracle', 'random'))]
        cols = [s for s in SLICES if s in set(R.slice)]
        lines += ['| rival | ' + ' | '.join(f'{s}: CP@10 | {s}: CDCG' for s in cols) + ' |', '|---|' + '---|'*(2*len(cols))]
        for rv in rivals:
            cells = []
            for s in cols:
                for m in ('CP@10', 'CDCG'):
                    d = (piv.loc[s, (m, cb)] - piv.loc[s, (m, rv)]).dropna()
                    cells.append(f'{int((d > 0).sum())}/{len(d)} ({d.mean():+.4f})')
            lines.append(f'| {rv} | ' + ' | '.join(cells) + ' |')
        if 'cold item' in cols:
            ci = mean.loc['cold item']
            ids = [l for l in ci.index if l.split(' [')[0] in ID_BASED]
            if ids:
                best_id = ci.loc[ids, 'CDCG'].idxmax(); best_id10 = ci.loc[ids, 'CP@10'].idxmax()
                lines += ['', f"Cold items: {cb} CDCG {ci.loc[cb, 'CDCG']:.4f} vs the best ID-based method ({best_id}) "
                          f"{ci.loc[best_id, 'CDCG']:.4f}; CP@10 {ci.loc[cb, 'CP@10']:.4f} vs ({best_id10}) {ci.loc[best_id10, 'CP@10']:.4f}."]
    if len(T):
        tt = T.groupby('variant')[['fit_s', 'train_pairs', 'epochs_run', 'head_pairs_per_s', 'fit_pairs_per_s', 'score_s', 'score_pairs_per_s']].mean()
        kept = T.groupby('variant').kept_logistic_start.agg(['sum', 'size'])
        lines += ['', '## CausalBert timings (mean over seeds)', '',
                  'fit s includes encoding every unique text once (the frozen encoder caches embeddings across variants and seeds, '
                  'so the first text variant of a seed pays for new texts); head pairs/s is the heads\' training throughput '
                  '(pairs per second over all head epochs); scored pairs/s includes encoding the test users and items. '
                  '"kept start": seeds where CausalBert\'s own selection found that the deep heads did not beat their logistic '
                  'start on covariates by one standard error (validation tau-risk), so the logistic start was kept.', '',
                  '| variant | fit s | train pairs | head epochs run | head pairs/s | train pairs / fit s | score s | scored pairs/s | kept start |',
                  '|---|---|---|---|---|---|---|---|---|']
        for v, r in tt.iterrows():
            lines.append(f'| {v} | {r.fit_s:.1f} | {r.train_pairs:,.0f} | {r.epochs_run:.1f} | {r.head_pairs_per_s:,.0f} | '
                         f'{r.fit_pairs_per_s:,.0f} | {r.score_s:.1f} | {r.score_pairs_per_s:,.0f} | {kept.loc[v, "sum"]}/{kept.loc[v, "size"]} |')
    bt = R[R.slice == 'all'].dropna(subset=['tune_s']) if 'tune_s' in R else R.iloc[:0]
    if len(bt):
        bt = bt.groupby('method')[['tune_s', 'fit_s', 'score_s']].mean().sort_values('tune_s', ascending=False)
        lines += ['', f'## Baseline timings (mean over seeds; tune = all {args.budget} fits and validation scorings)', '',
                  '| method | tune s | fit s (best) | score s |', '|---|---|---|---|']
        lines += [f'| {m} | {r.tune_s:.1f} | {r.fit_s:.1f} | {r.score_s:.2f} |' for m, r in bt.iterrows()]
        pr = R[(R.slice == 'all') & R.params.notna() & ~R.method.str.startswith('CausalBert')][['seed', 'method', 'params']]
        lines += ['', '## Chosen baseline settings', '', '| method | ' + ' | '.join(f'seed {s}' for s in args.seeds) + ' |',
                  '|---|' + '---|'*len(args.seeds)]
        for m, gg in pr.groupby('method', sort=False):
            d = dict(zip(gg.seed, gg.params))
            lines.append(f'| {m} | ' + ' | '.join(f'`{d.get(s, "")}`' for s in args.seeds) + ' |')
    return cmd, '\n'.join(lines) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--n-users', type=int, default=300, help='users sampled into each world (943 = all)')
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--budget', type=int, default=3, help='settings tried per baseline')
    ap.add_argument('--methods', nargs='+', default=BASE_METHODS, choices=list(BASELINES))
    ap.add_argument('--variants', nargs='*', default=VARIANTS, choices=VARIANTS)
    ap.add_argument('--encoder-steps', type=int, default=0, help='CausalBert encoder fine-tuning steps (0: frozen)')
    ap.add_argument('--head-epochs', type=int, default=10)
    ap.add_argument('--head-batch-size', type=int, default=1024)
    ap.add_argument('--device', default='auto')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--out', default=str(ROOT/'bench'/'results'/'sato_bench'))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    shared = CausalBert.from_encoder(None, seed=0) if args.variants else None   # one frozen encoder: its text cache is shared
    rows, timing, worlds = [], [], []
    out = Path(args.out); out.parent.mkdir(parents=True, exist_ok=True)
    for s in args.seeds:
        r, t, wd = run_seed(s, args, shared)
        rows += r; timing += t; worlds.append(wd)
        cmd, md = report(pd.DataFrame(rows), pd.DataFrame(timing), worlds, args, time.perf_counter() - t0)
        Path(str(out) + '.md').write_text(md)
        json.dump(dict(command=cmd, args=vars(args), seconds=time.perf_counter() - t0,
                       machine=f'{platform.machine()}, {os.cpu_count()} CPUs, torch threads {args.threads}',
                       worlds=worlds, rows=rows, causalbert_timing=timing), open(str(out) + '.json', 'w'), indent=1, default=str)
    print(md, flush=True)
    log(f'wrote {out}.md and .json ({time.perf_counter() - t0:.0f}s)')


if __name__ == '__main__':
    main()
