"""The Anthropic-compatible adapter (/v1/messages): Anthropic requests in, the native chat checks and the same
engine behind, answered in Anthropic's shapes as Ollama's anthropic middleware writes them."""
