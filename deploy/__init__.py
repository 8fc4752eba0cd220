"""Deployment files: the nginx site template (and its renderer), the systemd unit."""
