"""LLM oracle sidecar: strategic guidance from any OpenAI-compatible endpoint (or a
deterministic heuristic), validated, journaled point-in-time, read by the strategy."""
