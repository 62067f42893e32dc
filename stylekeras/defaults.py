"""The library's choices and defaults, in one module that does not import TensorFlow.

The modules that use them import them from here; the CLI reads them
to build its options, so `stylekeras --help` answers without loading TensorFlow.
"""

from pathlib import Path

# Networks and how they are run (`stylekeras.features`, `stylekeras.weights`).
BACKBONES = ("vgg19", "vgg16")
POOLINGS = ("max", "avg")
PADDINGS = ("zero", "reflect", "replicate")
# "mixed": convolutions in bfloat16, everything else (preprocessing, the returned features, losses, the
# image) in float32. bfloat16 rather than float16 because VGG's Caffe-scale activations exceed float16's
# maximum of 65504 (block5 reaches ~7e4 on the example images) while bfloat16 has float32's range.
# "auto": "mixed" where the hardware has bfloat16 units, else "float32" (without them bfloat16 is several
# times slower: README, "Speed").
PRECISIONS = ("auto", "float32", "mixed")
DEFAULT_PRECISION = "auto"
# Gatys et al. 2016, section 3: style from conv1_1 … conv5_1, content from conv4_2. We leave out conv5_1: at
# the sizes we run it copies whole motifs of the painting (Matisse's face) into empty skies and thin
# structures, and the style measure is as high without it (QUALITY.md).
DEFAULT_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1")
# Content from conv2_2, not the paper's conv4_2: the photo's edges are held at four times the resolution,
# which keeps towers, lattices, faces and eyes under textures that cover everything (dots, hatching, glass)
# for a style measure 0.01 lower, and the network ends at block4_conv1 (QUALITY.md, "Content from conv2_2").
DEFAULT_CONTENT_LAYERS = ("block2_conv2",)

# The optimization (`stylekeras.settings.TransferSettings`).
INITS = ("transport", "palette", "content", "noise", "style")
# The photo recoloured toward the painting's colours: the style loss then starts where the painting's palette
# is, and stops leaving large regions in the photo's colours. "palette" matches the colours' mean and
# covariance; "transport" goes halfway from there to the painting's whole colour distribution, which moves
# a photo whose colours the painting lacks (a red building under the Wave) further (QUALITY.md); it
# recolours the photo with its chroma smoothed, so the maps' gains do not stretch colour noise into grain.
DEFAULT_INIT = "transport"
# The starts a served stylizer can take (a request carries no seed, so not noise), its default the CLI's.
SERVED_INITS = ("transport", "palette", "content")
DEFAULT_SERVED_INIT = "transport"
# The precisions a served stylizer can be exported in: the serving machine, not the exporting one, decides
# whether bfloat16 pays, so an export never picks it by itself ("auto").
SERVED_PRECISIONS = ("float32", "mixed")
DEFAULT_SERVED_PRECISION = "float32"
# The starts that are the photo: a finer scale of theirs gets the photo's finer detail (`stylize.finer_start`);
# noise's or the painting's detail would be laid over the composition the coarser scales made.
PHOTO_INITS = ("transport", "palette", "content")
OPTIMIZERS = ("adam", "lbfgs")
COLOR_MODES = ("luminance", "histogram")
STYLE_NORMALIZATIONS = ("balanced", "paper")

