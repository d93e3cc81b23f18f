"""Story corpora (TinyStories from the hub or local files, or an offline generated corpus) and token caches.

Sources, all returning a list of story strings (`load_stories`):
  * "hub":      roneneldan/TinyStories through `datasets` (splits "train" / "validation"); needs network or the
                local HF cache with HF_HUB_OFFLINE=1.
  * a path:     a TinyStories text dump (stories separated by <|endoftext|>; a single file holds no split, so
                every 20th story is validation and the rest training, see split_description), a directory holding
                TinyStories-train.txt / TinyStories-valid.txt (or *train* / *valid* .parquet/.jsonl/.json files,
                as in a snapshot of the hub repository), or a single .jsonl/.json/.parquet file with a "text" column.
  * "embedded": simple children's stories from a fixed grammar (`generate_stories`); works anywhere, offline.

Token caches: `cached_tokens` tokenizes a source once into <cache>/<key>.tokens.npy (all stories concatenated,
no separators) + <key>.offsets.npy (story boundaries) and memory-maps them afterwards (`TokenCache`).

Usage:
    tok = get_embedded_tokenizer()
    train = cached_tokens("embedded", "train", 60_000, tok, default_cache_dir())
    train.story(0)   # np.ndarray of token ids
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import random
import socket
from pathlib import Path
from typing import Iterator, Sequence
from urllib.parse import urlparse

import numpy as np

from drift.bootstrap import default_cache_dir  # noqa: F401  (re-exported: the one definition of the cache root)
from drift.data.tokenizer import EmbeddedTokenizer, Tokenizer, tokenizer_fingerprint

HUB_DATASET = "roneneldan/TinyStories"
STORY_SEPARATOR = "<|endoftext|>"
EMBEDDED_TOKENIZER_STORIES = 20_000  # stories the embedded tokenizer is built from (fixed, so every run shares it)
_GRAMMAR_VERSION = 1  # bump when the grammar changes, so cached tokenizers and token files are rebuilt

_FETCH_HINT = ("download TinyStories on a machine with internet and pass data_source=/path/to/TinyStories, "
               "or use data_source=embedded")


class DataUnavailableError(RuntimeError):
    """A story source cannot be read (no network for the hub, a missing path, an unreadable file)."""


# --------------------------------------------------------------------------------------------------------------
# The embedded story grammar
# --------------------------------------------------------------------------------------------------------------

# Word lists. Names are the only capitalized words besides sentence starts and family titles ("Mom"); no word is
# written in all caps, so the uppercase codewords of the probe never occur in the stories.
GIRL_NAMES = tuple(
    "Lily Mia Lucy Anna Sue Zoe Emma Ella Amy Kate Rose Daisy Molly Sara Lisa Jane Ruby Grace Chloe Ivy Nora Luna "
    "Maya Hannah Sophie Julia Alice Clara Eva Ava Bella Lola Nina Tara Pam Jill Kim Beth Ruth Holly Penny Sally "
    "Wendy Dora Fay Gina Hope Iris Joy May Nell Olive Poppy Rita Tess Una Vera Wren Abby Bonnie Cara Dana Edie "
    "Flora Gemma Hazel Isla Jenny Kitty Lena Mara Nadia Opal Pearl Rosie Stella Tina Violet Willa Xena Yara Zara "
    "Amber Becky Cindy Dolly Elsie Fiona Gwen Heidi Ingrid Jade Kara Lulu Megan Nancy Paige Queenie Aria Bess Cora "
    "Delia Erin Frida Greta Harper Imogen Josie Kelly Leah Mabel Nellie Orla Piper Reese Sadie Thea Ursula Vivian "
    "Winnie Yvonne Zelda Addie Blair Celia Dina Esme Faith Georgia Hattie Ida June Kerry Liza Maggie Noelle Odette "
    "Petra Rhea Selma Tilly Uma Valerie Wanda Alma Birdie Carmen Dottie Effie Fern Gloria Hilda Irene Jolene "
    "Kay Lottie Minnie Netta Polly Roxy Sylvie Trudy".split())
BOY_NAMES = tuple(
    "Ben Tom Sam Max Tim Leo Jack Jake Finn Noah Luke Owen Adam Alex Dan Eli Fred Gus Hank Ian Joe Kai Liam Mark "
    "Ned Oscar Paul Rex Ryan Seth Ted Toby Vince Will Zack Bob Bill Carl Dave Eric Frank Greg Henry Jim Kevin "
    "Lenny Mike Nick Oliver Pete Rob Roy Simon Todd Victor Walt Yuri Milo Otis Hugo Abe Barney Chip Danny Eddie "
    "Felix Gabe Harry Iggy Jasper Kenny Louis Marty Nate Ollie Percy Quinn Rudy Sonny Teddy Ulric Vic Wally Zeke "
    "Arlo Benny Colin Dylan Ethan Freddie George Hector Jonah Kurt Larry Monty Neil Perry Rocky Aaron Bruno Caleb "
    "Dexter Elliot Fergus Gordon Harvey Isaac Jesse Kirk Lucas Mason Nelson Orson Peter Ralph Stanley Tucker "
    "Vernon Warren Wesley Albert Bernie Clyde Dennis Elmer Floyd Gilbert Homer Ivan Jerry Keith Lionel Morris "
    "Norman Omar Porter Rufus Sidney Timmy Wilbur Archie Buster Cody Duncan Emmett Franklin Grover Howie Jonas "
    "Kenji Lloyd Murphy Nico Otto Reggie Scotty Tyler Woody".split())
ANIMALS = tuple(
    "cat dog bunny bear fox duck frog mouse bird puppy kitten lion tiger elephant monkey pig cow horse owl turtle "
    "squirrel deer sheep goat hen chick fish bee butterfly dragon unicorn robot giraffe zebra penguin hippo koala "
    "panda raccoon hedgehog beaver otter seal whale dolphin crab snail ladybug lamb pony parrot goose wolf camel "
    "kangaroo badger mole bat swan crow moose rabbit donkey lizard snake spider worm ant goldfish octopus "
    "peacock chipmunk puffin walrus flamingo gorilla cheetah leopard ostrich pelican beetle dinosaur llama "
    "skunk possum weasel toad cricket grasshopper firefly turkey rooster piglet calf".split())
IRREGULAR_PLURALS = {"mouse": "mice", "sheep": "sheep", "fish": "fish", "goose": "geese", "deer": "deer",
                     "wolf": "wolves", "moose": "moose", "goldfish": "goldfish", "octopus": "octopuses",
                     "leaf": "leaves", "walrus": "walruses"}
HERO_ADJECTIVES = tuple(
    "little small happy curious brave shy kind silly young tiny clever playful gentle busy sleepy friendly funny "
    "smart lazy proud cheerful quiet bouncy careful helpful fluffy cute tall sweet wild lucky honest polite "
    "grumpy hungry messy noisy speedy jolly lively chubby fuzzy spotted striped bold eager lonely merry "
    "plucky sunny tidy wise zippy".split())
FAMILY = ("mom", "dad", "grandma", "grandpa", "sister", "brother", "aunt", "uncle")
FEMALE_FAMILY = ("mom", "grandma", "sister", "aunt")
WISE_HELPERS = tuple(
    "old owl|wise turtle|kind farmer|tall giraffe|big elephant|friendly police officer|old woman|old man|"
    "strong bear|happy baker|busy beaver|clever fox|gentle horse|nice neighbor|smart teacher|brave firefighter|"
    "kind doctor|funny clown|patient fisherman|little fairy|friendly mail carrier|good king|kind queen|"
    "helpful robot|old sailor".split("|"))
PLACES = tuple(
    "park|forest|garden|beach|farm|town|school|river|lake|hill|meadow|backyard|playground|zoo|pond|jungle|cave|"
    "castle|library|market|field|mountain|village|bakery|yard|barn|island|valley|orchard|street|camp|harbor|"
    "desert|woods|city|station|shop|museum|circus|fair|swamp|bridge|tower|lighthouse|kitchen|attic|ship|dock|"
    "greenhouse|pumpkin patch|campground|toy store|bus stop|candy shop|flower shop|train station|tree farm|"
    "berry patch|duck pond|sandbox|farmers market|ice rink|art room".split("|"))
WATER_PLACES = tuple("river lake pond sea stream puddle well fountain creek pool".split())
COLORS = tuple("red blue green yellow pink purple orange white black brown gold silver gray".split())
OBJECT_ADJECTIVES = tuple(
    "shiny big small soft new old pretty special favorite tiny round bright fluffy sparkly long heavy magic "
    "funny striped spotted wooden little lovely fancy giant colorful golden smooth warm cozy noisy".split())
# (noun, what one does with it)
OBJECTS = tuple(tuple(pair.split("|")) for pair in (
    "ball|kick, kite|fly, boat|sail, doll|dress, teddy bear|hug, toy car|race, truck|push, hat|wear, cake|share, "
    "cookie|eat, flower|smell, book|read, drum|play, balloon|hold, shell|show, box|open, key|keep, crown|wear, "
    "blanket|hold, cup|fill, bike|ride, train|play with, puzzle|finish, crayon|draw with, picture|show, "
    "necklace|wear, basket|carry, bucket|fill, shovel|dig with, jar|open, feather|show, star|keep, coin|keep, "
    "bell|ring, whistle|blow, airplane|fly, rocket|launch, sandwich|eat, pie|share, lollipop|eat, scarf|wear, "
    "umbrella|open, map|read, lamp|light, clock|fix, spoon|use, bag|carry, pencil|draw with, sled|ride, "
    "wagon|pull, guitar|play, rope|jump with, wand|wave, robot|build, castle|build, tent|build, letter|send, "
    "gift|give, button|sew, ribbon|tie, flag|wave, mask|wear, sock|wear, shoe|wear, toy|play with, marble|roll, "
    "top|spin, hoop|roll, piano|play, trumpet|play, camera|use, bracelet|wear, painting|show, sticker|share, "
    "card|send, bowl|fill, cap|wear, jacket|wear, watch|wear, ladder|climb, swing|swing on, slide|slide down, "
    "tricycle|ride, scooter|ride, skateboard|ride, pillow|hug, quilt|hold, lantern|carry, flashlight|shine, "
    "mirror|look in, comb|use, brush|use, diary|write in, notebook|write in, sandcastle|build, snowman|build, "
    "fort|build, raft|sail, treasure chest|open, seashell|collect, pebble|throw, stone|throw, pinwheel|spin, "
    "yo-yo|play with, puppet|play with, costume|wear, crown of flowers|wear").split(", "))
# (base form, -ing form)
HOBBIES = tuple(tuple(pair.split("|")) for pair in (
    "sing|singing dance|dancing run|running jump|jumping paint|painting read|reading swim|swimming draw|drawing "
    "bake|baking climb|climbing skip|skipping hop|hopping explore|exploring whistle|whistling "
    "giggle|giggling").split() + [
    "play games|playing games", "build towers|building towers", "collect shells|collecting shells",
    "watch the stars|watching the stars", "ride bikes|riding bikes", "tell jokes|telling jokes",
    "plant seeds|planting seeds", "fly kites|flying kites", "play music|playing music",
    "count the clouds|counting the clouds", "look for bugs|looking for bugs", "pick flowers|picking flowers",
    "play hide and seek|playing hide and seek", "make mud pies|making mud pies", "feed the ducks|feeding the ducks",
    "splash in puddles|splashing in puddles", "roll down hills|rolling down hills", "chase butterflies|chasing "
    "butterflies", "blow bubbles|blowing bubbles", "listen to stories|listening to stories",
    "help in the garden|helping in the garden", "play tag|playing tag", "make new friends|making new friends"])
FOODS = tuple(
    "apples|bread|soup|pancakes|berries|honey|cheese|carrots|cookies|ice cream|pizza|noodles|corn|grapes|cherries|"
    "pears|plums|muffins|cupcakes|jam|toast|eggs|rice|beans|nuts|oranges|peaches|melon|pie|cake|candy|popcorn|"
    "waffles|yogurt|sandwiches|bananas|strawberries|pumpkin pie|potatoes|peas|blueberries|biscuits|crackers|"
    "pretzels|oatmeal|spaghetti|tacos|dumplings|lemon cake|fresh bread|warm soup|fruit salad|cinnamon rolls|"
    "chocolate|watermelon|pineapple|coconut|mushrooms|tomatoes|cucumbers|acorns|seeds".split("|"))
DRINKS = tuple("milk|juice|lemonade|tea|water|hot cocoa|apple juice".split("|"))
SIGHTS = tuple(
    "a rainbow in the sky|a big red barn|a tiny nest with three eggs|a shiny rock|a family of ducks|a tall tower|"
    "a little bridge|a field of sunflowers|a sleeping cat|a boat on the water|a hot air balloon|a funny snowman|"
    "a long line of ants|a big green tractor|an old wooden gate|a pile of orange leaves|a little white cloud|"
    "a bright blue butterfly|a garden full of roses|a frog on a lily pad|a kite high in the sky|"
    "a deep hole in the ground|a big yellow school bus|a fox hiding in the bushes|two squirrels chasing each other|"
    "a parade with drums and flags|a pond full of fish|a tall windmill|a giant pumpkin|a nest of baby birds|"
    "a sparkling waterfall|an old lighthouse|a train going over a bridge|a dog wearing a hat".split("|"))
HOMES = tuple("house|cottage|tree house|burrow|nest|hut|farmhouse|cabin|little home".split("|"))
HOME_ADJECTIVES = tuple("cozy small little warm yellow blue old big white green".split())
# (trait, what someone with that trait always does)
TRAITS = tuple(tuple(pair.split("|")) for pair in (
    "kind|helped others", "curious|asked many questions", "brave|tried new things", "shy|hid behind a tree",
    "silly|made funny faces", "hungry|looked for snacks", "messy|left toys on the floor",
    "careful|looked both ways", "polite|said please and thank you", "happy|sang little songs",
    "sleepy|took long naps", "fast|won every race", "strong|carried heavy things", "clever|solved hard puzzles",
    "gentle|petted the animals softly", "funny|told silly jokes", "busy|had something to do",
    "generous|shared snacks with friends", "loud|talked very loudly", "neat|kept the room clean"))
SAD_FEELINGS = tuple("sad scared worried upset angry lonely unhappy nervous afraid grumpy".split())
ADVERBS = tuple("slowly carefully quickly gently bravely quietly happily kindly calmly softly".split())
HAPPY_FEELINGS = tuple("happy glad proud excited thankful joyful calm cheerful relieved delighted".split())
WEATHER = tuple(
    "It was a sunny day.|The sky was blue and the birds were singing.|It was a cold winter morning.|"
    "The sun was warm and bright.|It was a windy day in the fall.|Snow covered the ground.|"
    "It was a quiet night and the moon was big.|The flowers were blooming in the spring.|It was a hot summer day.|"
    "The morning was cool and foggy.|Little white clouds floated in the sky.|The leaves were red and orange."
    .split("|"))
HIDING_SPOTS = tuple(
    "under the bed|behind the door|in the grass|under a big leaf|inside an old shoe|behind the couch|"
    "under the table|in a pile of leaves|next to the fence|in the toy box|under a rock|behind a tree|"
    "in the closet|under the stairs|in the sand|behind a bush".split("|"))
MORALS = tuple(
    "sharing is caring|it is good to ask for help|friends help each other|it is good to be kind|"
    "being patient is important|you should never give up|it is good to say thank you|"
    "a good friend is a special gift|working together makes things easy|it is important to be careful|"
    "you should always tell the truth|a kind word can make a big difference|it is fun to try new things|"
    "being brave is not the same as not being scared".split("|"))


def _plural(noun: str) -> str:
    *head, last = noun.split(" ")
    if last in IRREGULAR_PLURALS:
        last = IRREGULAR_PLURALS[last]
    elif last.endswith(("s", "sh", "ch", "x")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join(head + [last])


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _pronouns(girl: bool, prefix: str = "") -> dict[str, str]:
    words = ("she", "her", "her") if girl else ("he", "him", "his")
    return {prefix + "he": words[0], prefix + "him": words[1], prefix + "his": words[2]}


def _pick_name(rng: random.Random, girl: bool, avoid: Sequence[str]) -> str:
    while True:
        name = rng.choice(GIRL_NAMES if girl else BOY_NAMES)
        if name not in avoid:
            return name


def _hero_slots(rng: random.Random) -> dict[str, str]:
    """The hero, the hero's object and the story's setting: they recur from the first sentence to the last."""
    girl = rng.random() < 0.5
    kind = rng.choice(ANIMALS) if rng.random() < 0.4 else ("girl" if girl else "boy")
    noun, use = rng.choice(OBJECTS)
    obj_adj = rng.choice(COLORS) if rng.random() < 0.5 else rng.choice(OBJECT_ADJECTIVES)
    hobby, trait = rng.choice(HOBBIES), rng.choice(TRAITS)
    slots = dict(name=_pick_name(rng, girl, ()), kind=kind, adj=rng.choice(HERO_ADJECTIVES), noun=noun, use=use,
                 obj=f"{obj_adj} {noun}", place=rng.choice(PLACES), water=rng.choice(WATER_PLACES),
                 spot=rng.choice(HIDING_SPOTS), weather=rng.choice(WEATHER), moral=rng.choice(MORALS),
                 sad=rng.choice(SAD_FEELINGS), happy=rng.choice(HAPPY_FEELINGS), hobby=hobby[0],
                 hobby_ing=hobby[1], trait=trait[0], habit=trait[1], animals=_plural(rng.choice(ANIMALS)),
                 food=rng.choice(FOODS), drink=rng.choice(DRINKS), sight=rng.choice(SIGHTS),
                 home=f"{rng.choice(HOME_ADJECTIVES)} {rng.choice(HOMES)}", adverb=rng.choice(ADVERBS),
                 **_pronouns(girl))
    slots["a_adj_kind"] = _article(f"{slots['adj']} {kind}")
    slots["a_obj"] = _article(slots["obj"])
    slots["a_home"] = _article(slots["home"])
    slots["taker"] = rng.choice([a for a in ANIMALS if a != kind])
    return slots


def _helper_slots(rng: random.Random, slots: dict[str, str]) -> dict[str, str]:
    """The helper: a family member ("her mom", called "Mom"), a named friend, or a stranger ("the old owl");
    plus a second friend met on the way."""
    roll = rng.random()
    if roll < 0.4:
        member = rng.choice(FAMILY)
        girl = member in FEMALE_FAMILY
        helper, call = f"{slots['his']} {member}", member.capitalize()
    elif roll < 0.75:
        girl = rng.random() < 0.5
        call = helper = _pick_name(rng, girl, (slots["name"],))
        if rng.random() < 0.5:
            helper = f"{call} the {rng.choice(ANIMALS)}"
    else:
        girl = rng.random() < 0.5
        helper, call = "the " + rng.choice(WISE_HELPERS), "friend"
    friend_girl = rng.random() < 0.5
    friend = _pick_name(rng, friend_girl, (slots["name"], call))
    return {"helper": helper, "call": call, **_pronouns(girl, "h"), "friend": friend,
            "friend_kind": rng.choice(ANIMALS), **_pronouns(friend_girl, "f")}


_INTROS = (
    "Once upon a time, there was {a_adj_kind} named {name}.",
    "Once upon a time, in a small village, there lived {a_adj_kind} named {name}.",
    "There was once {a_adj_kind} called {name}.",
    "{name} was {a_adj_kind} who lived near the {place}.",
    "Long ago, {a_adj_kind} named {name} lived in {a_home} by the {place}.",
    "In {a_home} near the {place}, there lived {a_adj_kind}. {his} name was {name}.",
    "Once there was {a_adj_kind} named {name} who loved to {hobby}.",
    "{name} was {a_adj_kind}, and {he} was very {trait}.",
)
_DESCRIPTIONS = (
    "{weather}",
    "{he} loved to {hobby} every day.",
    "{name} liked {hobby_ing} more than anything.",
    "{he} had many friends, and {his} best friends were {animals}.",
    "{name} had {a_obj}, and {he} loved it very much.",
    "Every morning, {name} would {hobby} with {helper}.",
    "{name} was very {trait} and always {habit}.",
    "{he} lived in {a_home} with {helper}.",
    "{his} favorite food was {food}, and {he} drank {drink} every morning.",
)
_WANTS = (
    "One day, {name} wanted to {use} {his} {obj} at the {place}.",
    "{name} took {his} {obj} to the {place} because {he} wanted to {use} it.",
    "{name} said, \"I want to {use} my {noun} today!\"",
    "{he} asked {helper}, \"Can we go to the {place}?\" and {helper} said yes.",
    "One morning, {name} found {a_obj} near the {place}.",
    "{name} got {a_obj} as a gift, and {he} wanted to {use} it right away.",
)
_SCENES = (
    "At the {place}, {name} saw {sight}.",
    "On the way, {name} met a {friend_kind} named {friend}.",
    "{name} and {friend} ate {food} and drank {drink} under a big tree.",
    "{name} played with {friend} and they had lots of fun.",
    "{name} saw {sight} and smiled.",
    "At the {place}, there were many {animals} playing in the sun.",
)
# problem -> (first sentences, follow-ups, why the hero is sad, what the helper does, how it ends)
_PROBLEMS: dict[str, tuple[tuple[str, ...], ...]] = {
    "tree": (("Then the wind blew hard, and the {noun} flew up into a tall tree.",
              "{name} threw the {obj} too high, and it got stuck in a tree."),
             ("The {obj} was stuck in the tree, so {name} could not reach it.",
              "{name} tried to climb the tree, but it was too tall."),
             ("the {noun} was stuck in the tree",),
             ("{helper} {adverb} climbed up the tree and got the {noun} down.",
              "{helper} used a long stick to push the {noun} out of the tree.",
              "Then {helper} gave the {obj} back to {name}.")),
    "water": (("But the {obj} slipped and fell into the {water}.", "{name} dropped the {obj} into the {water}."),
              ("The {noun} was floating away in the {water}.", "The water was deep, so {name} could not get it."),
              ("the {noun} was in the {water}",),
              ("{helper} used a big net to catch the {noun}.",
               "{helper} {adverb} waded into the {water} and grabbed the {noun}.",
               "{helper} dried the {noun} with a soft towel.")),
    "lost": (("When {name} came home, {he} could not find {his} {obj}.", "One day, the {obj} was gone."),
             ("{he} looked everywhere, but the {noun} was gone.", "{name} looked in every room, but found nothing."),
             ("{his} {noun} was lost", "{he} could not find {his} {noun}"),
             ("{helper} helped {name} look {spot}.", "{helper} {adverb} looked {spot} with {name}.",
              "At last, they found the {obj} {spot}.")),
    "broken": (("Then {name} dropped the {obj}, and it broke.", "The {obj} fell on the floor and broke."),
               ("Now the {noun} had a big crack in it.", "The {noun} was in two pieces."),
               ("{his} {noun} was broken",),
               ("{helper} got some glue and {adverb} fixed the {noun}.",
                "{helper} fixed the {noun} with tape and string.", "Soon the {noun} looked as good as new.")),
    "taken": (("A big {taker} came and took the {obj} away.", "Then a naughty {taker} grabbed the {obj}."),
              ("The {taker} ran off with the {noun}, and {name} could not catch it.",
               "The {taker} wanted to keep the {noun}."),
              ("the {taker} took {his} {noun}",),
              ("{helper} talked to the {taker} in a kind voice.",
               "{helper} {adverb} asked the {taker} to give the {noun} back.",
               "The {taker} said sorry and gave the {noun} back to {name}.")),
    "high": (("But the {obj} was on a high shelf, and {name} was too small to reach it.",
              "{helper} had put the {obj} on top of a tall cupboard."),
             ("{he} jumped and jumped, but the {noun} was too high.", "{name} stood on {his} toes, but it was no use."),
             ("{he} could not reach the {noun}",),
             ("{helper} {adverb} lifted {name} up high.", "{helper} brought a chair for {name} to stand on.",
              "{name} reached out and got {his} {noun}.")),
    "mud": (("On the way, the {obj} fell into a big puddle of mud.",
             "{name} slipped, and the {obj} landed in the mud."),
            ("The {noun} was stuck in the thick, brown mud.", "The {noun} was covered in mud."),
            ("{his} {noun} was all dirty",),
            ("{helper} {adverb} pulled the {noun} out of the mud.", "{helper} dug the {noun} out with a stick.",
             "Then they washed the {noun} with warm water.")),
    "locked": (("{name} put the {obj} in a box, but the box was locked with a secret code.",
                "The {obj} was inside a chest, and the chest was locked."),
               ("{he} did not remember the code, so {he} could not open the box.",
                "{he} forgot the password, so the box stayed shut.",
                "{name} pulled and pulled, but the lid would not open."),
               ("{he} could not open the box",),
               ("{helper} thought hard and remembered the magic word.", "{helper} found the little key {spot}.",
                "The box opened, and the {obj} was inside.")),
}
_OBJECT_PROBLEMS = tuple(_PROBLEMS)
_OTHER_PROBLEMS: dict[str, tuple[tuple[str, ...], ...]] = {
    "dark": (("The sun went down, and {name} was lost in the {place}.",
              "It got dark, and {name} could not find the way home."),
             ("Everything looked big and strange in the dark.", "{name} held {his} {noun} tight.",
              "Which way was home? {name} did not know."),
             ("{he} was lost and it was dark",),
             ("{helper} came with a lamp and found {name}.", "{helper} heard {name} and {adverb} came running.",
              "They followed the bright stars all the way home.")),
    "hungry": (("{name} was very hungry, but there was no food in the {home}.",
                "{name} dropped {his} lunch in the dirt."),
               ("{his} tummy made a loud noise.", "{he} had not eaten all day."),
               ("{he} was so hungry",),
               ("{helper} {adverb} shared some {food} with {name}.", "{helper} made a big pot of soup for everyone.",
                "They ate {food} and drank {drink} together.")),
    "lonely": (("{name} wanted to play, but nobody wanted to play with {him}.", "All of {his} friends were away."),
               ("{name} sat alone at the {place}.", "{he} played with {his} {noun} all alone."),
               ("{he} had no one to play with",),
               ("{helper} came and asked, \"Can I play with you?\"", "{helper} saw {name} and came to say hello.",
                "Soon, {friend} came too, and they all played together.")),
    "noise": (("Suddenly, a loud noise came from the {place}.", "At night, {name} heard a strange sound outside."),
              ("{name} hid {spot}.", "The noise came again, louder this time."),
              ("{he} did not know what made the noise",),
              ("{helper} went to look and laughed.", "{helper} took a lamp and {adverb} looked outside.",
               "It was only a little {taker} playing with a can.")),
}
_PROBLEMS.update(_OTHER_PROBLEMS)
_FEELINGS = (
    "{name} felt {sad} because {why}.",
    "{name} was very {sad}, so {he} started to cry.",
    "\"Oh no!\" {name} cried. {he} was so {sad}.",
    "{name} felt {sad} and did not know what to do.",
)
_ASKS = (
    "{name} asked, \"{call}, can you help me?\"",
    "{name} went to {helper} and said, \"Please help me.\"",
    "Just then, {helper} came by and saw that {name} was {sad}.",
    "\"Do not worry,\" said {helper}. \"I will help you.\"",
    "{helper} asked, \"Why are you so {sad}?\" and {name} said that {why}.",
    "{helper} asked, \"What is wrong, {name}?\"",
)
_RESOLUTIONS = (
    "\"Thank you, {call}!\" said {name}. {he} gave {helper} a big hug.",
    "{name} smiled and said, \"You are the best, {call}!\"",
    "{name} felt {happy} again and thanked {helper}.",
    "Now {name} was not {sad} anymore.",
)
_OBJECT_RESOLUTIONS = (
    "{name} was so {happy} to have {his} {obj} back.",
    "Now {name} could {use} {his} {noun} again, and {he} felt {happy}.",
)
_ENDINGS = (
    "From that day on, {name} always took good care of {his} {noun}.",
    "{name} learned that {moral}.",
    "They played at the {place} together until the sun went down.",
    "{name} and {helper} were good friends forever.",
    "{name} will always remember this special day.",
    "That night, {name} went to sleep with {his} {obj} right next to {him}.",
    "The next day, {name} told {friend} all about it.",
    "What a wonderful day it was!",
    "Remember, {moral}.",
)


def _fill(template: str, slots: dict[str, str]) -> str:
    sentence = template.format_map(slots)
    # Capitalize the start of the template and of every sentence inside it that starts with a slot ("... . she").
    return ". ".join(part[:1].upper() + part[1:] for part in sentence.split(". "))


def _beats(rng: random.Random, problem: str) -> list[str]:
    """Templates in plot order: setup, want, problem, feeling, help, resolution, ending (3..12 sentences)."""
    first, follow, _, helps = _PROBLEMS[problem]
    setup = [rng.choice(_INTROS)] + rng.sample(_DESCRIPTIONS, rng.choice((0, 1, 1, 2)))
    middle = rng.sample(_WANTS, rng.randint(0, 1)) + rng.sample(_SCENES, rng.randint(0, 1))
    trouble = [rng.choice(first)] + rng.sample(follow, rng.randint(0, 1))
    if rng.random() < 0.7:
        trouble.append(rng.choice(_FEELINGS))
    if rng.random() < 0.6:
        trouble.append(rng.choice(_ASKS))
    # Help is one of two actions, optionally followed by its consequence.
    k = rng.randint(0, 2)
    help_ = ([rng.choice(helps[:2])] + [helps[2]])[:k]
    resolutions = _RESOLUTIONS + (_OBJECT_RESOLUTIONS if problem in _OBJECT_PROBLEMS else ())
    end = [rng.choice(resolutions)] + ([rng.choice(_ENDINGS)] if rng.random() < 0.6 else [])
    while len(setup) + len(middle) + len(trouble) + k + len(end) > 12:
        (middle if middle else setup).pop()
    return setup + middle + trouble + help_ + end


def _story(rng: random.Random) -> str:
    slots = _hero_slots(rng)
    slots.update(_helper_slots(rng, slots))
    problem = rng.choice(tuple(_PROBLEMS))
    slots["why"] = rng.choice(_PROBLEMS[problem][2]).format_map(slots)
    return " ".join(_fill(t, slots) for t in _beats(rng, problem))


def generate_stories(n: int, seed: int) -> list[str]:
    """n deterministic stories from the grammar. The same (n, seed) gives the same list on any machine (only
    random.Random(seed) is used), and generate_stories(m, seed) is a prefix of generate_stories(n, seed), m <= n."""
    rng = random.Random(seed)
    return [_story(rng) for _ in range(n)]


# --------------------------------------------------------------------------------------------------------------
# Story sources
# --------------------------------------------------------------------------------------------------------------

_SPLIT_INDEX = {"train": 0, "validation": 1}


def _embedded_seed(split: str, seed: int) -> int:
    """Train seeds are even and validation seeds odd, so the two splits never share a generator stream."""
    if split not in _SPLIT_INDEX:
        raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
    return 2 * seed + _SPLIT_INDEX[split]


def load_stories(source: str, split: str, n: int, min_chars: int = 40, seed: int = 0) -> list[str]:
    """The first n stories of `split` ("train" | "validation") from `source` ("embedded" | "hub" | a local path),
    with stories shorter than min_chars dropped afterwards (so the result may hold fewer than n). `seed` only
    matters for the embedded corpus."""
    if split not in _SPLIT_INDEX:
        raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
    if source == "embedded":
        stories = generate_stories(n, _embedded_seed(split, seed))
    elif source == "hub":
        stories = _load_hub(split, n)
    else:
        stories = _load_local(Path(source).expanduser(), split, n)
    return [s for s in stories if len(s) >= min_chars]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _hub_reachable(timeout: float = 5.0) -> bool:
    """One quick TCP connection, because datasets retries a dead network for about half a minute per call."""
    from huggingface_hub import constants
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _load_hub(split: str, n: int) -> list[str]:
    """Streams the first n stories (a small slice of the split) unless offline mode asks for the local HF cache."""
    try:
        import datasets
    except ImportError as exc:
        raise DataUnavailableError(
            f"source 'hub' needs the datasets package (pip install datasets), or {_FETCH_HINT}") from exc
    offline = _env_flag("HF_HUB_OFFLINE") or _env_flag("HF_DATASETS_OFFLINE")
    if not offline and not _hub_reachable():
        raise DataUnavailableError(f"source 'hub' ({HUB_DATASET}): cannot reach the Hugging Face hub; {_FETCH_HINT}")
    try:
        if offline:
            ds = datasets.load_dataset(HUB_DATASET, split=split)
            rows = ds.select(range(min(n, len(ds))))
        else:
            rows = datasets.load_dataset(HUB_DATASET, split=split, streaming=True).take(n)
        return [row["text"] for row in rows]
    except Exception as exc:  # datasets raises many types (connection, file-not-found, offline-mode errors)
        raise DataUnavailableError(
            f"source 'hub' ({HUB_DATASET}, split {split}) failed with {type(exc).__name__}; {_FETCH_HINT}") from exc


_DIR_TEXT_FILES = {"train": "TinyStories-train.txt", "validation": "TinyStories-valid.txt"}
_DIR_SPLIT_WORDS = {"train": "train", "validation": "valid"}  # hub snapshots name shards train-*/validation-*
_TABLE_SUFFIXES = (".parquet", ".jsonl", ".json")


# A single file holds no split: story i goes to validation when i % SINGLE_FILE_VAL_EVERY == VAL_EVERY - 1, else to
# train, so the two sets are disjoint (the first validation stories are not the first training stories).
SINGLE_FILE_VAL_EVERY = 20


def split_description(source: str) -> str:
    """How the train and validation stories of `source` are kept apart (recorded in run.json and the log)."""
    if source == "embedded":
        return "embedded: train and validation stories come from separate generator streams"
    if source == "hub":
        return f"hub: the train and validation splits of {HUB_DATASET}"
    path = Path(source).expanduser()
    if path.is_file():
        k = SINGLE_FILE_VAL_EVERY
        return (f"single file {path.name}: every {k}th story (index i with i % {k} == {k - 1}) is validation, "
                f"the others are training; the two sets are disjoint")
    return f"directory {path}: its train and validation files"


def _single_file_split(path: Path, split: str, n: int) -> list[str]:
    """The first n stories of one split of a single file, under the every-20th rule."""
    k = SINGLE_FILE_VAL_EVERY
    keep = (lambda i: i % k == k - 1) if split == "validation" else (lambda i: i % k != k - 1)
    if path.suffix in _TABLE_SUFFIXES:
        # enough rows for n stories of this split (the ratio is k-1 : 1)
        need = n * k if split == "validation" else n + n // (k - 1) + 1
        rows = _read_tables([path], need)
        return [t for i, t in enumerate(rows) if keep(i)][:n]
    out = []
    for i, story in enumerate(_iter_text_dump(path)):
        if len(out) >= n:
            break
        if keep(i):
            out.append(story)
    return out


def _load_local(path: Path, split: str, n: int) -> list[str]:
    if not path.exists():
        raise DataUnavailableError(f"data source {str(path)!r} does not exist; {_FETCH_HINT}")
    if path.is_file():
        return _single_file_split(path, split, n)
    text_file = path / _DIR_TEXT_FILES[split]
    if text_file.is_file():
        return _read_text_dump(text_file, n)
    for suffix in _TABLE_SUFFIXES:  # one format only: datasets builds from files of a single type
        tables = sorted(glob.glob(str(path / "**" / f"*{_DIR_SPLIT_WORDS[split]}*{suffix}"), recursive=True))
        if tables:
            return _read_tables([Path(t) for t in tables], n)
    raise DataUnavailableError(
        f"data source {str(path)!r} has neither {_DIR_TEXT_FILES[split]} nor *{_DIR_SPLIT_WORDS[split]}* "
        f".parquet/.jsonl/.json files; {_FETCH_HINT}")


def _iter_text_dump(path: Path, chunk_chars: int = 1 << 20) -> Iterator[str]:
    """Stories of a <|endoftext|>-separated dump, read piecewise so that n stories of a 2 GB file are cheap."""
    pending = ""
    with open(path, encoding="utf-8", errors="replace") as f:
        while chunk := f.read(chunk_chars):
            pending += chunk
            *complete, pending = pending.split(STORY_SEPARATOR)
            for story in complete:
                if story.strip():
                    yield story.strip()
    if pending.strip():
        yield pending.strip()


def _read_text_dump(path: Path, n: int) -> list[str]:
    stories = []
    for story in _iter_text_dump(path):
        if len(stories) >= n:
            break
        stories.append(story)
    return stories


def _read_tables(files: Sequence[Path], n: int) -> list[str]:
    """.jsonl/.json/.parquet files with a "text" column, through datasets' local builders."""
    try:
        import datasets
    except ImportError as exc:
        raise DataUnavailableError(f"reading {files[0]} needs the datasets package: pip install datasets") from exc
    builder = "parquet" if files[0].suffix == ".parquet" else "json"
    try:
        ds = datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train")
    except Exception as exc:
        raise DataUnavailableError(f"could not read {files[0]} ({type(exc).__name__}: {exc}); {_FETCH_HINT}") from exc
    if "text" not in ds.column_names:
        raise DataUnavailableError(f"{files[0]} has no 'text' column (columns: {ds.column_names})")
    return list(ds.select(range(min(n, len(ds))))["text"])


