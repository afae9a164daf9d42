from yunguan.providers.ec2.driver import (
    Address,
    Config,
    Ec2Driver,
    KeyPair,
    Rule,
    Secret,
    SecurityGroup,
)

__all__ = ["Address", "Config", "Ec2Driver", "KeyPair", "Rule", "Secret", "SecurityGroup"]
