"""Train a tiny CausalBert on the toy world, under torchrun (DDP) or in one process, and save predictions.

    torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py OUT.csv          # 2 gloo processes, grad_accum=1
    python tests/ddp_worker.py OUT.csv --grad-accum 2                             # 1 process, same optimizer steps

Used by tests/test_bert.py::test_ddp_matches_single_process.
"""
import argparse, os, warnings
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import torch
from causal_llmrec.bert import CausalBert, predict, toy_world
from causal_llmrec.bert_train import fit

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out'); ap.add_argument('--grad-accum', type=int, default=1)
    ap.add_argument('--strategy', default='cached')
    a = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter('ignore')
    pairs, ut, it, _ = toy_world(n_users=24, n_items=16, seed=3)
    model = CausalBert.tiny(seed=0, encoder_dropout=0.0, dropout=0.0, input_dropout=0.0)   # no dropout: the two runs draw no random masks
    res = fit(model, pairs, ut, it, strategy=a.strategy, encoder_steps=6, epochs=1, head_epochs=3, batch_size=16,
              head_batch_size=64, grad_accum=a.grad_accum, lr=1e-3, head_lr=3e-3, val_frac=0.0, progress=False,
              device='cpu', seed=0)
    rank = int(os.environ.get('RANK', '0'))
    if rank == 0:
        predict(model, pairs, ut, it)[['user_id', 'item_id', 'g', 'q0', 'q1']].to_csv(a.out, index=False)
        print(res)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()

if __name__ == '__main__': main()
