"""Fixtures for internal/pth, written with Debian's python3-torch 1.13:

    cd internal/pth/testdata && /usr/bin/python3 make_fixtures.py [/path/to/shared/golden]

Valid files are written by torch.save itself (both containers) or, where torch no longer
writes a feature (legacy storage views), by a small pickler below; each valid file's expected
content is what torch.load returns for it, exported to <name>.json. Hostile files are built
by hand from pickle opcodes and zipfile, laid out like torch's, and are never loaded here.
With the shared golden directory given, chnet_seed0_probe.json records statistics and leading
values of every tensor of chnet_v1_seed0.pth, as torch reads them.
"""
import collections, io, json, os, pickle, struct, sys, zipfile

import torch

MAGIC = 0x1950A86A20F9469CFC6C
DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
      torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
      torch.uint8: "U8", torch.bool: "BOOL"}


def export(sd):
    out = {"keys": list(sd.keys()), "tensors": {}}
    for k, t in sd.items():
        e = {"dtype": DT[t.dtype], "shape": list(t.shape)}
        flat = t.detach().reshape(-1)
        if t.dtype.is_floating_point:
            e["f32"] = flat.float().tolist()
        else:
            e["i64"] = flat.long().tolist()
        out["tensors"][k] = e
    return out


def save_valid(name, obj, select=lambda o: o, legacy=False):
    path = name + ".pth"
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    with open(name + ".json", "w") as f:
        json.dump(export(select(torch.load(path))), f)


def tiny_state_dict():
    g = torch.Generator().manual_seed(7)
    base = torch.randn(4, 5, generator=g)
    tied = torch.randn(3, generator=g)
    sd = collections.OrderedDict()
    sd["w.f32"] = torch.randn(3, 4, generator=g)
    sd["w.base"] = base
    sd["w.t"] = base.t()                  # stride (1, 5): a transposed view
    sd["w.slice"] = base[1:3, 2:]         # storage offset 7, stride (5, 1)
    sd["w.expand"] = torch.randn(3, 1, generator=g).expand(3, 4)  # stride (1, 0)
    sd["h.f16"] = torch.randn(5, generator=g).half()
    sd["h.bf16"] = torch.randn(2, 3, generator=g).bfloat16()
    sd["d.f64"] = torch.randn(4, generator=g, dtype=torch.float64) * 1e3
    sd["i.i64"] = torch.tensor([-(2 ** 40) - 3, 0, 7, 2 ** 62])
    sd["i.i32"] = torch.tensor([-5, 2 ** 31 - 1], dtype=torch.int32)
    sd["i.i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    sd["i.i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["i.u8"] = torch.tensor([0, 255, 17], dtype=torch.uint8)
    sd["b.bool"] = torch.tensor([True, False, True])
    sd["bn.num_batches_tracked"] = torch.tensor(12345)
    sd["empty"] = torch.zeros(0, 3)
    sd["tie.a"] = tied
    sd["tie.b"] = tied                    # the same tensor object twice (a memo reference)
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])
    return sd


# --- a pickler for hand-made tensors, storages and persistent ids -------------------------

class Storage:
    def __init__(self, typename, key, numel, view=None):
        self.typename, self.key, self.numel, self.view = typename, key, numel, view


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class Pickler(pickle.Pickler):
    def __init__(self, f, legacy):
        super().__init__(f, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, Storage):
            return None
        st = getattr(torch, obj.typename)
        if self.legacy:
            return ("storage", st, obj.key, "cpu", obj.numel, obj.view)
        return ("storage", st, obj.key, "cpu", obj.numel)


def dumps(obj, legacy=False):
    f = io.BytesIO()
    Pickler(f, legacy).dump(obj)
    return f.getvalue()


