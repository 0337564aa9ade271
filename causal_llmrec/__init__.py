"""causal_llmrec: causal inference for BERT-based recommendation.

The main verbs are available at the top level and are loaded when first used, so `import causal_llmrec` is quick and
does not import torch; only `CausalBert` (and training) do. Hand-written (not exported from a notebook): nbdev keeps the
`__version__` line below in step with settings.ini and leaves the rest. Documented in nbs/00c_errors.ipynb."""
__version__ = "0.1.0"

# module -> the names it gives the top level (imported on first use by __getattr__). A name equal to a module's name
# (`rank`) is left out: importing the submodule binds the module to that attribute.
_LAZY = {
    'errors': ('CausalLLMRecError', 'InputError', 'InputTypeError'),
    'data': ('RecData', 'DataError', 'simulate', 'load_movielens', 'load_open_bandit'),
    'files': ('load_data', 'check_data', 'read_spec'),
    'worlds': ('sato_world', 'text_world'),
    'discovery': ('learn_structure', 'rec_knowledge', 'DomainKnowledge'),
    'graphs': ('adjustment_set',),
    'matching': ('match', 'cem', 'balance_table'),
    'weighting': ('ipw', 'aipw', 'propensity_score'),
    'effects': ('EffectResult',),
    'sensitivity': ('rosenbaum_bounds', 'e_value', 'ovb_sensitivity'),
    'bert': ('CausalBert',),
    'evaluate': ('ranking_metrics', 'uplift_curve', 'simulate_ab_test'),
    'ope': ('off_policy_value',),
    'settings': ('PipelineConfig',),
    'runner': ('recommend', 'PipelineError'),
    'pipeline': ('run_pipeline',),
}
_WHERE = {name: mod for mod, names in _LAZY.items() for name in names}
__all__ = list(_WHERE)

def __getattr__(name):
    "Import the module that defines `name` on first use (PEP 562)."
    mod = _WHERE.get(name)
    if mod is None: raise AttributeError(f"module 'causal_llmrec' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f'{__name__}.{mod}'), name)
    globals()[name] = value
    return value

def __dir__(): return sorted(set(globals()) | set(__all__))
