// llama.mjs — llama.cpp (the prebuilt CPU binary shipped in node-llama-cpp's @node-llama-cpp/linux-x64)
// driven for `make check-interop`: nothing is downloaded or built (getLlama({gpu: false, build: "never"})).
//
//   node llama.mjs tokenize MODEL.gguf TEXT        → JSON array of id arrays, one per document
//   node llama.mjs generate MODEL.gguf STEPS       → greedy text from BOS (stops at EOS/BOS)
//   node llama.mjs ppl MODEL.gguf TEXT SEQ MAXWIN  → {"perplexity", "tokens", "windows"} over lrq's
//                                                    evaluation windows (docs/algorithms.md, Evaluation)
//
// Documents follow lrq's data rules (docs/formats.md, tokenizers): lines that are exactly
// "<|endoftext|>" separate documents, each is stripped, skipped when empty, and encoded with BOS.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { readFileSync } from "node:fs";

const [cmd, modelPath, ...rest] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath });
const bos = model.tokens.bos;

function documents(path) {
    const lines = readFileSync(path, "utf8").split("\n");
    const docs = [];
    let cur = [];
    const flush = () => {
        const d = cur.join("\n").trim();
        if (d.length) docs.push(d);
        cur = [];
    };
    for (const l of lines) {
        if (l === "<|endoftext|>" || l === "<|endoftext|>\r") flush();
        else cur.push(l);
    }
    flush();
    return docs;
}

function encode(text) {
    return [bos, ...model.tokenize(text, false)];
}

if (cmd === "tokenize") {
    process.stdout.write(JSON.stringify(documents(rest[0]).map(encode)) + "\n");
} else if (cmd === "generate") {
    const steps = Number(rest[0]);
    const context = await model.createContext({ contextSize: steps + 8, batchSize: steps + 8, threads: 1 });
    const seq = context.getSequence();
    const out = [];
    let input = [bos];
    while (out.length < steps) {
        const res = await seq.controlledEvaluate([[input[input.length - 1], { generateNext: { token: true } }]]);
        const t = res[0].next.token; // greedy: no sampling options means argmax
        if (t === model.tokens.eos || t === bos) break;
        out.push(t);
        input = [t];
    }
    process.stdout.write(model.detokenize(out) + "\n");
    process.stderr.write(JSON.stringify(out) + "\n");
} else if (cmd === "ppl") {
    const T = Number(rest[1]), maxw = Number(rest[2]);
    const ids = documents(rest[0]).flatMap(encode);
    let nw = Math.floor(ids.length / T);
    if (maxw > 0 && nw > maxw) nw = maxw;
    const context = await model.createContext({ contextSize: T, batchSize: T, threads: 1 });
    const seq = context.getSequence();
    let nll = 0, count = 0;
    for (let w = 0; w < nw; w++) {
        const win = ids.slice(w * T, (w + 1) * T);
        await seq.clearHistory();
        const input = win.slice(0, T - 1).map((t) => [t, { generateNext: { logits: true } }]);
        const res = await seq.controlledEvaluate(input);
        for (let i = 0; i < T - 1; i++) {
            const lg = res[i].next.logits; // Map token → logit
            let mx = -Infinity;
            for (const v of lg.values()) if (v > mx) mx = v;
            let s = 0;
            for (const v of lg.values()) s += Math.exp(v - mx);
            nll -= lg.get(win[i + 1]) - mx - Math.log(s);
            count++;
        }
    }
    process.stdout.write(JSON.stringify({ perplexity: Math.exp(nll / count), tokens: count, windows: nw }) + "\n");
} else {
    process.stderr.write("usage: llama.mjs tokenize|generate|ppl MODEL.gguf ...\n");
    process.exit(64);
}
await model.dispose();
await llama.dispose();
