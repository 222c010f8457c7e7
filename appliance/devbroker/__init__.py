"""A small embedded MQTT 5.0 broker so the demo runs where no Mosquitto is installed.

Only for the demo and tests: loopback, no TLS, no authentication. The station itself talks to a
real broker (Mosquitto or the central service's) in production.
"""

from appliance.devbroker.broker import DevBrokerError, EmbeddedBroker

__all__ = ["DevBrokerError", "EmbeddedBroker"]
