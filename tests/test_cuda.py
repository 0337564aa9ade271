"""CausalBert on a CUDA device: a few steps of fit and predict on device 'cuda' agree with the same run on the CPU.

Skipped where no GPU is present (torch.cuda.is_available() is False). The runs are made comparable by removing what
legitimately differs between the devices: dropout off (CUDA draws from its own random stream), float32 everywhere
(precision='fp32' instead of the bf16/fp16 autocast that 'auto' picks on CUDA, TF32 matrix products off). What remains is
the order of floating-point sums inside the kernels, hence a tolerance instead of equality."""
import numpy as np, pandas as pd, pytest, torch
from causal_llmrec.bert import CausalBert, predict, toy_world
from causal_llmrec.bert_train import fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU (torch.cuda.is_available() is False)')

@pytest.fixture(scope='module')
def world():
    return toy_world(n_users=20, n_items=12, seed=1)

@pytest.fixture
def fp32_on_gpu():
    "Full float32 matrix products on the GPU (no TF32), as on the CPU; the previous setting is restored."
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old

def _run(world, device, strategy):
    "Train a tiny CausalBert for a few steps on `device` and predict every logged pair: (model, train result, predictions)."
    pairs, ut, it, _ = world
    m = CausalBert.tiny(seed=0, encoder_dropout=0.0, dropout=0.0)
    steps = dict(strategy='cached', encoder_steps=4, head_epochs=3) if strategy == 'cached' else dict(strategy='full', epochs=1)
    r = fit(m, pairs, ut, it, device=device, precision='fp32', batch_size=32, head_batch_size=64, seed=0, progress=False, **steps)
    return m, r, predict(m, pairs, ut, it, precision='fp32')

@pytest.mark.parametrize('strategy', ['cached', 'full'])
def test_fit_and_predict_on_cuda_agree_with_the_cpu(world, fp32_on_gpu, strategy):
    mc, rc, pc = _run(world, 'cpu', strategy)
    mg, rg, pg = _run(world, 'cuda', strategy)
    assert mc.device.type == 'cpu' and mg.device.type == 'cuda'          # each run stayed on its device
    assert len(pg) == len(pc) and (pg[['user_id', 'item_id']].to_numpy() == pc[['user_id', 'item_id']].to_numpy()).all()
    for col in ('g', 'q0', 'q1', 'tau'):
        np.testing.assert_allclose(pg[col].to_numpy(), pc[col].to_numpy(), rtol=0, atol=5e-4, err_msg=f'{strategy}: {col}')
    assert pc['tau'].std() > 1e-4                                      # the predictions vary: agreement is not trivial
    wc = torch.cat([p.detach().flatten().cpu() for p in mc.heads.parameters()])
    wg = torch.cat([p.detach().flatten().cpu() for p in mg.heads.parameters()])
    assert torch.allclose(wg, wc, rtol=0, atol=5e-3), f'{strategy}: head weights differ by {(wg - wc).abs().max():.2e}'

def test_predictions_come_back_to_the_cpu_as_numbers(world, fp32_on_gpu):
    "predict on a CUDA model returns a plain pandas frame of float64 probabilities in [0, 1] (no tensors left on the device)."
    _, _, pg = _run(world, 'cuda', 'cached')
    for col in ('g', 'q0', 'q1'):
        assert pg[col].dtype == np.float64 and pg[col].between(0, 1).all()
