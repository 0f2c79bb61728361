"""Jobs (the original ORION + CORTEX): submission, dispatch, supervision, workers.

Built by the job-core issue.
"""
