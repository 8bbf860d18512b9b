"""Regional experts: profiles, directions, capacity and unavailability."""
