"""cscoach-pipeline: consultations in a bucket -> coaching insight in SQL tables."""
