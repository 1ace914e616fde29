"""Arrays in, numbers out: label protocols, cluster-to-class matching, metrics and their specs."""
