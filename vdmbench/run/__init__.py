"""plan -> generate -> write -> score -> store: the runner and the commands built on it (merge,
reproduce, score)."""
