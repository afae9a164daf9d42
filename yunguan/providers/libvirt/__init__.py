from yunguan.providers.libvirt.driver import Config, LibvirtDriver, Secret

__all__ = ["Config", "LibvirtDriver", "Secret"]
