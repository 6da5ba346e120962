"""Reports for staff and letters for holders: the daily report, expiry notices (rule 1.7)
and the hand-over notice (交付通知書), as JSON, CSV and PDF."""
