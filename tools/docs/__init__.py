"The docs toolchain (a development tool, not part of the `causal_llmrec` package): see `tools/docs/build.py`."
