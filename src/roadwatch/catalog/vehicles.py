from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import orjson


@dataclass(frozen=True, slots=True)
class Vehicle:
    year: int
    make: str
    model: str
    category: str

    def as_message(self) -> bytes:
        """The detection as the challenge's producer publishes it."""
        return orjson.dumps(
            {"Year": self.year, "Make": self.make, "Model": self.model, "Category": self.category}
        )


@cache
def load_catalog() -> tuple[Vehicle, ...]:
    """The 9,581 vehicles that detections are drawn from."""
    raw = orjson.loads(files("roadwatch.catalog").joinpath("vehicles.json").read_bytes())
    return tuple(
        Vehicle(year=v["Year"], make=v["Make"], model=v["Model"], category=v["Category"])
        for v in raw
    )
