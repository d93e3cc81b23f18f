"""The embedded corpus: simple children's stories from a fixed grammar, offline and deterministic.

`generate_stories(n, seed)` draws n stories from random.Random(seed); the training and validation splits use
disjoint seeds (`embedded_seed`). The embedded tokenizer (data/tokenizer.py) is built from these stories and
corpus loading (data/corpus.py) serves them as the "embedded" source.

    from drift.data.stories import generate_stories
    generate_stories(3, seed=0)
"""
from __future__ import annotations

import random
from typing import Sequence

GRAMMAR_VERSION = 1  # bump when the grammar changes, so cached tokenizers and token files are rebuilt


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


SPLIT_INDEX = {"train": 0, "validation": 1}


def embedded_seed(split: str, seed: int) -> int:
    """Train seeds are even and validation seeds odd, so the two splits never share a generator stream."""
    if split not in SPLIT_INDEX:
        raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
    return 2 * seed + SPLIT_INDEX[split]
