"""Rule model, YAML loading and linting, compilation to SQL, evaluation, and the signature library."""