# Defaults tuned for ImageNet VGG19 on photo × painting pairs at 256 and 512 px (QUALITY.md): L-BFGS,
# Gatys et al.'s optimizer, reaches a stronger, cleaner style than Adam in the same time. The balanced
# normalization moves the palette of large uniform regions, which the paper's leaves on most pairs, and
# near its default β the result hardly depends on β, so no photo needs its own.
DEFAULT_SIZE = 512
DEFAULT_STEPS = 60
# No stopping rule by default: every default scale still lowers its loss by 3–10 % over its last 10 steps
# (BENCHMARKS.md, "Design choices"), so `min_improvement` is for runs asked to take many more steps.
DEFAULT_MIN_IMPROVEMENT = 0.0
# Steps over which `min_improvement` compares a scale's loss: one step's drop varies (a step the L-BFGS
# safeguard shortened lowers the loss little), ten show the trend.
FLAT_WINDOW = 10
# None: as many scales as it takes to double from MIN_START_SIZE to the output (512 px: 256, 512; 1024 px:
# 256, 512, 1024), so every output is composed at one size and its strokes are the same share of the picture
# at every `size` (QUALITY.md, "The same settings at every size").
DEFAULT_SCALES = None
# No default scale is smaller: below it VGG sees too little of a face or a building, which dissolve (QUALITY.md).
MIN_START_SIZE = 256
DEFAULT_OPTIMIZER = "lbfgs"
# conv2_2's content loss sums four times the terms of conv4_2's (each layer up 4× the positions, ½ the
# channels): 0.25 keeps the balance the paper's α = 1 gives at conv4_2.
DEFAULT_CONTENT_WEIGHT = 0.25
DEFAULT_STYLE_NORMALIZATION = "balanced"
# β when `style_weight` is not given, per style normalization (QUALITY.md).
DEFAULT_STYLE_WEIGHTS = {"balanced": 2.5e8, "paper": 3e4}
DEFAULT_TV_WEIGHT = 1e2
DEFAULT_LEARNING_RATE = 0.02
DEFAULT_LBFGS_LEARNING_RATE = 1.0  # L-BFGS scales its own steps; 1 is torch's and jcjohnson's choice
DEFAULT_LBFGS_HISTORY = 10  # pairs L-BFGS remembers
# Context around each tile. `python bench/tiling.py` (512 px, 128 px tiles, hed): the tiled gradient's
# relative error against the whole image's is 0.20 with no margin, 0.010 at 16 px, 0.0002 at 32 px.
DEFAULT_TILE_MARGIN = 32

# Presets: `--config NAME` reads stylekeras/presets/NAME.toml, a --config file shipped with the package.
PRESETS_DIR = Path(__file__).parent / "presets"
PRESETS = ("neural-style", "bold")  # jcjohnson/neural-style's default run; the defaults with larger strokes

# Video (`stylekeras.video`): λ of Ruder et al.'s temporal loss, in the content loss's units
# (`objective.temporal_loss_weights`; QUALITY.md, "Video"). 2000 since the content moved to conv2_2, whose
# finer maps tie each frame to its own photo more: at 1000 its frames flicker more than conv3_2's did.
DEFAULT_TEMPORAL_WEIGHT = 2e3

# 50 megapixels (e.g. 8660×5773): far above what style transfer can use, below Pillow's own bomb warning
# (89 MP), and checked from the header before any pixel is decoded.
DEFAULT_MAX_PIXELS = 50_000_000

# Serving exports (`stylekeras.export`).
DEFAULT_EXPORT_PATH = Path("saved_models")
# The paper's layers, conv5_1 included, and our content layer: a feature service serves more uses than our defaults.
DEFAULT_EXPORT_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1", "block4_conv2",
                         "block2_conv2")

# The served stylizer's optimizer (`stylekeras.serving`): L-BFGS with the library's safeguard, as its default
# runs. On five pairs at 512 px it scored higher on four in half the time, its paint smoother where Adam leaves
# a fine grain the paintings lack (QUALITY.md, "The served stylizer's optimizer"). L-BFGS's evaluations a step
# vary with the safeguard (at most `optimizers.MAX_HALVINGS` + 1); Adam's step is a fixed amount of work.
DEFAULT_SERVED_OPTIMIZER = "lbfgs"
# Steps of a request that does not say, per optimizer, at one scale from the palette start at 512 px: where the
# pictures stop changing, with a margin (QUALITY.md).
DEFAULT_SERVING_STEPS = {"lbfgs": 60, "adam": 150}
# What one request may ask for, so that it cannot take the server's memory or time: pixels of the image
# the optimization runs on (README, "Serving the stylization itself", gives a request's memory at this
# size with each optimizer) and steps.
DEFAULT_SERVING_MAX_PIXELS = 1024 * 1024
DEFAULT_SERVING_MAX_STEPS = 2000
