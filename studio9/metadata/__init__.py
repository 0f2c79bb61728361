"""Metadata (the original ARIES): searchable documents about jobs, results and assets.

Built by the job-core issue.
"""
