"""Community decisions: constituencies ("who are we"), people and their sign-up, events and
attendance, campaigns with demands and offers, and the vote that decides an offer."""
