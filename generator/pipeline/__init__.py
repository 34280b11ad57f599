"""The neutral pipeline model: what an event reaches, independent of how a platform spells it."""
