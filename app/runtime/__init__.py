"""The server process: shared state, the model load, the server start and socket, the frontend preload, the
background warm-up, and scoring under the process-wide lock."""
