"""Helpers of scripts/bench_gpu.py: random-weight Qwen2.5-shaped models, the workload, the servers, the clients
and the report. Only stable entry points are used (mlx-lm's public API, `python -m shim.cli serve|create`,
`python -m mlx_lm.server`, HTTP), so the benchmark runs from a plain checkout with PYTHONPATH=."""
