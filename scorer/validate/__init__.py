"""Judge validity: agreement with pairwise votes and rankings (``svgscore validate``)."""
