"""The Ollama protocol adapter: /api/* requests in, engine events out, Ollama's exact bytes back."""
