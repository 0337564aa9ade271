"""One exception base: every error class the package defines derives from `CausalLLMRecError` and keeps its builtin
base; the shared input checks of `causal_llmrec.errors` raise the class they are given and name what is wrong."""
import importlib, inspect, pkgutil

import numpy as np, pandas as pd
import pytest

import causal_llmrec
from causal_llmrec.errors import (CausalLLMRecError, InputError, InputTypeError, check_frame, check_columns, check_no_nan,
                                  check_finite, check_binary, check_array, check_same_length, check_propensity, logit,
                                  describe_rows)

MODULES = sorted(m.name for m in pkgutil.iter_modules(causal_llmrec.__path__) if not m.name.startswith('_'))
BUILTIN = {'DataError': ValueError, 'DiscoveryInputError': ValueError, 'KnowledgeError': ValueError,
           'NoAdjustmentSetError': ValueError, 'MatchingError': ValueError, 'ConfigError': ValueError,
           'PipelineError': RuntimeError, 'UnknownUserError': LookupError, 'BaselineInputError': ValueError,
           'EvaluationInputError': ValueError, 'InputError': ValueError, 'InputTypeError': TypeError}


def package_errors():
    "(module, class) for every exception class (not a warning) defined in a module of the package."
    out = []
    for name in MODULES:
        mod = importlib.import_module(f'causal_llmrec.{name}')
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ == mod.__name__ and issubclass(cls, Exception) and not issubclass(cls, Warning):
                out.append((name, cls))
    return out


def test_the_known_error_classes_are_found():
    found = {c.__name__ for _, c in package_errors()}
    assert {'DataError', 'DiscoveryInputError', 'PipelineError', 'ConfigError', 'MatchingError'} <= found, found


@pytest.mark.parametrize("mod, cls", package_errors(), ids=lambda x: getattr(x, '__name__', x))
def test_every_error_derives_from_the_base_and_keeps_its_builtin(mod, cls):
    assert issubclass(cls, CausalLLMRecError), f"causal_llmrec.{mod}.{cls.__name__} does not derive from CausalLLMRecError"
    if cls.__name__ in BUILTIN: assert issubclass(cls, BUILTIN[cls.__name__])


def test_one_except_catches_the_families():
    from causal_llmrec.data import RecData
    from causal_llmrec.settings import PipelineConfig
    from causal_llmrec.discovery import learn_structure
    for bad in (lambda: RecData(pd.DataFrame(index=[1]), pd.DataFrame(index=[1]), pd.DataFrame()),
                lambda: PipelineConfig.from_dict({'seed': -1}),
                lambda: learn_structure(pd.DataFrame({'a': [1., np.nan, 2.], 'b': [0, 1, 0]}))):
        with pytest.raises(CausalLLMRecError): bad()


class FamilyError(CausalLLMRecError, ValueError): pass


def test_checks_raise_the_given_class_and_name_the_problem():
    df = pd.DataFrame({'t': [1, 0, 1], 'y': [1., 0., np.nan], 'x': [1., np.inf, 2.]}, index=[10, 11, 12])
    with pytest.raises(InputTypeError, match=r"logs must be a pandas DataFrame, got ndarray"): check_frame(df.values, 'logs')
    assert isinstance(InputTypeError('x'), TypeError)
    with pytest.raises(FamilyError, match=r"logs lacks column\(s\) \['z'\]; it has \['t', 'y', 'x'\]"):
        check_columns(df, ['t', 'z'], 'logs', FamilyError)
    with pytest.raises(FamilyError, match=r"logs is empty"): check_frame(df.iloc[:0], 'logs', error=FamilyError)
    with pytest.raises(FamilyError, match=r"column 'y' has 1 missing value\(s\) at rows \[12\]; do this"):
        check_no_nan(df, 'logs', error=FamilyError, fix='do this')
    check_no_nan(df, columns=['t', 'x'])
    with pytest.raises(InputError, match=r"infinite values in column\(s\) 'x' \(1 rows\)"): check_finite(df)
    assert check_binary(pd.Series([True, False])).tolist() == [1, 0]
    with pytest.raises(InputError, match=r"'t' must be binary 0/1, found values \[2\]"): check_binary([0, 1, 2], 't')
    with pytest.raises(InputError, match="missing or non-numeric"): check_binary(['a', 1], 't')
    with pytest.raises(InputError, match="one-dimensional"): check_array(np.ones((2, 2)), 's')
    with pytest.raises(InputError, match="1 NaN/inf"): check_array([1., np.nan], 's')
    with pytest.raises(InputError, match="cannot be read"): check_array(['a'], 's')
    assert check_same_length(a=[1], b=[2]) == 1
    with pytest.raises(FamilyError, match="lengths differ: a=1, b=2"): check_same_length(FamilyError, a=[1], b=[1, 2])
    with pytest.raises(InputError, match=r"must lie in \(0, 1\]: 2 of 3"): check_propensity([0.5, 0., 1.5])
    assert describe_rows(pd.Series([True] * 7)) == '[0, 1, 2, 3, 4] and 2 more'


def test_logit_is_finite_and_inverts_the_sigmoid():
    p = np.array([0., 1e-3, 0.5, 0.9, 1.])
    z = logit(p)
    assert np.isfinite(z).all() and abs(z[2]) < 1e-12
    np.testing.assert_allclose(1 / (1 + np.exp(-z[1:4])), p[1:4], rtol=1e-12)