def write_zip(path, pkl, storages=()):
    """torch's layout: <dir>/data.pkl, <dir>/data/<key>, <dir>/version, all stored."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        for key, data in storages:
            z.writestr("archive/data/" + key, data)
        z.writestr("archive/version", "3\n")


def write_legacy(path, pkl, storages=()):
    """Magic, protocol, sys info, object pickle, key list, then (count, bytes) per storage."""
    with open(path, "wb") as f:
        f.write(pickle.dumps(MAGIC, protocol=2))
        f.write(pickle.dumps(1001, protocol=2))
        f.write(pickle.dumps({"protocol_version": 1001, "little_endian": True,
                              "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2))
        f.write(pkl)
        f.write(pickle.dumps([k for k, _, _ in storages], protocol=2))
        for _, count, data in storages:
            f.write(struct.pack("<q", count))
            f.write(data)


def floats(*v):
    return struct.pack("<%df" % len(v), *v)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def hostile():
    # A global outside the allowlist, reached by REDUCE, as real exploits are written: GLOBAL
    # os.system (protocol 2), STACK_GLOBAL builtins.eval (protocol 4), Python 2's
    # __builtin__.getattr, and pickle's own output for an object reducing to os.system
    # (posix.system) inside an otherwise valid state dict.
    write_zip("evil_os_system.pth", b"\x80\x02cos\nsystem\nX\n\x00\x00\x00echo pwned\x85R.")
    eval_pkl = (b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94"
                b"\x8c\x0c__import__()\x94\x85\x94R\x94.")
    write_legacy("evil_builtins_eval_legacy.pth", eval_pkl)
    write_zip("evil_getattr_py2.pth", b"\x80\x02c__builtin__\ngetattr\n)R.")
    sd = {"w": Tensor(Storage("FloatStorage", "0", 2), 0, [2], [1]), "x": Evil()}
    write_zip("evil_reduce_in_state_dict.pth", dumps(sd), [("0", floats(1, 2))])
    # CVE-2026-24747, first half: SETITEM applied to a list.
    write_zip("setitem_on_list.pth", b"\x80\x02]X\x01\x00\x00\x00kK\x01s.")
    # CVE-2026-24747, second half: the persistent id declares 8 floats, the record holds 4.
    write_zip("storage_size_mismatch.pth", dumps({"w": Tensor(Storage("FloatStorage", "0", 8), 0, [8], [1])}),
              [("0", floats(1, 2, 3, 4))])
    # A 2x3 view of a 4-element storage.
    write_zip("view_out_of_bounds.pth", dumps({"w": Tensor(Storage("FloatStorage", "0", 4), 0, [2, 3], [3, 1])}),
              [("0", floats(1, 2, 3, 4))])
    write_zip("negative_stride.pth", dumps({"w": Tensor(Storage("FloatStorage", "0", 4), 3, [4], [-1])}),
              [("0", floats(1, 2, 3, 4))])
    # 2000 nested MARKs (over the limit), and 2000 nested lists (valid pickle, wrong type).
    write_zip("deep_marks.pth", b"\x80\x02" + b"(" * 2000 + b"t" * 2000 + b".")
    write_zip("deep_lists.pth", b"\x80\x02" + b"]" * 2000 + b"a" * 1999 + b".")
    # A huge declared element count: legacy storage of 2^61 floats in a tiny file, and a
    # stride-0 view of 2^40 elements over a one-element storage.
    big = {"w": Tensor(Storage("FloatStorage", "0", 2 ** 61), 0, [2 ** 61], [1])}
    write_legacy("huge_numel_legacy.pth", dumps(big, legacy=True), [("0", 2 ** 61, floats(1))])
    wide = {"w": Tensor(Storage("FloatStorage", "0", 1), 0, [2 ** 20, 2 ** 20], [0, 0])}
    write_zip("huge_view.pth", dumps(wide), [("0", floats(1))])
    # Legacy element-count prefix disagreeing with the persistent id.
    sd = {"w": Tensor(Storage("FloatStorage", "0", 4), 0, [4], [1])}
    write_legacy("legacy_count_mismatch.pth", dumps(sd, legacy=True), [("0", 5, floats(1, 2, 3, 4))])


def main():
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    sd = tiny_state_dict()
    save_valid("tiny_zip", sd)
    save_valid("tiny_legacy", sd, legacy=True)

    g = torch.Generator().manual_seed(8)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    net[0].weight.grad = torch.randn(3, 2, 1, 1, generator=g)
    net[0].bias.grad = torch.randn(3, generator=g)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    opt.step()
    ckpt = {"epoch": 3, "state_dict": net.state_dict(), "optimizer": opt.state_dict(), "best": 0.5,
            "history": [1.0, 0.5, None, (1, 2)]}
    save_valid("wrapped_state_dict", ckpt, select=lambda o: o["state_dict"])
    ckpt = {"model": net.state_dict(), "args": {"lr": 0.1, "name": "x"}, "seed": 2 ** 70}
    save_valid("wrapped_model_legacy", ckpt, select=lambda o: o["model"], legacy=True)
    save_valid("parameters", {"p": torch.nn.Parameter(torch.arange(6.0).reshape(2, 3))})
    torch.save({"w": torch.tensor([1.0, float("nan"), 2.0]), "n": torch.tensor(3)}, "nonfinite.pth")
    torch.save([torch.zeros(2)], "top_level_list.pth")
    torch.save({"epoch": 3, "w": torch.zeros(2)}, "mixed_dict.pth")

    # Legacy storage views, which torch ≥ 1.x no longer writes but still reads: a root of 10
    # floats, a view of elements 2..7 and a strided tensor inside it.
    root = floats(*[float(i) for i in range(10)])
    view = Storage("FloatStorage", "r", 10, ("v", 2, 5))
    whole = Storage("FloatStorage", "r", 10, None)
    sd = collections.OrderedDict([("in_view", Tensor(view, 1, [2, 2], [1, 2])),
                                  ("whole", Tensor(whole, 0, [10], [1]))])
    write_legacy("legacy_views.pth", dumps(sd, legacy=True), [("r", 10, root)])
    with open("legacy_views.json", "w") as f:
        json.dump(export(torch.load("legacy_views.pth")), f)

    hostile()

    if len(sys.argv) > 1:
        sd = torch.load(os.path.join(sys.argv[1], "chnet_v1_seed0.pth"))
        probe = {}
        for i, (k, t) in enumerate(sd.items()):
            d = t.double()
            probe[k] = {"sum": d.sum().item(), "sumsq": (d * d).sum().item()}
            if i % 25 == 0 or k.startswith("classifier."):
                probe[k]["first"] = t.reshape(-1)[:4].tolist()
        with open("chnet_seed0_probe.json", "w") as f:
            json.dump(probe, f, separators=(",", ":"))
    print("torch", torch.__version__)


if __name__ == "__main__":
    main()
