"""Polls app from the Django tutorial, used as a realistic demo workload."""
