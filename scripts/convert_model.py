#!/usr/bin/env python3
"""Turns a PyTorch classifier into a TorchScript file with iscp's input convention, and checks it.

iscp feeds a model NCHW float32 pixels in [0,1] and reads logits back. Most trained models expect
normalised inputs ((x - mean) / std per channel) instead; this script wraps the model so that the
normalisation happens inside `forward`, writes the wrapper as TorchScript, loads the written file
again and compares its logits with logits your own pipeline produced. Only torch is needed
(torchvision only for the `torchvision-*` architectures).

    PY=~/.cache/iscp/torch-2.11.0/bin/python3
    # a state dict of one of the architectures below
    $PY scripts/convert_model.py convert --state-dict net.pth --arch resnet18 --classes 10 \
        --shape 3,32,32 --mean 0.4914,0.4822,0.4465 --std 0.2470,0.2435,0.2616 \
        --check check.pt --out net.ts.pt
    # a whole module saved with torch.save(model) (its class must be importable: --import FILE.py);
    # unpickling runs code the file chooses, so this takes --trust-code: only for files you trust
    $PY scripts/convert_model.py convert --module model.pt --import train.py --trust-code \
        --mean 0.5 --std 0.25 --check check.pt --out net.ts.pt
    # the test fixture: a seeded small CNN, its state dict, the pickled module, a check file
    $PY scripts/convert_model.py fixture --out-dir DIR

The check file (`--check FILE`) is a dict saved with torch.save:

    {"images": float tensor N x C x H x W, pixels in [0,1] (before any normalisation),
     "logits": float tensor N x K, what your pipeline (its own preprocessing included) gave}

made, for example, with

    x = torch.stack([to_tensor(img) for img in some_images])          # [0,1], not normalised
    torch.save({"images": x, "logits": model(normalize(x)).detach()}, "check.pt")

The written file is run on the first 100 images (all when fewer), in one batch and the first image
alone, and every logit must agree within `--tolerance` x max(1, max |reference logit|) (default
1e-5: CPU float32; logits computed on a GPU may need 1e-3, TF32 convolutions round coarser). What
this catches: a wrong or missing --mean/--std (by far the most common), channels in the wrong
order (BGR against RGB shows up as a disagreement too), a model left in training mode
(BatchNorm/dropout), a trace that froze a batch size or a data-dependent branch, and weights that
are not the ones your pipeline ran. Without --check nothing is compared against your pipeline (a
warning says so): the written file is only compared with the in-memory wrapper on 100 random
images, which proves the export, not the normalisation.

Exit codes: 0 written and checked; 1 the written model's logits disagree (the file is removed, and
so is an older file at --out: no wrong model is left behind); 2 bad arguments or files, or the
model could not be converted.

Architectures for --state-dict (--classes K and --shape C,H,W are required with them):

  small-cnn      iscp's built-in small CNN (engine/src/model/small_cnn.rs), H, W >= 4:
                 conv1 (C->16, 3x3, pad 1) -> maxpool 2 -> ReLU -> conv2 (16->32, 3x3, pad 1)
                 -> ReLU -> maxpool 2 -> flatten (C,H,W order) -> fc1 (32*(H//4)*(W//4) -> 128)
                 -> ReLU -> fc2 (128 -> K). Parameters: conv1.weight, conv1.bias, conv2.weight,
                 conv2.bias, fc1.weight, fc1.bias, fc2.weight, fc2.bias.
  resnet18       the CIFAR-layout ResNet-18 of engine/src/model/resnet.rs: 3x3 stem (64, stride 1,
                 no bias) + BatchNorm + ReLU, no max-pool, four stages of two basic blocks (widths
                 64-128-256-512, the first block of stages 2-4 strides 2), global average pool,
                 linear. Parameter names follow the common PyTorch CIFAR ResNet (kuangliu's
                 pytorch-cifar):
                   conv1.weight, bn1.{weight,bias,running_mean,running_var,num_batches_tracked}
                   layer{1..4}.{0,1}.conv1.weight, .bn1.*, .conv2.weight, .bn2.*
                   layer{2..4}.0.shortcut.0.weight (1x1 conv), layer{2..4}.0.shortcut.1.* (BN)
                   linear.weight, linear.bias
                 Also accepted, renamed on loading: iscp's own names (stem, stem_bn, short.conv,
                 short.bn, fc) and torchvision's for a CIFAR-modified torchvision ResNet-18
                 (downsample.0, downsample.1, fc; with a 3x3 conv1 and no max-pool).
  torchvision-resnet18, torchvision-resnet50
                 torchvision.models.resnet18/50(num_classes=K), the ImageNet layout (7x7 stem,
                 max-pool); torchvision's own parameter names. Needs torchvision installed.

A state dict may also be a checkpoint dict holding it under "state_dict", "model_state_dict",
"model" or "net"; a "module." prefix (DataParallel) is dropped.

For these architectures the written file also exports `features` (pixels in [0,1] to the last
convolutional block's activations, normalisation included) and `head` (those activations to
logits), the two methods iscp's Grad-CAM calls: put `gradcam_methods = ["features", "head"]` in the
spec's setting. A --module model gets them too when it has `features` and `head` methods whose
composition gives its forward's logits.

Since the normalisation is inside the written model, give iscp no `normalize` (spec) or
`--mean/--std` (`iscp scan`) for it: that would normalise twice.
"""

