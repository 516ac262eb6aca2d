"""cscoach-pipeline: customer-service consultations in a bucket -> coaching insight in SQL tables."""
