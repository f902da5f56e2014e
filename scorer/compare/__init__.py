"""What to do with result records: leaderboards with intervals, the HTML report, the CI regression gate."""
