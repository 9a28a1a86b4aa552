"""The Brook broker: network layer, request handlers, coordinators."""
