"""Launch, run and shard the harness: Docker, native, Slurm; images and their archives."""
