from yunguan.providers.simulator.driver import Config, Secret, SimulatorDriver

__all__ = ["Config", "Secret", "SimulatorDriver"]
