"""First-token latency: the prompt's forward pass (prefill) and the greedy choice of the next token."""

from perfsuite.measure import Phase, Work


def test_first_token(phase_benchmark, perf_backend, perf_threads, prompt):
    work = Work(Phase.FIRST_TOKEN, prompt_tokens=prompt.n_tokens, threads=perf_threads)

    next_tokens = phase_benchmark(work, perf_backend.first_token, prompt.as_batch())

    assert next_tokens.shape == (1,)
