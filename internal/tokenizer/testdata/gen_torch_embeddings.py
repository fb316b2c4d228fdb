# Writes torch.save-format zip archives without torch (fake torch globals), for comfygo tests.
import sys, types, pickle, io, zipfile, struct, collections

torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch; sys.modules["torch._utils"] = utils
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = "torch._utils"; utils._rebuild_tensor_v2 = _rebuild_tensor_v2
class FloatStorage: pass
class HalfStorage: pass
for c in (FloatStorage, HalfStorage):
    c.__module__ = "torch"; setattr(torch, c.__name__, c)

class Storage:
    def __init__(self, kind, key, data): self.kind, self.key, self.data = kind, key, data
class Tensor:
    def __init__(self, st, off, size, stride): self.a = (st, off, size, stride, False, collections.OrderedDict())
    def __reduce__(self): return (_rebuild_tensor_v2, self.a)

class P(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            n = len(obj.data) // (4 if obj.kind is FloatStorage else 2)
            return ("storage", obj.kind, obj.key, "cpu", n)
        return None

def save(path, obj, storages, stem):
    buf = io.BytesIO(); P(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(stem + "/data.pkl", buf.getvalue())
        z.writestr(stem + "/byteorder", "little")
        for s in storages: z.writestr(stem + "/data/" + s.key, s.data)
        z.writestr(stem + "/version", "3\n")

def f16(x): return struct.pack("<e", x)
# A1111: 2 vectors of width 48, fp16, stored after 5 leading values (storage offset 5).
vals = [((i % 13) - 6) / 8 for i in range(2 * 48)]
st = Storage(HalfStorage, "0", b"".join(f16(v) for v in [9, 9, 9, 9, 9] + vals))
a1111 = {"string_to_token": {"*": 265}, "string_to_param": {"*": Tensor(st, 5, (2, 48), (48, 1))},
         "name": "a1111emb", "step": 1500, "sd_checkpoint": "e1441589", "sd_checkpoint_name": "v1-5-pruned"}
save(sys.argv[1] + "/a1111emb.pt", a1111, [st], "a1111emb")
# diffusers learned_embeds.bin: {"<tok>": [48]} float32, a transposed view to test strides.
vals2 = [i / 100 for i in range(48)]
st2 = Storage(FloatStorage, "7", b"".join(struct.pack("<f", v) for v in vals2))
save(sys.argv[1] + "/learned_embeds.bin", {"<cat-toy>": Tensor(st2, 0, (48,), (1,))}, [st2], "archive")
# A 2-D view with strides (column-major 3x2 over 6 values).
st3 = Storage(FloatStorage, "0", b"".join(struct.pack("<f", v) for v in [1, 2, 3, 4, 5, 6]))
save(sys.argv[1] + "/strided.pt", {"clip_l": Tensor(st3, 0, (3, 2), (1, 3))}, [st3], "strided")
