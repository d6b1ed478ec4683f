"""dtnlab: Digital Twin Network labs generated from a NetBox inventory."""

__version__ = "0.1.0"
