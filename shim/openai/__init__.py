"""The OpenAI-compatible adapter (/v1): OpenAI requests in, the native checks and the same engine behind."""
