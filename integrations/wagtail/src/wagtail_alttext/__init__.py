"""Alt text for Wagtail images from a self-hosted alttext service."""
