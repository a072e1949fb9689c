"""Notices: what the gateway tells people without being asked (``gateway.notices.service``)."""
