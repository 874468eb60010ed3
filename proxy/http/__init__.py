"""Request handlers: parse HTTP, call the service, shape the answer. No image or storage logic here."""
