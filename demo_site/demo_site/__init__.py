"""Demo Django project served by the launcher in tests and examples."""
