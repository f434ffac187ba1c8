"""The published leaderboard: tables and plots built from results/*.json."""
