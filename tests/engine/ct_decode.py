#!/usr/bin/python3
"""ct_decode.py — independent compressed-tensors pack-quantized reader for test_gguf.c, written from
the compressed-tensors format (pack_quantized compressor: signed codes offset by 2^(b-1), packed
along the input dim into int32, lowest bits first; zero points packed the same way along the output
dim) and vLLM's loader, not from lrq's writer.

    ct_decode.py EXPORTDIR REFDIR ROPE [ACTIVATION_JSON]

Reads model.safetensors itself (header JSON + numpy), dequantizes x = (q - zp) * scale in float32,
maps the HF row order back to the model's (ROPE "interleaved": a llama2.c source, whose q/k rows the
exporter permuted to rotate-half), compares bit for bit with REFDIR/L.K.f32 (or, REFDIR holding a model.safetensors: an F32 hf export's
linears, already in HF order). Prints JSON.

int-quantized (W8A8, vLLM CompressedTensorsW8A8Int8): weight int8 [N, K] is the signed value, x =
weight * weight_scale ([N, 1]); static activations add input_scale [1] (and input_zero_point [1],
int8, when asymmetric) per linear, compared with ACTIVATION_JSON's layers[l].input.<linear> (its
zero_point z in [0, 255] is the int8 zp + 128); dynamic activations have none."""
import json
import struct
import sys

import numpy as np

NAMES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
         "mlp.up_proj", "mlp.down_proj"]
DT = {"I8": "<i1", "I32": "<i4", "I64": "<i8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}


def reader(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    base = 8 + n

    def tensor(name):
        e = hdr[name]
        a = np.frombuffer(raw[base + e["data_offsets"][0]:base + e["data_offsets"][1]], DT[e["dtype"]])
        a = a.reshape(e["shape"])
        if e["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        return a.astype(np.float32) if e["dtype"] in ("F16", "BF16", "F32") else a
    return hdr, tensor


def main():
    d, refdir, rope = sys.argv[1:4]
    act = json.load(open(sys.argv[4])) if len(sys.argv) > 4 else None
    hdr, tensor = reader(d + "/model.safetensors")
    href = None
    try:
        open(refdir + "/model.safetensors", "rb").close()
        href, rtensor = reader(refdir + "/model.safetensors")
    except OSError:
        pass

    cfg = json.load(open(d + "/config.json"))
    qc = cfg["quantization_config"]
    wa = qc["config_groups"]["group_0"]["weights"]
    ia = qc["config_groups"]["group_0"].get("input_activations")
    bits, sym = wa["num_bits"], wa["symmetric"]
    pf, off = 32 // bits, 1 << (bits - 1)
    L = cfg["num_hidden_layers"]
    dh = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    bad = []
    for l in range(L):
        for k, nm in enumerate(NAMES):
            p = "model.layers.%d.%s." % (l, nm)
            if qc["format"] == "int-quantized":
                w = tensor(p + "weight")
                if hdr[p + "weight"]["dtype"] != "I8" or not sym or bits != 8:
                    bad.append(p + "weight not int8 symmetric")
                    continue
                N, K = w.shape
                sc = tensor(p + "weight_scale")
                if sc.shape != (N, 1):
                    bad.append(p + "weight_scale shape %r" % (sc.shape,))
                    continue
                x = (w.astype(np.float32) * sc).astype(np.float32)
                if ia is None or ia["dynamic"]:
                    if p + "input_scale" in hdr:
                        bad.append(p + "input_scale present for dynamic activations")
                else:
                    s_ = tensor(p + "input_scale")
                    e = act["layers"][l]["input"][nm] if act else None
                    if s_.shape != (1,) or (e and np.float32(e["scale"]) != s_[0]):
                        bad.append("%sinput_scale %r != activation.json %r" % (p, s_.tolist(), e))
                    if ia["symmetric"]:
                        if p + "input_zero_point" in hdr:
                            bad.append(p + "input_zero_point present for symmetric activations")
                    else:
                        z = tensor(p + "input_zero_point")
                        if hdr[p + "input_zero_point"]["dtype"] != "I8" or (e and int(z[0]) + 128 != e["zero_point"]):
                            bad.append("%sinput_zero_point %r != activation.json %r" % (p, z.tolist(), e))
                ref = rtensor(p + "weight") if href else np.fromfile("%s/%d.%d.f32" % (refdir, l, k), "<f4").reshape(N, K)
                if not np.array_equal(x.view(np.uint32), ref.view(np.uint32)):
                    r, c = np.argwhere(x.view(np.uint32) != ref.view(np.uint32))[0]
                    bad.append("%s row %d col %d: %r != %r" % (p, r, c, float(x[r, c]), float(ref[r, c])))
                continue
            N, K = [int(x) for x in tensor(p + "weight_shape")]
            wp = tensor(p + "weight_packed").view(np.uint32)
            q = np.stack([(wp >> (bits * i)) & ((1 << bits) - 1) for i in range(pf)], axis=2).reshape(N, -1)[:, :K]
            q = q.astype(np.int64) - off
            sc = tensor(p + "weight_scale")
            G = sc.shape[1]
            gidx = np.arange(K) // (K // G if G > 1 else K)
            if sym:
                zp = np.zeros((N, G), np.int64)
                if p + "weight_zero_point" in hdr:
                    bad.append(p + "weight_zero_point present for symmetric weights")
            else:
                zw = tensor(p + "weight_zero_point").view(np.uint32)
                zp = np.stack([(zw >> (bits * i)) & ((1 << bits) - 1) for i in range(pf)], axis=1)
                zp = zp.transpose(0, 1, 2).reshape(-1, G)[:N].astype(np.int64) - off  # row c*pf+i <- word c bit i
            x = ((q - zp[:, gidx]).astype(np.float32) * sc[:, gidx]).astype(np.float32)
            ref = np.fromfile("%s/%d.%d.f32" % (refdir, l, k), "<f4").reshape(N, K)
            if rope == "interleaved" and k in (0, 1):
                i = np.arange(N)
                h, j = i // dh, i % dh
                ref = ref[h * dh + np.where(j < dh // 2, 2 * j, 2 * (j - dh // 2) + 1)]
            if not np.array_equal(x.view(np.uint32), ref.view(np.uint32)):
                r, c = np.argwhere(x.view(np.uint32) != ref.view(np.uint32))[0]
                bad.append("%s row %d col %d: %r != %r" % (p, r, c, float(x[r, c]), float(ref[r, c])))
    print(json.dumps({"bad": bad, "keys": sorted(qc.keys()), "weights": wa, "input_activations": ia,
                      "meta": hdr.get("__metadata__")}))
    sys.exit(1 if bad else 0)


main()
