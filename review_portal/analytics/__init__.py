"""Analytics for the regional model center: progress of the season, timing, workload,
capacity, agreement between experts (Krippendorff's alpha) and expert calibration."""