import argparse
import importlib.util
import os
import sys
import warnings

# torch warns at import when numpy is missing; it needs none here.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CHECK_IMAGES = 100
DEFAULT_TOLERANCE = 1e-5


class ConvertError(Exception):
    """Bad arguments, files or models: exit code 2."""


class CheckFailed(Exception):
    """The written model's logits disagree: exit code 1."""


# ----------------------------------------------------------------------------------------------
# Architectures


class SmallCNN(nn.Module):
    """iscp's small CNN (engine/src/model/small_cnn.rs), with the same values."""

    def __init__(self, channels: int, height: int, width: int, classes: int):
        super().__init__()
        if height < 4 or width < 4:
            raise ConvertError(f"small-cnn needs H, W >= 4, got {height}x{width}")
        self.conv1 = nn.Conv2d(channels, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * (height // 4) * (width // 4), 128)
        self.fc2 = nn.Linear(128, classes)

    def features(self, x):
        # Max-pool then ReLU equals ReLU then max-pool (the Rust code's order).
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        return F.relu(self.conv2(x))

    def head(self, a):
        a = F.max_pool2d(a, 2).flatten(1)
        return self.fc2(F.relu(self.fc1(a)))

    def forward(self, x):
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, inp: int, out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inp, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class CifarResNet18(nn.Module):
    """The CIFAR-layout ResNet-18 of engine/src/model/resnet.rs (names as in pytorch-cifar)."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        inp = 64
        for stage, width in enumerate([64, 128, 256, 512]):
            blocks = []
            for b in range(2):
                blocks.append(BasicBlock(inp, width, 2 if stage > 0 and b == 0 else 1))
                inp = width
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(512, classes)

    def features(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def head(self, a):
        return self.linear(F.adaptive_avg_pool2d(a, 1).flatten(1))

    def forward(self, x):
        return self.head(self.features(x))


def cifar_resnet_key(key: str) -> str:
    """A ResNet-18 parameter name in iscp's or torchvision's spelling, in pytorch-cifar's."""
    for old, new in (
        ("stem_bn.", "bn1."),
        ("stem.", "conv1."),
        (".short.conv.", ".shortcut.0."),
        (".short.bn.", ".shortcut.1."),
        (".downsample.0.", ".shortcut.0."),
        (".downsample.1.", ".shortcut.1."),
        ("fc.", "linear."),
    ):
        if key.startswith(old) or (old.startswith(".") and old in key):
            return key.replace(old, new, 1)
    return key


class TorchvisionResNet(nn.Module):
    """A torchvision ResNet with `features` and `head` split out (same parameter names)."""

    def __init__(self, name: str, classes: int):
        super().__init__()
        try:
            import torchvision  # optional: only these architectures need it
        except ImportError as e:
            raise ConvertError(
                f"--arch torchvision-{name} needs torchvision, which this python lacks ({e}); "
                "install it next to torch, or save the whole module and use --module"
            )
        net = getattr(torchvision.models, name)(weights=None, num_classes=classes)
        for part in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                     "avgpool", "fc"):
            setattr(self, part, getattr(net, part))

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def head(self, a):
        return self.fc(torch.flatten(self.avgpool(a), 1))

    def forward(self, x):
        return self.head(self.features(x))


ARCHS = ["small-cnn", "resnet18", "torchvision-resnet18", "torchvision-resnet50"]


def build(arch: str, shape, classes: int) -> nn.Module:
    c, h, w = shape
    if arch == "small-cnn":
        return SmallCNN(c, h, w, classes)
    if arch == "resnet18":
        return CifarResNet18(c, classes)
    if arch.startswith("torchvision-"):
        return TorchvisionResNet(arch[len("torchvision-"):], classes)
    raise ConvertError(f"unknown --arch {arch}")


# ----------------------------------------------------------------------------------------------
# Loading


def require_trust(trusted: bool, what: str) -> None:
    """Refuses to run code from a file unless the user said --trust-code."""
    if not trusted:
        raise ConvertError(
            f"{what}, and that runs code the file chooses: a file from someone else can do "
            "anything this user can. Pass --trust-code only for files you trust; otherwise "
            "convert a state dict (--state-dict, read as data with torch.load(weights_only=True))"
        )


def import_definitions(files, trusted: bool):
    """Imports each --import FILE.py (not as __main__, so its `if __name__ == "__main__":` part
    does not run) and copies its names into __main__, where the classes of a model pickled by a
    script run directly are looked for. Runs the files: only with --trust-code."""
    if files:
        require_trust(trusted, "--import runs a Python file")
    main = sys.modules["__main__"]
    for path in files:
        if not os.path.isfile(path):
            raise ConvertError(f"--import {path}: no such file")
        folder = os.path.dirname(os.path.abspath(path))
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise ConvertError(f"--import {path} failed: {type(e).__name__}: {e}")
        for key, value in vars(module).items():
            if not key.startswith("__") and not hasattr(main, key):
                setattr(main, key, value)


def load_module(path: str, trusted: bool) -> nn.Module:
    """Unpickles a whole module, which runs whatever the file says: only with --trust-code."""
    require_trust(trusted, "--module unpickles a whole module")
    if not os.path.isfile(path):
        raise ConvertError(f"--module {path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torch.load(path, map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError, ImportError) as e:
        raise ConvertError(
            f"--module {path}: the model's class cannot be found ({e}). A module saved with "
            "torch.save(model) keeps only a reference to its class: pass the file that defines "
            "it with --import FILE.py, or put its folder on PYTHONPATH"
        )
    except Exception as e:
        raise ConvertError(f"--module {path}: torch.load failed: {type(e).__name__}: {e}")
    if isinstance(model, dict):
        raise ConvertError(
            f"--module {path} holds a dict (a state dict or checkpoint), not a module: "
            "use --state-dict with --arch, --classes and --shape"
        )
    if not isinstance(model, nn.Module):
        raise ConvertError(f"--module {path} holds a {type(model).__name__}, not an nn.Module")
    return model


def load_state_dict(path: str, arch: str, model: nn.Module) -> None:
    if not os.path.isfile(path):
        raise ConvertError(f"--state-dict {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConvertError(
            f"--state-dict {path}: torch.load(weights_only=True) failed ({type(e).__name__}): "
            "it holds more than tensors; a whole module saved with torch.save(model) goes to "
            "--module --trust-code (which runs code from the file)"
        )
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise ConvertError(f"--state-dict {path} holds a {type(state).__name__}, not a dict")
    for key in ("state_dict", "model_state_dict", "model", "net"):
        if isinstance(state.get(key), dict):
            state = state[key]
            break
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    if arch == "resnet18":
        state = {cifar_resnet_key(k): v for k, v in state.items()}
    want = model.state_dict()
    # BatchNorm's step counter is not a weight: checkpoints (and tch var stores) may lack it.
    for k, v in want.items():
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = v.clone()
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    wrong = [
        f"{k} {tuple(state[k].shape)} (needs {tuple(v.shape)})"
        for k, v in want.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong:
        lines = [f"--state-dict {path} does not fit --arch {arch}:"]
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
                lines.append(f"  {label}: {', '.join(keys[:8])}{more}")
        lines.append("  (check --arch, --classes and --shape; the names each --arch expects are "
                     "in this script's docstring)")
        raise ConvertError("\n".join(lines))
    model.load_state_dict(state, strict=True)


def load_check(path: str):
    if not os.path.isfile(path):
        raise ConvertError(f"--check {path}: no such file")
    try:
        check = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConvertError(f"--check {path}: torch.load failed: {type(e).__name__}: {e}")
    if not isinstance(check, dict) or not all(k in check for k in ("images", "logits")):
        raise ConvertError(
            f"--check {path} must be a dict with \"images\" (N x C x H x W in [0,1]) and "
            "\"logits\" (N x K)"
        )
    images, logits = check["images"], check["logits"]
    if not (torch.is_tensor(images) and torch.is_tensor(logits)):
        raise ConvertError(f"--check {path}: \"images\" and \"logits\" must be tensors")
    if images.dim() != 4 or logits.dim() != 2 or images.shape[0] != logits.shape[0]:
        raise ConvertError(
            f"--check {path}: images {tuple(images.shape)} and logits {tuple(logits.shape)} "
            "must be N x C x H x W and N x K with the same N"
        )
    if images.shape[0] == 0:
        raise ConvertError(f"--check {path} holds no images")
    if not images.is_floating_point():
        raise ConvertError(f"--check {path}: images must be floats in [0,1], not {images.dtype}")
    images = images[:CHECK_IMAGES].float()
    logits = logits[:CHECK_IMAGES].double()
    lo, hi = images.min().item(), images.max().item()
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ConvertError(
            f"--check {path}: images range over [{lo:.4g}, {hi:.4g}], not [0,1]: save the pixels "
            "before normalisation (what iscp feeds), the logits after your pipeline's own"
        )
    if not torch.isfinite(logits).all():
        raise ConvertError(f"--check {path}: the logits hold NaN or infinity")
    return images, logits


# ----------------------------------------------------------------------------------------------
# The wrapper


class Normalized(nn.Module):
    """Pixels in [0,1] in, (x - mean) / std fed to the model, its logits out."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


class NormalizedCam(Normalized):
    """`Normalized`, also exporting `features` and `head` for iscp's Grad-CAM (scripted)."""

    @torch.jit.export
    def features(self, x):
        return self.model.features((x - self.mean) / self.std)

    @torch.jit.export
    def head(self, a):
        return self.model.head(a)


class NormalizedCamTraced(Normalized):
    """`NormalizedCam` for tracing (torch.jit.trace_module traces these methods; methods marked
    @torch.jit.export would be compiled instead and clash)."""

    def features(self, x):
        return self.model.features((x - self.mean) / self.std)

    def head(self, a):
        return self.model.head(a)


def parse_floats(text: str, flag: str):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConvertError(f"{flag} {text}: not a comma-separated list of numbers")
    if not values:
        raise ConvertError(f"{flag} is empty")
    return values


def parse_shape(text: str):
    try:
        shape = [int(v) for v in text.split(",")]
    except ValueError:
        shape = []
    if len(shape) != 3 or min(shape) < 1:
        raise ConvertError(f"--shape {text}: expected C,H,W (three positive integers)")
    return shape


def has_cam_methods(model: nn.Module, example) -> bool:
    """Whether `model.head(model.features(x))` is its forward (the methods Grad-CAM needs)."""
    if not (callable(getattr(model, "features", None)) and callable(getattr(model, "head", None))):
        return False
    try:
        with torch.no_grad():
            split = model.head(model.features(example))
            whole = model(example)
        return torch.is_tensor(split) and split.shape == whole.shape and torch.allclose(
            split, whole, rtol=1e-5, atol=1e-6
        )
    except Exception:
        return False


def export(wrapper: nn.Module, example, method: str, cam: bool):
    """TorchScript of the wrapper: scripted (keeps control flow) or traced (any feed-forward
    model); `auto` scripts and falls back to tracing. Returns (module, how)."""
    errors = []
    original = wrapper
    if method in ("auto", "script"):
        try:
            return torch.jit.script(wrapper), "scripted"
        except Exception as e:
            errors.append(f"torch.jit.script: {type(e).__name__}: {str(e).strip().splitlines()[0]}")
            if method == "script":
                raise ConvertError("could not script the model: " + errors[-1])
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            inputs = {"forward": (example,)}
            if cam:
                wrapper = NormalizedCamTraced(wrapper.model, [0.0], [1.0])
                wrapper.mean, wrapper.std = original.mean, original.std
                inputs["features"] = (example,)
                inputs["head"] = (wrapper.features(example),)
            traced = torch.jit.trace_module(wrapper, inputs, check_trace=False)
        note = "traced" if not errors else "traced (scripting failed: " + errors[0] + ")"
        return traced, note
    except Exception as e:
        errors.append(f"torch.jit.trace: {type(e).__name__}: {e}")
        raise ConvertError("could not convert the model to TorchScript:\n  " + "\n  ".join(errors))


def run_saved(module, images):
    with torch.no_grad():
        out = module(images)
    if not torch.is_tensor(out) or out.dim() != 2 or out.shape[0] != images.shape[0]:
        what = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise ConvertError(f"the model gives {what}, not a batch of logits N x K")
    return out.double()


def compare(got, want, tolerance):
    diff = (got - want).abs().max().item()
    allowed = tolerance * max(1.0, want.abs().max().item())
    return diff, allowed


NORMALISATION_HINTS = {
    1: [("none", [0.0], [1.0]), ("0.5/0.5", [0.5], [0.5]), ("MNIST", [0.1307], [0.3081]),
        ("Fashion-MNIST", [0.2860], [0.3530])],
    3: [("none", [0.0] * 3, [1.0] * 3), ("0.5/0.5", [0.5] * 3, [0.5] * 3),
        ("ImageNet", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ("CIFAR-10", [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),
        ("CIFAR-10 (std 0.2023,..)", [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010])],
}


def normalisation_hint(model, images, logits, tolerance) -> str:
    """Which common normalisation, if any, reproduces the check file's logits (eager model)."""
    for name, mean, std in NORMALISATION_HINTS.get(images.shape[1], []):
        try:
            got = run_saved(Normalized(model, mean, std).eval(), images)
        except Exception:
            return ""
        diff, allowed = compare(got, logits, tolerance)
        if diff <= allowed:
            m = ",".join(f"{v:g}" for v in mean)
            s = ",".join(f"{v:g}" for v in std)
            return f"\n  hint: --mean {m} --std {s} ({name}) reproduces them (max difference {diff:.3g})"
    return ""


def remove(path):
    try:
        os.remove(path)
        return True
    except FileNotFoundError:
        return False


def convert(args) -> None:
    if args.module and args.state_dict:
        raise ConvertError("give one of --module and --state-dict")
    # Refused before anything is read; the loaders check again, so no path reaches them untrusted.
    if args.module:
        require_trust(args.trust_code, "--module unpickles a whole module")
    if args.imports:
        require_trust(args.trust_code, "--import runs a Python file")
    if not args.module and not args.state_dict:
        raise ConvertError("give --state-dict FILE (with --arch, --classes, --shape) or --module FILE")
    if args.state_dict and not (args.arch and args.classes and args.shape):
        raise ConvertError("--state-dict needs --arch, --classes and --shape")
    if args.arch and args.module:
        raise ConvertError("--arch goes with --state-dict, not --module")
    if (args.mean is None) != (args.std is None):
        raise ConvertError("give both --mean and --std, or neither")
    if args.tolerance <= 0:
        raise ConvertError("--tolerance must be positive")
    shape = parse_shape(args.shape) if args.shape else None
    mean = parse_floats(args.mean, "--mean") if args.mean is not None else [0.0]
    std = parse_floats(args.std, "--std") if args.std is not None else [1.0]
    if any(s <= 0 for s in std):
        raise ConvertError("--std values must be positive")

    check = load_check(args.check) if args.check else None
    if check is not None:
        c_shape = list(check[0].shape[1:])
        if shape is not None and shape != c_shape:
            raise ConvertError(f"--shape {args.shape} but the check file's images are "
                               f"{','.join(map(str, c_shape))}")
        shape = c_shape
        if args.classes and args.classes != check[1].shape[1]:
            raise ConvertError(f"--classes {args.classes} but the check file's logits have "
                               f"{check[1].shape[1]} classes")
    if shape is None:
        raise ConvertError("--module without --check needs --shape C,H,W (the input size)")
    channels = shape[0]
    if len(mean) != len(std) or len(mean) not in (1, channels):
        raise ConvertError(f"--mean and --std need 1 or {channels} (C) values each, "
                           f"got {len(mean)} and {len(std)}")

    import_definitions(args.imports or [], args.trust_code)
    if args.module:
        model = load_module(args.module, args.trust_code)
        source = args.module
    else:
        model = build(args.arch, shape, args.classes)
        load_state_dict(args.state_dict, args.arch, model)
        source = f"{args.state_dict} ({args.arch})"
    if args.module and model.training:
        print("note: the model was in training mode; converting it in eval mode", file=sys.stderr)
    model = model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)

    gen = torch.Generator().manual_seed(0)
    random_images = torch.rand([CHECK_IMAGES] + shape, generator=gen)
    example = (check[0] if check is not None else random_images)[:2]
    cam = has_cam_methods(model, (example - torch.tensor(mean).view(1, -1, 1, 1))
                          / torch.tensor(std).view(1, -1, 1, 1))
    wrapper = (NormalizedCam if cam else Normalized)(model, mean, std).eval()
    try:
        with torch.no_grad():
            eager = run_saved(wrapper, example)
    except ConvertError:
        raise
    except Exception as e:
        raise ConvertError(f"the model fails on a {','.join(map(str, shape))} input: "
                           f"{type(e).__name__}: {e}")
    if args.classes and eager.shape[1] != args.classes:
        raise ConvertError(f"the model gives {eager.shape[1]} logits, --classes says {args.classes}")

    scripted, how = export(wrapper, example, args.method, cam)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise ConvertError(f"--out {args.out}: folder {out_dir} does not exist")
    tmp = os.path.join(out_dir, f".{os.path.basename(args.out)}.tmp-{os.getpid()}")
    try:
        scripted.save(tmp)
        saved = torch.jit.load(tmp, map_location="cpu").eval()
        if check is not None:
            images, want = check
            label = f"the check file's logits ({args.check}, {images.shape[0]} images)"
        else:
            images = random_images
            with torch.no_grad():
                want = run_saved(wrapper, images)
            label = f"the in-memory model's logits ({images.shape[0]} random [0,1] images)"
        got = run_saved(saved, images)
        if got.shape != want.shape:
            raise CheckFailed(f"the written model gives logits {tuple(got.shape)}, "
                              f"{label} are {tuple(want.shape)}")
        diff, allowed = compare(got, want, args.tolerance)
        one, _ = compare(run_saved(saved, images[:1]), want[:1], args.tolerance)
        if cam:
            with torch.no_grad():
                split = saved.head(saved.features(images[:2])).double()
            cam_diff, _ = compare(split, got[:2], args.tolerance)
            if cam_diff > allowed:
                raise CheckFailed(f"the written model's head(features(x)) differs from its "
                                  f"forward by {cam_diff:.3g}")
        print(f"max |logit difference| against {label}: {diff:.3g} "
              f"(allowed {allowed:.3g}; first image alone {one:.3g})")
        if diff > allowed or one > allowed or not torch.isfinite(got).all():
            if check is not None:
                agree = (got.argmax(1) == want.argmax(1)).double().mean().item()
                raise CheckFailed(
                    f"the converted model's logits disagree with the check file's: max "
                    f"difference {max(diff, one):.3g} > allowed {allowed:.3g} (top-1 agrees on "
                    f"{agree:.0%} of {images.shape[0]} images). The usual cause is a wrong "
                    f"--mean/--std (normalisation; given: mean {mean}, std {std}): pass the "
                    "mean and std your pipeline normalises with, per channel, in the order it "
                    "feeds channels. Other causes: the weights differ from those your pipeline "
                    "ran, or its logits came from a GPU (try --tolerance 1e-3)"
                    + normalisation_hint(model, images, want, args.tolerance)
                )
            raise CheckFailed(
                f"the written TorchScript gives other logits than the model it was made from "
                f"(max difference {max(diff, one):.3g} > {allowed:.3g}): the export ({how}) "
                "lost something, e.g. a trace froze a batch size or a data-dependent branch; "
                "try --method script"
            )
        os.replace(tmp, args.out)
    except BaseException:
        remove(tmp)
        if remove(args.out):
            print(f"removed the earlier {args.out}, so no unchecked model is left there",
                  file=sys.stderr)
        raise
    print(f"wrote {args.out}: {source}, {how}, input {','.join(map(str, shape))} pixels in [0,1], "
          f"mean {mean}, std {std} inside, {got.shape[1]} logits out"
          + ("; exports features/head (gradcam_methods = [\"features\", \"head\"])" if cam else ""))
    if check is None:
        print(
            "warning: nothing was checked against your pipeline (no --check): the written file "
            "only matches the model in memory, so a wrong --mean/--std would go unnoticed. Save "
            "{\"images\": N x C x H x W in [0,1], \"logits\": your pipeline's N x K} with "
            "torch.save and pass it as --check",
            file=sys.stderr,
        )


# ----------------------------------------------------------------------------------------------
# The test fixture

FIXTURE_MEAN, FIXTURE_STD = 0.5, 0.25


def fixture(args) -> None:
    """A seeded small CNN (1x28x28, 10 classes): model.state.pt (state dict), model.module.pt
    (the pickled module) and check.pt (100 seeded images, logits with mean 0.5, std 0.25)."""
    os.makedirs(args.out_dir, exist_ok=True)
    torch.manual_seed(args.seed)
    model = SmallCNN(1, 28, 28, 10).eval()
    gen = torch.Generator().manual_seed(args.seed + 1)
    images = torch.rand(CHECK_IMAGES, 1, 28, 28, generator=gen)
    with torch.no_grad():
        logits = model((images - FIXTURE_MEAN) / FIXTURE_STD)
    torch.save(model.state_dict(), os.path.join(args.out_dir, "model.state.pt"))
    torch.save(model, os.path.join(args.out_dir, "model.module.pt"))
    torch.save({"images": images, "logits": logits}, os.path.join(args.out_dir, "check.pt"))
    print(f"wrote model.state.pt, model.module.pt, check.pt to {args.out_dir} "
          f"(small-cnn 1,28,28, 10 classes, mean {FIXTURE_MEAN}, std {FIXTURE_STD})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Convert a PyTorch classifier to TorchScript for iscp (pixels in [0,1] in, "
        "normalisation inside, logits out) and check it against your pipeline's logits.",
        epilog="See the module docstring (or docs/guide.md: Bring your own model) for the formats.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="write and check the TorchScript file")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--state-dict", metavar="FILE", help="a state dict of one of --arch")
    src.add_argument("--module", metavar="FILE", help="a whole module saved with torch.save(model)")
    c.add_argument("--arch", choices=ARCHS, help="the architecture of --state-dict")
    c.add_argument("--classes", type=int, metavar="K", help="number of classes (logits)")
    c.add_argument("--shape", metavar="C,H,W", help="input shape (default: the check file's)")
    c.add_argument("--mean", metavar="M1,M2,..", help="per-channel mean the model expects")
    c.add_argument("--std", metavar="S1,S2,..", help="per-channel std the model expects")
    c.add_argument("--check", metavar="FILE",
                   help='torch.save\'d {"images": NxCxHxW in [0,1], "logits": NxK} from your pipeline')
    c.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="allowed max |logit difference|, times max(1, max |logit|) (default 1e-5)")
    c.add_argument("--method", choices=["auto", "script", "trace"], default="auto",
                   help="torch.jit.script or trace; auto scripts, tracing when that fails")
    c.add_argument("--import", dest="imports", action="append", metavar="FILE.py",
                   help="a file defining the --module's classes (repeatable)")
    c.add_argument("--trust-code", action="store_true",
                   help="allow --module and --import, which run code from the files given "
                   "(unpickling a module runs whatever the file says): only for files you trust")
    c.add_argument("--out", required=True, metavar="FILE.pt", help="the TorchScript file to write")
    f = sub.add_parser("fixture", help="write the tests' model files and check file")
    f.add_argument("--out-dir", required=True, metavar="DIR")
    f.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.command == "convert":
            convert(args)
        else:
            fixture(args)
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except CheckFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
