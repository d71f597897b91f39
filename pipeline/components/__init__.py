"""Custom components and executors: code that runs inside the pipeline's components."""
