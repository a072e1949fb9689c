"""Privacy-computing products over HTTP: encrypted verification and scoring (``sandbox.he``)."""
