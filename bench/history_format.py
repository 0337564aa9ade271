"""The 'history' field as one text or as a list (issue 23): CausalBert (defaults otherwise) on text worlds whose taste shows only in
the history, the same split and the same worlds for both forms.

`causal_llmrec.text.text_fields(history='text')` writes a user's history as one string (activity, then the newest items' free texts
within the 'history' token budget); `history='list'` joins the items' texts with `LIST_SEP`, and CausalBert embeds each item alone and
reads the field as their mean. Per world (`text_world(n_users=300)`, mechanism 'history', the family of `bench/text_evidence.py`):
users split 30% test / 10% validation / 60% training (the split of text_evidence's ranking study), CausalBert fitted at its defaults
on the training users' logged pairs, the test users rank the whole catalogue; normalised true uplift gain at 10 on all items and on
the new (never-logged, held-out vocabulary) items. 'kept the start' says the one-standard-error rule reverted the heads to their
logistic start.

    .venv/bin/python bench/history_format.py [--worlds 500:1:1 500:1:4 800:1:1 800:1:4 800:1:7 700:2:1 700:2:10] [--threads 1]

A world is SEED0:CONFOUNDING:J (world J of text_evidence's family with that seed0 and text confounding; modification 1); J must
give the 'history' mechanism (J % 3 == 1). Writes bench/results/<--out>.json after every world (a rerun resumes) and <--out>.md.
"""
import argparse, json, os, sys, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TRANSFORMERS_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import numpy as np, pandas as pd, torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
from text_evidence import world_spec, gain, logged_pairs
from causal_llmrec.worlds import text_world, TEXT_COVARIATES
from causal_llmrec.text import text_fields, HISTORY_FORMATS
from causal_llmrec.bert import CausalBert, predict
from causal_llmrec.bert_train import fit

DEFAULT_WORLDS = ['500:1:1', '500:1:4', '800:1:1', '800:1:4', '800:1:7', '700:2:1', '700:2:10']


def one_world(spec: str) -> list:
    seed0, conf, j = spec.split(':'); sp = world_spec(int(j), int(seed0))
    if sp['mechanism'] != 'history': raise SystemExit(f"world {spec}: mechanism {sp['mechanism']!r}, not 'history' (J % 3 must be 1)")
    w = text_world(n_users=300, confounding=float(conf), modification=1.0, **sp)
    logged = logged_pairs(w)
    users = np.array(sorted(w.data.users.index)); rng = np.random.default_rng(sp['seed']); rng.shuffle(users)
    n_te, n_va = int(round(.3*len(users))), int(round(.1*len(users)))
    te_u, va_u = users[:n_te], users[n_te:n_te + n_va]
    train = logged[~logged.user_id.isin(np.concatenate([te_u, va_u]))].reset_index(drop=True)
    te = w.catalogue(te_u).reset_index(drop=True); new = te.item_id.isin(w.new_items).to_numpy()
    rows = []
    for form in HISTORY_FORMATS:
        uf, itf = text_fields(w.data, history=form)
        t0 = time.perf_counter()
        model = CausalBert.from_encoder(covariates=TEXT_COVARIATES, seed=sp['seed'])
        res = fit(model, train, uf, itf, progress=False, seed=sp['seed'])
        tau = predict(model, te, uf, itf).tau.to_numpy()
        rows.append(dict(world=spec, seed=sp['seed'], confounding=float(conf), attribute=sp['attribute'], history=form,
                         gain_all=gain(te, tau), gain_new=gain(te, tau, new), seconds=round(time.perf_counter() - t0, 1),
                         kept_start='kept the start' in res.note, note=res.note))
        print(f"[{spec}] {form}: all {rows[-1]['gain_all']:.3f} new {rows[-1]['gain_new']:.3f}"
              f"{' (kept the start)' if rows[-1]['kept_start'] else ''} {rows[-1]['seconds']:.0f}s", flush=True)
    return rows


def render(res: dict) -> str:
    R = pd.DataFrame(res['rows'])
    L = ["# The 'history' field as one text or as a list: CausalBert on history-only text worlds", "",
         f"Command: `{res['command']}`", "", f"Machine: {res['machine']}; load average at the start {res['load']:.1f}; {res['elapsed_s']:.0f} s in all.", "",
         "Normalised true uplift gain at 10, held-out users, whole catalogue (all items / new items); CausalBert at its defaults but for "
         "`text_fields(history=...)`. 'start' marks a world where the heads kept their logistic start (one-standard-error rule).", "",
         "| world (seed0:confounding:j) | seed | attribute | text: all | text: new | list: all | list: new |", "|---|---|---|---|---|---|---|"]
    for wld, g in R.groupby('world', sort=False):
        t, l = g[g.history == 'text'].iloc[0], g[g.history == 'list'].iloc[0]
        f = lambda r, c: f"{r[c]:.3f}{' (start)' if r['kept_start'] else ''}"
        L.append(f"| {wld} | {t.seed} | {t.attribute} | {f(t, 'gain_all')} | {t.gain_new:.3f} | {f(l, 'gain_all')} | {l.gain_new:.3f} |")
    s = R.groupby('history').agg(all_mean=('gain_all', 'mean'), all_sd=('gain_all', 'std'), new_mean=('gain_new', 'mean'),
                                 new_sd=('gain_new', 'std'), kept_start=('kept_start', 'sum'), n=('world', 'size'))
    L += ["", "| history form | all items: mean (sd) | new items: mean (sd) | worlds where the heads kept the start |", "|---|---|---|---|"]
    for form in HISTORY_FORMATS:
        r = s.loc[form]; L.append(f"| {form} | {r.all_mean:.3f} ({r.all_sd:.3f}) | {r.new_mean:.3f} ({r.new_sd:.3f}) | {int(r.kept_start)} of {int(r.n)} |")
    kept = R[~R.groupby('world').kept_start.transform('any')]
    if len(kept):
        k = kept.groupby('history')[['gain_all', 'gain_new']].mean()
        L += ["", f"In the {kept.world.nunique()} world(s) where neither form kept the start: text {k.loc['text', 'gain_all']:.3f} / "
                  f"{k.loc['text', 'gain_new']:.3f}, list {k.loc['list', 'gain_all']:.3f} / {k.loc['list', 'gain_new']:.3f} (all / new items)."]
    return '\n'.join(L) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--worlds', nargs='+', default=DEFAULT_WORLDS)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--out', default='history_format')
    a = ap.parse_args()
    torch.set_num_threads(a.threads); warnings.simplefilter('ignore')
    out = ROOT/'bench'/'results'/a.out
    res = json.loads(out.with_suffix('.json').read_text()) if out.with_suffix('.json').exists() else dict(
        command='.venv/bin/python bench/history_format.py ' + ' '.join(sys.argv[1:]), machine=f"{os.cpu_count()} CPUs, torch {torch.__version__}, {a.threads} thread(s)",
        load=os.getloadavg()[0], rows=[], elapsed_s=0.0)
    done = {r['world'] for r in res['rows']}
    for spec in a.worlds:
        if spec in done: continue
        t0 = time.perf_counter(); res['rows'] += one_world(spec); res['elapsed_s'] += time.perf_counter() - t0
        out.with_suffix('.json').write_text(json.dumps(res, indent=1))
    out.with_suffix('.md').write_text(render(res)); print(render(res))


if __name__ == '__main__':
    main()
