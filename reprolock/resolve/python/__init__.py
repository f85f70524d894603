"""The Python layer: index adapters, target-aware file selection and the resolvelib provider."""
