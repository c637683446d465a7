"""The events the marketplace hears: every state change, once, as a CloudEvent on the stage's EventBridge bus."""
