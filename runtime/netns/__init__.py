"""The netns network layer: a generated lab as Linux network namespaces joined by veth pairs."""
