#!/usr/bin/python3
"""gptq_unpack.py — independent GPTQ checkpoint unpacker (numpy only), written from
the format description (docs/formats.md, GPTQ packing and safetensors; AutoGPTQ's qlinear pack/unpack
and github.com/huggingface/safetensors), sharing no code with the C exporter.

    gptq_unpack.py --compare GPTQ_DIR HF_DIR [GPTQ_DIR HF_DIR ...]
    gptq_unpack.py --dump GPTQ_DIR OUT.npz

--compare checks, for each pair:
  * safetensors structure (header length, offsets contiguous from 0, file size), metadata format "pt";
  * quantization_config in config.json == quantize_config.json; quant_method gptq, desc_act false,
    checkpoint_format/format "gptq" for sym (v1, zeros stored minus one) or "gptq_v2" for asym;
  * per linear: dtypes/shapes of qweight [K*bits/32, N] I32, qzeros [G, N*bits/32] I32,
    scales [G, N] F16, g_idx [K] I32 == k // group_size; symmetric zeros == 2^(bits-1);
  * dequantized W[n, k] = scales[g_idx[k], n] * (q[k, n] - zero[g_idx[k], n]) against the HF
    export's weight [N, K] (source dtype) within
        |W_gptq - W_hf| <= (u + 2^-11) * (1 + 2^-9) * max(|W_gptq|, |W_hf|) + 2^-25 * |q - zero|
    where u is the unit roundoff of the HF dtype (BF16 2^-8, F16 2^-11, F32 2^-24): the HF export
    rounds s*(q-z) to its dtype, the GPTQ export rounds s to fp16 (2^-25: fp16 subnormal spacing / 2);
  * every other tensor (embeddings, norms, lm_head) identical, byte for byte, in both.
Prints one "OK ..." line per pair; exits 1 with "FAIL ..." on the first mismatch.
"""
import json
import os
import struct
import sys

import numpy as np

ST_NP = {"F32": "<f4", "F16": "<f2", "I32": "<i4", "U8": "u1", "I8": "i1", "F64": "<f8", "I64": "<i8",
         "BF16": "<u2", "U32": "<u4", "I16": "<i2", "U16": "<u2"}


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def read_safetensors(path):
    """-> (metadata dict, {name: (dtype str, raw numpy array in storage dtype)})"""
    with open(path, "rb") as f:
        buf = f.read()
    check(len(buf) >= 8, "%s: too short" % path)
    (n,) = struct.unpack("<Q", buf[:8])
    check(8 + n <= len(buf), "%s: header length %d past end" % (path, n))
    hdr_bytes = buf[8:8 + n]
    hdr = json.loads(hdr_bytes.decode("utf-8"))
    meta = hdr.pop("__metadata__", {})
    data = buf[8 + n:]
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in hdr.items())
    pos = 0
    for b, e, k in spans:
        check(b == pos, "%s: tensor %s starts at %d, expected %d (holes/overlap)" % (path, k, b, pos))
        pos = e
    check(pos == len(data), "%s: data section %d bytes, tensors end at %d" % (path, len(data), pos))
    out = {}
    for k, v in hdr.items():
        b, e = v["data_offsets"]
        dt = v["dtype"]
        check(dt in ST_NP, "%s: %s: unknown dtype %s" % (path, k, dt))
        a = np.frombuffer(data[b:e], dtype=ST_NP[dt])
        check(a.size == int(np.prod(v["shape"], dtype=np.int64)), "%s: %s: size/shape mismatch" % (path, k))
        out[k] = (dt, a.reshape(v["shape"]))
    return meta, out


def to_f32(dt, a):
    if dt == "BF16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32)


