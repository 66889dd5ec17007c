"""GGUF files (llama.cpp's format, what Ollama's library and most local model collections hold) turned into
MLX model directories that mlx-lm, or our encoder for embedding models, loads like any other."""