# --------------------------------------------------------------------------------------------------------------
# Token caches
# --------------------------------------------------------------------------------------------------------------

class TokenCache:
    """Stories as one flat token array plus offsets (story i = tokens[offsets[i]:offsets[i+1]])."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        if offsets.ndim != 1 or offsets[0] != 0 or offsets[-1] != len(tokens):
            raise ValueError("offsets must start at 0 and end at len(tokens)")
        self.tokens = tokens
        self.offsets = offsets

    @staticmethod
    def paths(path_prefix: str | os.PathLike) -> tuple[Path, Path]:
        prefix = str(path_prefix)
        return Path(prefix + ".tokens.npy"), Path(prefix + ".offsets.npy")

    @classmethod
    def exists(cls, path_prefix: str | os.PathLike) -> bool:
        return all(p.is_file() for p in cls.paths(path_prefix))

    @classmethod
    def open(cls, path_prefix: str | os.PathLike) -> "TokenCache":
        """Memory-mapped, read-only."""
        tokens_path, offsets_path = cls.paths(path_prefix)
        return cls(np.load(tokens_path, mmap_mode="r"), np.load(offsets_path, mmap_mode="r"))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    def story(self, i: int) -> np.ndarray:
        return self.tokens[int(self.offsets[i]):int(self.offsets[i + 1])]


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:  # a file object keeps np.save from appending ".npy" to the temporary name
        np.save(f, array)
    os.replace(tmp, path)


def build_token_cache(stories: Sequence[str], tokenizer: Tokenizer, path_prefix: str | os.PathLike) -> TokenCache:
    """Tokenizes the stories (no separators) and writes <prefix>.tokens.npy and <prefix>.offsets.npy atomically;
    offsets are written last, so a cache whose two files both exist is complete."""
    encoded = tokenizer.encode_batch(list(stories))
    dtype = np.uint16 if tokenizer.vocab_size < 2 ** 16 else np.uint32
    lengths = np.fromiter((len(ids) for ids in encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.fromiter((i for ids in encoded for i in ids), dtype=dtype, count=int(offsets[-1]))
    tokens_path, offsets_path = TokenCache.paths(path_prefix)
    tokens_path.parent.mkdir(parents=True, exist_ok=True)
    if offsets_path.exists():  # never leave new tokens next to stale offsets
        offsets_path.unlink()
    _save_npy_atomic(tokens_path, tokens)
    _save_npy_atomic(offsets_path, offsets)
    return TokenCache.open(path_prefix)


def _local_signature(path: Path) -> list:
    """(name, size, mtime) of the local files, so that edited or replaced files invalidate the cache."""
    if not path.exists():
        return []
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [(str(p.relative_to(path)) if p != path else p.name, p.stat().st_size, p.stat().st_mtime_ns)
            for p in files]


def token_cache_key(source: str, split: str, n: int, tokenizer: Tokenizer, min_chars: int = 40,
                    seed: int = 0) -> str:
    """File-name-safe key naming everything the cached tokens depend on."""
    files = None
    if source not in ("embedded", "hub"):
        source = str(Path(source).expanduser().resolve())
        files = _local_signature(Path(source))
    spec = {"source": source, "split": split, "n": n, "min_chars": min_chars, "seed": seed,
            "tokenizer": tokenizer.name, "vocab": tokenizer_fingerprint(tokenizer),
            "grammar": _GRAMMAR_VERSION if source == "embedded" else None, "files": files}
    if files is not None and Path(source).is_file():  # token caches made before the disjoint split must not be reused
        spec["single_file_val_every"] = SINGLE_FILE_VAL_EVERY
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    label = source if source in ("embedded", "hub") else Path(source).name or "local"
    label = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:40]
    return f"{label}_{split}_{n}_{tokenizer.name}_{digest}"


def cached_tokens(source: str, split: str, n: int, tokenizer: Tokenizer, cache_dir: str | os.PathLike | None,
                  min_chars: int = 40, seed: int = 0) -> TokenCache:
    """The token cache of load_stories(source, split, n, min_chars, seed), built on first use, then reused."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    prefix = cache_dir / "tokens" / token_cache_key(source, split, n, tokenizer, min_chars, seed)
    if TokenCache.exists(prefix):
        return TokenCache.open(prefix)
    stories = load_stories(source, split, n, min_chars=min_chars, seed=seed)
    if not stories:
        raise DataUnavailableError(f"data source {source!r} ({split}) gave no stories of >= {min_chars} chars")
    return build_token_cache(stories, tokenizer, prefix)


def get_embedded_tokenizer(cache_dir: str | os.PathLike | None = None, n_stories: int = EMBEDDED_TOKENIZER_STORIES,
                           seed: int = 0) -> EmbeddedTokenizer:
    """The embedded tokenizer, built from the first n_stories embedded training stories (of `seed`) and cached as
    JSON. Keep the defaults so that every run shares one vocabulary (and one codeword list)."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cache_dir / f"embedded_tokenizer_g{_GRAMMAR_VERSION}_n{n_stories}_s{seed}.json"
    if path.is_file():
        return EmbeddedTokenizer.load(path)
    tokenizer = EmbeddedTokenizer.build(generate_stories(n_stories, _embedded_seed("train", seed)))
    tokenizer.save(path)
    return tokenizer
