"""Tokenization latency: text to token ids, per backend and prompt length."""

from perfsuite.measure import Phase, Work


def test_tokenize(phase_benchmark, perf_backend, perf_threads, prompt):
    work = Work(Phase.TOKENIZE, prompt_tokens=prompt.n_tokens, threads=perf_threads)

    ids = phase_benchmark(work, perf_backend.tokenize, prompt.text)

    assert ids.shape == (1, prompt.n_tokens)
