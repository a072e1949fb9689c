"""Code that runs inside the sandbox container: the only code the runner image holds."""
