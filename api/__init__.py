"""The read side (SPEC §11): the stats API, live counts and the page."""
