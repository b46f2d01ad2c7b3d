"""Generation: prefill plus greedy decoding of exactly N new tokens with the KV cache.

Each round is one generation; time to first token, per-token decode latency and decode
throughput are read from timestamps taken inside that same run.
"""

from perfsuite.measure import Phase, Work


def test_generate(phase_benchmark, perf_backend, perf_threads, generate_prompt, new_tokens, batch_size):
    work = Work(
        Phase.GENERATE,
        prompt_tokens=generate_prompt.n_tokens,
        threads=perf_threads,
        new_tokens=new_tokens,
        batch_size=batch_size,
    )

    generated = phase_benchmark.generate(work, generate_prompt.as_batch(batch_size))

    assert generated.shape == (batch_size, new_tokens)
