from yunguan.providers.redfish.driver import Config, RedfishDriver, Secret

__all__ = ["Config", "RedfishDriver", "Secret"]
