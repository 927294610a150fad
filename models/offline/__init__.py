"""The embedded offline backend (models.offline.backend:OfflineDrafter, chosen via models.registry)."""
