"""A plain, sequential PyTorch implementation of the ISCP search (docs/method.md, Algorithm 1 with
the `released` objective) and of predictive power, to time `iscp bench --model` against.

    python3 reference_search.py train  --data DIR --out model.pt [--epochs 1] [--seed 0]
    python3 reference_search.py search --model model.pt --data DIR [--alpha 0.2] [--classes 10]
    python3 reference_search.py synth  --out DIR [--train 6000] [--test 2000]

`synth` writes a Fashion-MNIST-shaped IDX folder (28x28, 10 classes, gzip) of synthetic images, for
machines without the real data (the GPU check, the tests): class c is a bright 6x6 square at one
of ten places on a noisy background.

`train` writes a TorchScript 3-conv BatchNorm CNN for Fashion-MNIST (pixels in [0,1] in, the
normalisation inside, logits out): the user's own model of the benchmark.

`search` does, one search at a time, exactly the work `iscp bench --model` does: for every class,
the top positive canvas (the correctly classified test image of that class with the highest target
logit), one search on D_n (a stratified, seeded 20% of the test set minus the class; T = 5, B = 4,
eta = 0.02, mask 1xHxW initialised to 0.5, L = alpha*mean CE + (1-alpha)*|m|_1/(n/2), signed step,
clamp to [0,1]), then PW at sizes 1/2/3/5/10% on the full test set and on the held-out 80% (top-k
binarisation, the pattern attached to every non-target test image, no-grad batches of 1000).
Its last line is one JSON object with the timings and the mean PW per size.

Needs only torch (no numpy, no torchvision): the IDX files are read with gzip.
"""
import argparse
import gzip
import json
import os
import platform
import struct
import time

import torch
import torch.nn.functional as F



def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    t = torch.frombuffer(bytearray(data[4 + 4 * dims :]), dtype=torch.uint8)
    return t.reshape(shape)


