"""Load benchmarks: the portal's pages against a baseline app on the same stack (`make bench`)."""
