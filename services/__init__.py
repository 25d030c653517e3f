"""The gRPC services (feedback, scoring, profile, model admin) and the code they share."""
