"""Provider organizations, municipalities and invitations of colleagues."""
