"""Full generation latency: prefill plus greedy decoding of exactly N new tokens with the KV cache."""

from perfsuite.measure import Phase, Work


def test_generate(phase_benchmark, perf_backend, perf_config, prompt):
    new_tokens = perf_config.profile.new_tokens
    work = Work(Phase.GENERATE, prompt_tokens=prompt.n_tokens, new_tokens=new_tokens)

    generated = phase_benchmark(work, perf_backend.generate, prompt.as_batch(), new_tokens)

    assert generated.shape == (1, new_tokens)