def find(folder, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise SystemExit(f"{stem}(.gz) is not in {folder}")


def load(folder, part):
    images = read_idx(find(folder, f"{part}-images-idx3-ubyte")).float().div(255).unsqueeze(1)
    labels = read_idx(find(folder, f"{part}-labels-idx1-ubyte")).long()
    return images, labels


class Net(torch.nn.Module):
    """conv 32 -> BN -> ReLU -> pool, conv 64 -> BN -> ReLU -> pool, conv 128 -> BN -> ReLU ->
    global average pool, linear; normalisation inside."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.c1, self.b1 = torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.BatchNorm2d(32)
        self.c2, self.b2 = torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.BatchNorm2d(64)
        self.c3, self.b3 = torch.nn.Conv2d(64, 128, 3, padding=1), torch.nn.BatchNorm2d(128)
        self.fc = torch.nn.Linear(128, classes)

    def forward(self, x):
        x = (x - 0.2860) / 0.3530
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        x = F.relu(self.b3(self.c3(x)))
        return self.fc(x.mean((2, 3)))


def train(a):
    torch.manual_seed(a.seed)
    x, y = load(a.data, "train")
    tx, ty = load(a.data, "t10k")
    net = Net(int(y.max()) + 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    t = time.time()
    for _ in range(a.epochs):
        net.train()
        for idx in torch.randperm(len(x)).split(128):
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = torch.cat([net(b).argmax(1) for b in tx.split(1000)]).eq(ty).float().mean().item()
    torch.jit.script(net).save(a.out)
    print(f"trained {a.epochs} epoch(s) in {time.time() - t:.1f}s; test accuracy {acc:.4f}; wrote {a.out}")


def split(labels, classes, fraction, seed):
    g = torch.Generator().manual_seed(seed)
    search = []
    for c in range(classes):
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        search.append(idx[: round(fraction * len(idx))])
    mask = torch.zeros(len(labels), dtype=torch.bool)
    mask[torch.cat(search)] = True
    return mask


def search_mask(model, canvas, pool, target, alpha, epochs=5, batch=4, lr=0.02, seed=0):
    """Algorithm 1, released objective, one search."""
    n = canvas.shape[-1] * canvas.shape[-2]
    m = torch.full((1, 1) + canvas.shape[-2:], 0.5, requires_grad=True)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(pool), generator=g).split(batch):
            x = m * canvas + (1 - m) * pool[idx]
            y = torch.full((len(idx),), target, dtype=torch.long)
            loss = alpha * F.cross_entropy(model(x), y) + (1 - alpha) * m.abs().sum() / (n / 2)
            (grad,) = torch.autograd.grad(loss, m)
            with torch.no_grad():
                m -= lr * grad.sign()
                m.clamp_(0, 1)
    return m.detach().flatten()


def predictive_power(model, images, labels, held, target, canvas, mask, k, batch=1000):
    order = torch.argsort(-mask, stable=True)
    binary = torch.zeros_like(mask)
    binary[order[:k]] = 1
    binary = binary.view(1, 1, *images.shape[-2:])
    rows = (labels != target).nonzero().flatten()
    hits = []
    with torch.no_grad():
        for r in rows.split(batch):
            x = binary * canvas + (1 - binary) * images[r]
            hits.append(model(x).argmax(1).eq(target))
    hits = torch.cat(hits)
    return hits, rows


def search(a):
    if a.threads:
        torch.set_num_threads(a.threads)
    t_start = time.time()
    model = torch.jit.load(a.model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    images, labels = load(a.data, "t10k")
    classes = int(labels.max()) + 1
    with torch.no_grad():
        logits = torch.cat([model(b) for b in images.split(1000)])
    pred = logits.argmax(1)
    in_search = split(labels, classes, 0.2, a.seed)
    held = ~in_search
    n = images.shape[-1] * images.shape[-2]
    sizes = [0.01, 0.02, 0.03, 0.05, 0.10]
    search_seconds, pw, pw_held = [], {s: [] for s in sizes}, {s: [] for s in sizes}
    for c in range(min(a.classes, classes)):
        ok = ((labels == c) & (pred == c)).nonzero().flatten()
        canvas = images[ok[torch.argmax(logits[ok, c])]]
        pool = images[(in_search & (labels != c)).nonzero().flatten()]
        t = time.time()
        mask = search_mask(model, canvas, pool, c, a.alpha, seed=c)
        search_seconds.append(time.time() - t)
        is_c = labels == c
        acc = (pred[is_c] == c).float().mean().item()
        acc_h = (pred[is_c & held] == c).float().mean().item()
        for s in sizes:
            hits, rows = predictive_power(model, images, labels, held, c, canvas, mask, round(s * n))
            pw[s].append(hits.float().mean().item() / acc)
            pw_held[s].append(hits[held[rows]].float().mean().item() / acc_h)
        print(f"class {c}: search {search_seconds[-1]:.2f}s, |D_n| {len(pool)}, "
              f"PW {' '.join(f'{pw[s][-1]:.3f}' for s in sizes)}", flush=True)
    total = time.time() - t_start
    out = {
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "searches": len(search_seconds),
        "seconds_per_search": sum(search_seconds) / len(search_seconds),
        "seconds_end_to_end": total,
        "mean_pw": {str(s): sum(v) / len(v) for s, v in pw.items()},
        "mean_pw_heldout": {str(s): sum(v) / len(v) for s, v in pw_held.items()},
    }
    print(json.dumps(out))


def synth(a):
    g = torch.Generator().manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    for part, n in (("train", a.train), ("t10k", a.test)):
        labels = torch.arange(n) % 10
        images = torch.rand((n, 28, 28), generator=g) * 0.35
        for c in range(10):
            r, col = 3 + (c // 5) * 13, 2 + (c % 5) * 5
            images[labels == c, r : r + 6, col : col + 6] += 0.6
        pixels = (images.clamp(0, 1) * 255).to(torch.uint8)
        with gzip.open(os.path.join(a.out, f"{part}-images-idx3-ubyte.gz"), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(pixels.flatten().tolist()))
        with gzip.open(os.path.join(a.out, f"{part}-labels-idx1-ubyte.gz"), "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + bytes(labels.to(torch.uint8).tolist()))
    print(f"wrote {a.train} training and {a.test} test images to {a.out}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="write the benchmark's TorchScript CNN")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("search", help="time the sequential reference")
    s.add_argument("--model", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--alpha", type=float, default=0.2)
    s.add_argument("--classes", type=int, default=1000, help="only the first N classes")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=0)
    y = sub.add_parser("synth", help="write a synthetic Fashion-MNIST-shaped IDX folder")
    y.add_argument("--out", required=True)
    y.add_argument("--train", type=int, default=6000)
    y.add_argument("--test", type=int, default=2000)
    y.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    {"train": train, "search": search, "synth": synth}[a.cmd](a)


if __name__ == "__main__":
    main()