def unpack_rows(words, bits):
    """words uint32 [R, C] packed along axis 0 -> codes [R*32/bits, C] (docs/formats.md, GPTQ packing)."""
    R, C = words.shape
    if bits in (2, 4, 8):
        pf = 32 // bits
        shifts = np.arange(0, 32, bits, dtype=np.uint32)          # element j at bit bits*j
        v = (words[:, None, :] >> shifts[None, :, None]) & np.uint32((1 << bits) - 1)
        return v.reshape(R * pf, C)
    check(bits == 3 and R % 3 == 0, "3-bit rows %d not a multiple of 3" % R)
    w = words.reshape(R // 3, 3, C)
    w0, w1, w2 = w[:, 0, :], w[:, 1, :], w[:, 2, :]
    out = np.zeros((R // 3, 32, C), dtype=np.uint32)
    for i in range(10):                                           # w0: v0..v9 at 0,3,..,27
        out[:, i] = (w0 >> np.uint32(3 * i)) & 7
    out[:, 10] = ((w0 >> np.uint32(30)) & 3) | ((w1 & 1) << 2)    # v10: low 2 bits in w0[30:31], bit 2 in w1[0]
    for i in range(11, 21):                                       # w1: v11..v20 at 1,4,..,28
        out[:, i] = (w1 >> np.uint32(1 + 3 * (i - 11))) & 7
    out[:, 21] = ((w1 >> np.uint32(31)) & 1) | ((w2 & 3) << 1)    # v21: low bit in w1[31], bits 1-2 in w2[0:1]
    for i in range(22, 32):                                       # w2: v22..v31 at 2,5,..,29
        out[:, i] = (w2 >> np.uint32(2 + 3 * (i - 22))) & 7
    return out.reshape(R // 3 * 32, C)


def load_gptq(gdir):
    cfg = json.load(open(os.path.join(gdir, "config.json")))
    qc = cfg.get("quantization_config")
    check(qc is not None, "%s: config.json has no quantization_config" % gdir)
    qc2 = json.load(open(os.path.join(gdir, "quantize_config.json")))
    check(qc == qc2, "%s: quantization_config differs from quantize_config.json" % gdir)
    check(qc["quant_method"] == "gptq", "quant_method %r" % qc["quant_method"])
    check(qc["desc_act"] is False, "desc_act must be false")
    bits, gs, sym = qc["bits"], qc["group_size"], qc["sym"]
    check(bits in (2, 3, 4, 8), "bits %r" % bits)
    check(qc["checkpoint_format"] == ("gptq" if sym else "gptq_v2"), "checkpoint_format %r for sym=%r" %
          (qc["checkpoint_format"], sym))
    check(qc.get("format") == qc["checkpoint_format"], "format != checkpoint_format")
    check(qc.get("pack_dtype", "int32") == "int32", "pack_dtype")
    meta, ts = read_safetensors(os.path.join(gdir, "model.safetensors"))
    check(meta.get("format") == "pt", "%s: metadata format %r" % (gdir, meta.get("format")))
    lin = {}
    maxq = (1 << bits) - 1
    for name in sorted(ts):
        if not name.endswith(".qweight"):
            continue
        base = name[:-len(".qweight")]
        qdt, qw = ts[name]
        zdt, qz = ts[base + ".qzeros"]
        sdt, sc = ts[base + ".scales"]
        gdt, gi = ts[base + ".g_idx"]
        check((qdt, zdt, sdt, gdt) == ("I32", "I32", "F16", "I32"), "%s: dtypes %s" % (base, (qdt, zdt, sdt, gdt)))
        K, = gi.shape
        G, N = sc.shape
        check(K % 32 == 0 and N % 32 == 0, "%s: K=%d N=%d not multiples of 32" % (base, K, N))
        check(qw.shape == (K * bits // 32, N), "%s: qweight shape %s" % (base, qw.shape))
        check(qz.shape == (G, N * bits // 32), "%s: qzeros shape %s" % (base, qz.shape))
        g = K if gs == -1 else gs
        check(G == -(-K // g), "%s: G=%d for K=%d group %d" % (base, G, K, gs))
        check(np.array_equal(gi, np.arange(K) // g), "%s: g_idx is not k // group_size" % base)
        q = unpack_rows(qw.view(np.uint32), bits)                   # [K, N]
        z = unpack_rows(np.ascontiguousarray(qz.view(np.uint32).T), bits).T.astype(np.int64)  # [G, N]
        if qc["checkpoint_format"] == "gptq":
            z = z + 1                                                # v1: stored zero - 1
        if sym:
            check(np.all(z == 1 << (bits - 1)), "%s: symmetric zeros are not 2^(bits-1)" % base)
        check(np.all((z >= 0) & (z <= maxq)), "%s: zeros out of range" % base)
        s = sc.astype(np.float32)
        d = q.astype(np.int64) - z[gi, :]                            # [K, N]
        W = (s[gi, :] * d.astype(np.float32)).astype(np.float32)     # [K, N]
        lin[base] = (W.T.copy(), np.abs(d).T.copy())                 # [N, K]
    check(lin, "%s: no quantized linears" % gdir)
    return qc, ts, lin


def compare(gdir, hdir):
    qc, gts, lin = load_gptq(gdir)
    hmeta, hts = read_safetensors(os.path.join(hdir, "model.safetensors"))
    check(hmeta.get("format") == "pt", "%s: metadata format" % hdir)
    hcfg = json.load(open(os.path.join(hdir, "config.json")))
    check("quantization_config" not in hcfg, "%s: hf export carries a quantization_config" % hdir)
    expect = set(lin)
    worst_ratio, max_abs, n_exact, n_all = 0.0, 0.0, 0, 0
    for name, (dt, a) in hts.items():
        if name.endswith(".weight") and name[:-len(".weight")] in expect:
            Wg, dabs = lin[name[:-len(".weight")]]
            check(a.shape == Wg.shape, "%s: hf shape %s vs gptq %s" % (name, a.shape, Wg.shape))
            Wh = to_f32(dt, a)
            u = {"BF16": 2.0 ** -8, "F16": 2.0 ** -11, "F32": 2.0 ** -24}[dt]
            diff = np.abs(Wg.astype(np.float64) - Wh.astype(np.float64))
            tol = (u + 2.0 ** -11) * (1 + 2.0 ** -9) * np.maximum(np.abs(Wg), np.abs(Wh)) + 2.0 ** -25 * dabs + 1e-30
            ratio = float(np.max(diff / tol))
            if ratio > 1.0:
                i = np.unravel_index(np.argmax(diff / tol), diff.shape)
                raise Fail("%s: element %s gptq %.9g hf %.9g diff %.3g > tol %.3g" %
                           (name, i, Wg[i], Wh[i], diff[i], tol[i]))
            worst_ratio = max(worst_ratio, ratio)
            max_abs = max(max_abs, float(diff.max()))
            n_exact += int(np.sum(diff == 0))
            n_all += diff.size
            expect.discard(name[:-len(".weight")])
        else:
            check(name in gts, "%s: tensor %s missing from the gptq export" % (gdir, name))
            gdt, ga = gts[name]
            check(gdt == dt and ga.shape == a.shape and ga.tobytes() == a.tobytes(),
                  "%s: non-quantized tensor differs between exports" % name)
    check(not expect, "hf export lacks %s" % sorted(expect))
    nq = sum(1 for k in gts if k.endswith(".qweight"))
    check(len(gts) == len(hts) + 3 * nq, "%s: %d tensors, hf %d (+3 per linear expected)" % (gdir, len(gts), len(hts)))
    print("OK %s bits=%d group_size=%d sym=%s format=%s linears=%d max_abs_diff=%.3g max_diff/tol=%.3f "
          "exact=%.4f" % (gdir, qc["bits"], qc["group_size"], qc["sym"], qc["checkpoint_format"], len(lin),
                          max_abs, worst_ratio, n_exact / max(n_all, 1)))


def main(argv):
    if len(argv) >= 3 and argv[0] == "--compare" and len(argv) % 2 == 1:
        try:
            for i in range(1, len(argv), 2):
                compare(argv[i], argv[i + 1])
        except (Fail, KeyError, OSError, ValueError) as e:
            print("FAIL %s: %s" % (type(e).__name__, e))
            return 1
        return 0
    if len(argv) == 3 and argv[0] == "--dump":
        try:
            _, _, lin = load_gptq(argv[1])
        except (Fail, KeyError, OSError, ValueError) as e:
            print("FAIL %s: %s" % (type(e).__name__, e))
            return 1
        np.savez(argv[2], **{k: v[0] for k, v in lin.items()})
        print("OK wrote %d dequantized linears to %s" % (len(lin), argv[2]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
