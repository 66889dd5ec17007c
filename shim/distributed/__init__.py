"""One model served by several processes or hosts through MLX's own distributed engine (`mlx.launch`).

Rank 0 is the server: it alone binds OLLAMA_HOST, touches the store, prepares prompts and runs the engine.
Its engine thread tells the other ranks every MLX-affecting step it takes (loads, admissions with their prompt
tokens and sampling settings, cancellations, steps, unloads) through a broadcast on MLX's collectives
(`wire.share`); the other ranks (`follower.follow`) replay each one on their shard of the model, so every
rank runs the same forward passes in the same order. Liveness rides outside the collectives (`heartbeat`).

Module map: `group` (is this process part of a group; the leader's address), `lockstep` (the engine's hooks,
as a single process runs them: no-ops), `wire` (the broadcast and the gather), `leader` (rank 0's hooks),
`follower` (ranks 1..n), `shard` (loading one rank's part of a model), `heartbeat` (a follower that dies is
noticed by rank 0), `store_check` (at start, every rank has rank 0's store at the same path).
"""
