from models.offline.backend import OfflineDrafter

__all__ = ["OfflineDrafter"]
