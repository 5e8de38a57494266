"""
What a synthetic figure wears: an outfit (:data:`OUTFITS`: shirt and trousers, a dress, a
skirt or a knee-long coat), a hair style (short, long, or a bun), and sometimes a hat, a
shoulder bag or a backpack. All of them belong to the person's mask, so that a skeleton does
not determine the silhouette.
"""
from dataclasses import dataclass

__all__ = ["OUTFITS", "OUTFIT_PROBS", "HAIR_STYLES", "HAIR_PROBS", "HAT_PROB", "BAG_PROB", "Outfit", "sample_outfit"]

# outfits and their probabilities: "dress" colors the torso and the skirt alike
OUTFITS = ("shirt_pants", "dress", "skirt", "coat")
OUTFIT_PROBS = (0.4, 0.2, 0.2, 0.2)
HAIR_STYLES = ("short", "long", "bun")
HAIR_PROBS = (0.5, 0.3, 0.2)
HAT_PROB = 0.15
BAG_PROB = 0.3  # of which a third are backpacks


@dataclass(frozen=True)
class Outfit:
    """``outfit`` (one of :data:`OUTFITS`), ``hair`` (one of :data:`HAIR_STYLES`), ``hat``
    (bool) and ``bag`` ("none", "shoulder" or "backpack")."""

    outfit: str
    hair: str
    hat: bool
    bag: str

    @property
    def legs_covered(self):
        """Whether a dress or a skirt covers the hips (and the thighs' tops)."""
        return self.outfit in ("dress", "skirt")


def sample_outfit(rng):
    outfit = str(rng.choice(OUTFITS, p=OUTFIT_PROBS))
    hair = str(rng.choice(HAIR_STYLES, p=HAIR_PROBS))
    hat = bool(rng.random() < HAT_PROB)
    bag = "none"
    if rng.random() < BAG_PROB:
        bag = "backpack" if rng.random() < 1 / 3 else "shoulder"
    return Outfit(outfit, hair, hat, bag)
