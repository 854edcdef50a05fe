"""Moving a shop from the seed's service (SPEC §12): importing its users, exchanging its refresh cookies."""
