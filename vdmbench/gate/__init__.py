"""Release gating: policies, comparison statistics, reports and portable baseline files."""
