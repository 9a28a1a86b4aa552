"""Generated message modules (python -m protocol.codegen). Do not edit."""
