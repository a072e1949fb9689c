"""The sweep: what the gateway does when its time comes, without waiting for use."""
