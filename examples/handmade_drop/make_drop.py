"""A landing drop made by hand, in the landing contract's format (docs/landing.md), with no osmf code.

Three products drawn with PIL (a mug, a sneaker, headphones) with their masks, four historical
creatives each (the product on a drawn background, with the prompt that describes it), 400 users
and four days of impression/click events in which younger and older users prefer different looks.

    python examples/handmade_drop/make_drop.py $OSMF_HOME/landing
    osmf landing check && osmf chain

Same arguments, same bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

SIZE = 32
DATES = ("2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04")
PRODUCTS = (("mug-01", "Blue Ceramic Mug", "home", 12.5, (40, 70, 200)),
            ("shoe-07", "Trail Sneaker", "apparel", 89.0, (230, 230, 230)),
            ("phones-3", "Studio Headphones", "electronics", 149.0, (30, 30, 30)))
# background look -> (top colour, bottom colour, prompt words); younger users click the warm looks more
LOOKS = {"sunset": ((250, 120, 40), (250, 200, 90), "a warm sunset gradient"),
         "studio": ((210, 220, 235), (160, 175, 200), "a cool grey studio backdrop"),
         "forest": ((30, 110, 50), (90, 160, 80), "a green forest clearing"),
         "neon": ((230, 40, 160), (60, 20, 120), "a neon pink night scene")}
YOUNG_LIKES = ("sunset", "neon")


def draw_product(kind: int, colour) -> tuple[Image.Image, Image.Image]:
    """The product on white and its mask (255 = product)."""
    img = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    mask = Image.new("L", (SIZE, SIZE), 0)
    for canvas, fill in ((ImageDraw.Draw(img), colour), (ImageDraw.Draw(mask), 255)):
        if kind == 0:  # a mug: body and handle
            canvas.rectangle((9, 10, 20, 24), fill=fill)
            canvas.rectangle((21, 13, 24, 19), fill=fill)
        elif kind == 1:  # a sneaker: sole and upper
            canvas.rectangle((6, 19, 26, 23), fill=fill)
            canvas.polygon([(6, 19), (12, 11), (19, 12), (26, 19)], fill=fill)
        else:  # headphones: band and two cups
            canvas.arc((8, 6, 24, 22), 180, 360, fill=fill, width=3)
            canvas.ellipse((6, 14, 12, 24), fill=fill)
            canvas.ellipse((20, 14, 26, 24), fill=fill)
    return img, mask


def background(look: str) -> Image.Image:
    top, bottom, _ = LOOKS[look]
    t = np.linspace(0, 1, SIZE)[:, None, None]
    grad = (1 - t) * np.array(top) + t * np.array(bottom)
    return Image.fromarray(np.repeat(grad, SIZE, 1).astype(np.uint8))


def write_assets(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Product images, masks and historical creatives under ``root/assets``; the two dimension frames."""
    for sub in ("products", "masks", "creatives"):
        (root / "assets" / sub).mkdir(parents=True, exist_ok=True)
    products, creatives = [], []
    for kind, (pid, title, category, price, colour) in enumerate(PRODUCTS):
        img, mask = draw_product(kind, colour)
        img.save(root / f"assets/products/{pid}.png")
        mask.save(root / f"assets/masks/{pid}.png")
        products.append({"product_id": pid, "title": title, "category": category, "price": price,
                         "image_uri": f"assets/products/{pid}.png", "mask_uri": f"assets/masks/{pid}.png"})
        for look, (_, _, words) in LOOKS.items():
            cid = f"{pid}-{look}"
            creative = background(look)
            creative.paste(img, (0, 0), mask)
            creative.save(root / f"assets/creatives/{cid}.png")
            creatives.append({"creative_id": cid, "product_id": pid, "background_prompt": f"{title} on {words}",
                              "image_uri": f"assets/creatives/{cid}.png"})
    return pd.DataFrame(products), pd.DataFrame(creatives)


def users_frame(rng: np.random.Generator, n: int = 400) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": [f"user-{i:04d}" for i in range(n)],
        "age": rng.integers(18, 70, n).astype("int32"),
        "gender": rng.choice(["F", "M"], n),
        "city_tier": rng.integers(1, 5, n).astype("int32"),
        "income_level": rng.integers(1, 6, n).astype("int32"),
        "activity": rng.choice(["low", "medium", "high"], n),
        "device": rng.choice(["ios", "android", "web"], n),
        "tenure_days": rng.integers(1, 2000, n).astype("int32"),
    })


def write_events(root: Path, users: pd.DataFrame, creatives: pd.DataFrame, rng: np.random.Generator,
                 per_day: int = 3000) -> None:
    """``per_day`` impressions a day in two files, then the day's ``_SUCCESS``."""
    young = dict(zip(users.user_id, users.age < 40))
    for date in DATES:
        day = root / "events" / f"event_date={date}"
        day.mkdir(parents=True, exist_ok=True)
        start = int(dt.datetime.fromisoformat(date).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
        u = rng.choice(users.user_id.to_numpy(), per_day)
        c = rng.integers(0, len(creatives), per_day)
        ts = np.sort(start + rng.integers(0, 86_400_000, per_day))
        lines = []
        for i in range(per_day):
            cre = creatives.iloc[c[i]]
            likes = cre.creative_id.rsplit("-", 1)[1] in YOUNG_LIKES
            p = 0.12 if likes == young[u[i]] else 0.03
            lines.append(json.dumps({"event_id": f"{date}-{i:06d}", "event_ts": int(ts[i]), "user_id": u[i],
                                     "product_id": cre.product_id, "creative_id": cre.creative_id,
                                     "clicked": int(rng.random() < p)}))
        half = len(lines) // 2
        (day / "part-0000.jsonl").write_text("\n".join(lines[:half]) + "\n")
        (day / "part-0001.jsonl").write_text("\n".join(lines[half:]) + "\n")
        (day / "_SUCCESS").touch()


def make_drop(root: Path, seed: int = 0) -> Path:
    """Write the whole drop under ``root`` (a landing folder); returns it."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "dimensions").mkdir(parents=True, exist_ok=True)
    products, creatives = write_assets(root)
    users = users_frame(rng)
    users.to_parquet(root / "dimensions/users.parquet", index=False)
    products.to_parquet(root / "dimensions/products.parquet", index=False)
    creatives.to_parquet(root / "dimensions/creatives.parquet", index=False)
    (root / "dimensions/_SUCCESS").touch()
    write_events(root, users, creatives, rng)
    (root / "contract.json").write_text(json.dumps({"contract_version": 1, "producer": "examples/handmade_drop"}))
    return root


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("landing", type=Path, help="the landing folder to write ($OSMF_HOME/landing)")
    ap.add_argument("--seed", type=int, default=0)
    print(f"wrote a hand-made drop to {make_drop(ap.parse_args().landing, ap.parse_args().seed)}")
